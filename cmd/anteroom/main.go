// Command anteroom runs the Anteroom waiting room, an OpenID Connect
// provider that lets visitors through only when their turn comes.
//
//	anteroom serve --config FILE   production, against Redis
//	anteroom demo                  everything on 127.0.0.1 with an embedded store
//	anteroom admin COMMAND         status, advance, pause/resume… against a running server
//	anteroom version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/anteroom/anteroom/config"
	"github.com/anteroom/anteroom/internal/telemetry"
	"github.com/anteroom/anteroom/server"
	"github.com/anteroom/anteroom/web"
)

// version, when set at build time with -ldflags "-X main.version=v1.2.0",
// is the version a release reports instead of the go command's stamp.
var version = ""

// exitConfig is the exit code for a configuration that does not validate.
const exitConfig = 2

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	// Every line of a request carries its request_id and, when the
	// request is traced, its trace_id and span_id.
	slog.SetDefault(slog.New(telemetry.LogHandler{Handler: web.LogHandler{Handler: slog.NewTextHandler(stderr, nil)}}))
	routeRedisLogs()
	if len(args) == 0 {
		usage(stderr)
		return exitConfig
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "serve":
		return serveCmd(ctx, args[1:], stdout, stderr)
	case "demo":
		return demoCmd(ctx, args[1:], stdout, stderr)
	case "admin":
		return adminCmd(ctx, args[1:], os.Getenv, stdout, stderr)
	case "edge":
		return edgeCmd(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "anteroom", readVersion())
		return 0
	case "help", "--help", "-h":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "anteroom: unknown command %q\n", args[0])
	usage(stderr)
	return exitConfig
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  anteroom serve --config FILE   run against Redis with the given configuration
  anteroom demo [flags]          run a demo room, client and protected site on 127.0.0.1
  anteroom admin COMMAND         call a running server's admin API (anteroom admin --help)
  anteroom edge fastly-keys JWKS  write the Fastly VCL connector's key dictionary (anteroom edge --help)
  anteroom version               print the version
`)
}

// buildVersion is what `anteroom version` and the start-up log say of
// the binary: its version and the commit it was built from.
type buildVersion struct {
	// Version is main.version when a release build set it, else the
	// module version the go command stamped: a tag (v1.2.0), a
	// pseudo-version of the commit (v0.0.0-20260101120000-abcdef123456)
	// for a build in a git checkout, or (devel) for go run and go test.
	Version string
	// Revision, Time and Modified are the VCS commit, its time, and
	// whether the work tree had changes, when the go command recorded
	// them (a build in a checkout; not with -buildvcs=false).
	Revision, Time string
	Modified       bool
}

// logConfigWarnings logs what in the configuration is valid but probably
// not meant (config.Config.Warnings), one line each, naming the file.
func logConfigWarnings(log *slog.Logger, path string, cfg *config.Config) {
	for _, w := range cfg.Warnings() {
		log.Warn("configuration", "config", path, "warning", w)
	}
}

// buildInfo passes the running binary's version and commit to the
// instance, for its anteroom_build_info metric.
func buildInfo() server.Option {
	v := readVersion()
	return server.WithBuildInfo(v.Version, v.Revision)
}

// readVersion describes the running binary.
func readVersion() buildVersion {
	bi, _ := debug.ReadBuildInfo()
	return describeBuild(version, bi)
}

// describeBuild makes a buildVersion from the -ldflags -X override (may
// be empty) and the binary's build information (may be nil).
func describeBuild(override string, bi *debug.BuildInfo) buildVersion {
	var v buildVersion
	if bi != nil {
		v.Version = bi.Main.Version
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Revision = s.Value
			case "vcs.time":
				v.Time = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	if override != "" {
		v.Version = override
	}
	if v.Version == "" {
		v.Version = "(devel)"
	}
	return v
}

// String is the line `anteroom version` prints after the name:
// "v1.2.0 (commit 0123abcd…, 2026-01-02T03:04:05Z, modified)".
func (v buildVersion) String() string {
	var extra []string
	if v.Revision != "" {
		extra = append(extra, "commit "+v.Revision)
	}
	if v.Time != "" {
		extra = append(extra, v.Time)
	}
	if v.Modified {
		extra = append(extra, "modified")
	}
	if len(extra) == 0 {
		return v.Version
	}
	return v.Version + " (" + strings.Join(extra, ", ") + ")"
}

// LogValue puts the version in the start-up log as a group of its parts.
func (v buildVersion) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("version", v.Version)}
	if v.Revision != "" {
		attrs = append(attrs, slog.String("revision", v.Revision), slog.String("time", v.Time), slog.Bool("modified", v.Modified))
	}
	return slog.GroupValue(attrs...)
}

// parseCommand parses a command's flags. Asked for help (-h, --help), it
// prints the command's usage on stdout and returns (0, true): asking for
// help is no error. A bad flag or a stray argument prints the error and the
// usage on stderr and returns (exitConfig, true).
func parseCommand(fs *flag.FlagSet, synopsis string, args []string, stdout, stderr io.Writer) (int, bool) {
	fs.SetOutput(io.Discard)
	printUsage := func(w io.Writer) {
		fmt.Fprintf(w, "usage: %s\n\nflags:\n", synopsis)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	err := fs.Parse(args)
	if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		printUsage(stdout)
		return 0, true
	case err != nil:
		fmt.Fprintf(stderr, "anteroom %s: %v\n", fs.Name(), err)
		printUsage(stderr)
		return exitConfig, true
	}
	return 0, false
}

func serveCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	path := fs.String("config", "", "path of the YAML configuration `file`")
	if code, done := parseCommand(fs, "anteroom serve --config FILE", args, stdout, stderr); done {
		return code
	}
	if *path == "" {
		fmt.Fprintln(stderr, "anteroom serve: --config is required")
		return exitConfig
	}
	cfg, err := config.Load(*path)
	if err == nil {
		err = cfg.RequireRedis()
	}
	if err != nil {
		fmt.Fprintf(stderr, "anteroom: invalid configuration:\n%v\n", err)
		return exitConfig
	}
	opts, err := cfg.Redis.Options()
	if err != nil {
		fmt.Fprintf(stderr, "anteroom: invalid configuration:\n%v\n", err)
		return exitConfig
	}
	logConfigWarnings(slog.Default(), *path, cfg)
	tracing, stopTracing, err := startTracing(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "anteroom: invalid configuration:\n%v\n", err)
		return exitConfig
	}
	// Deferred first, so it runs last: after the instance has stopped
	// serving, the spans of its last requests are flushed.
	defer stopTracing()
	rdb := redis.NewUniversalClient(opts)
	defer rdb.Close()
	// Listen first: until Redis answers, the instance is alive but not
	// ready, and says so (web.NewStarting) rather than refusing
	// connections.
	starting, err := web.NewStarting(cfg.Issuer, cfg.Web.Dir)
	if err != nil {
		fmt.Fprintf(stderr, "anteroom: invalid configuration:\n%v\n", err)
		return exitConfig
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		slog.Error("listen", "addr", cfg.Listen, "err", err)
		return 1
	}
	defer ln.Close()
	// The ops listener opens with the public one, so that probes and
	// scrapes see an instance that is alive but not ready while Redis is
	// awaited, not a refused connection.
	var opsLn net.Listener
	if cfg.Ops.Separate() {
		if opsLn, err = net.Listen("tcp", cfg.Ops.Listen); err != nil {
			slog.Error("listen", "addr", cfg.Ops.Listen, "key", "ops.listen", "err", err)
			return 1
		}
		defer opsLn.Close()
	}
	if cfg.Debug.Listen != "" {
		stopDebug, err := serveDebug(ctx, cfg.Debug.Listen)
		if err != nil {
			slog.Error("start", "err", err)
			return 1
		}
		defer stopDebug()
	}
	a, err := server.WhileStarting([]net.Listener{ln, opsLn}, web.RequestIDs(web.SecurityHeaders(starting)), func() (*server.Server, error) {
		return server.New(ctx, cfg, rdb, server.WithOpsListener(opsLn), buildInfo(), tracing)
	})
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return 0
		}
		slog.Error("start", "err", err)
		return 1
	}
	slog.Info("anteroom serving", "build", readVersion(), "listen", ln.Addr().String(), "issuer", cfg.Issuer, "rooms", len(cfg.Rooms), "clients", len(cfg.Clients))
	if err := a.Serve(ctx, ln); err != nil {
		slog.Error("serve", "err", err)
		return 1
	}
	return 0
}
