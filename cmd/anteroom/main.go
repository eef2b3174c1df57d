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
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/anteroom/anteroom/config"
	"github.com/anteroom/anteroom/web"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

// exitConfig is the exit code for a configuration that does not validate.
const exitConfig = 2

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	slog.SetDefault(slog.New(web.LogHandler{Handler: slog.NewTextHandler(stderr, nil)}))
	if len(args) == 0 {
		usage(stderr)
		return exitConfig
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "serve":
		return serveCmd(ctx, args[1:], stderr)
	case "demo":
		return demoCmd(ctx, args[1:], stdout, stderr)
	case "admin":
		return adminCmd(ctx, args[1:], os.Getenv, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "anteroom", versionString())
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
  anteroom version               print the version
`)
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "dev"
}

// logConfigWarnings logs what in the configuration is valid but probably
// not meant (config.Config.Warnings), one line each, naming the file.
func logConfigWarnings(log *slog.Logger, path string, cfg *config.Config) {
	for _, w := range cfg.Warnings() {
		log.Warn("configuration", "config", path, "warning", w)
	}
}

func serveCmd(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "path of the YAML configuration `file`")
	if err := fs.Parse(args); err != nil {
		return exitConfig
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
	rdb := redis.NewUniversalClient(opts)
	defer rdb.Close()
	a, err := newApp(ctx, cfg, rdb, nil)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return 0
		}
		slog.Error("start", "err", err)
		return 1
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		slog.Error("listen", "addr", cfg.Listen, "err", err)
		return 1
	}
	if err := a.listenOps(); err != nil {
		slog.Error("listen", "addr", cfg.Ops.Listen, "err", err)
		return 1
	}
	if cfg.Debug.Listen != "" {
		stopDebug, err := serveDebug(ctx, cfg.Debug.Listen)
		if err != nil {
			slog.Error("start", "err", err)
			return 1
		}
		defer stopDebug()
	}
	slog.Info("anteroom serving", "version", versionString(), "listen", ln.Addr().String(), "issuer", cfg.Issuer, "rooms", len(cfg.Rooms), "clients", len(cfg.Clients))
	if err := a.serve(ctx, ln); err != nil {
		slog.Error("serve", "err", err)
		return 1
	}
	return 0
}
