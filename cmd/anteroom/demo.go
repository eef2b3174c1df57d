package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/anteroom/anteroom/config"
	"github.com/anteroom/anteroom/internal/demosite"
	"github.com/anteroom/anteroom/server"
	"github.com/anteroom/anteroom/waitingroom"
)

// demoConfig is the configuration `anteroom demo` runs: one room admitting
// a few visitors a minute and one confidential client, the sample site.
func demoConfig(issuer, siteURL string) *config.Config {
	rate := 6.0
	cfg := &config.Config{
		Issuer:  issuer,
		Secrets: config.Secrets{CookieKeys: []string{randomString(32)}},
		Admin:   config.Admin{Token: randomString(24)},
		Rooms: []config.Room{{
			ID: "demo", Name: "Demo product launch",
			Message:    "Thanks for your patience: we let a few visitors in every minute so the shop stays fast.",
			Admission:  config.Admission{RatePerMinute: &rate},
			SessionTTL: config.Duration(15 * time.Minute),
			MaxWait:    config.Duration(time.Hour),
		}},
		Clients: []config.Client{{
			ID: "demo-site", Secret: randomString(24), Room: "demo",
			RedirectURIs:           []string{siteURL + "/callback"},
			PostLogoutRedirectURIs: []string{siteURL + "/"},
		}},
	}
	cfg.ApplyDefaults()
	return cfg
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}

func demoCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8080", "`address` of Anteroom")
	siteListen := fs.String("site-listen", "127.0.0.1:8081", "`address` of the sample protected site")
	redisURL := fs.String("redis", "", "Redis `URL` (default: an embedded in-process store)")
	if code, done := parseCommand(fs, "anteroom demo [flags]", args, stdout, stderr); done {
		return code
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "anteroom demo: listen on %s: %v (choose another with --listen)\n", *listen, err)
		return 1
	}
	siteLn, err := net.Listen("tcp", *siteListen)
	if err != nil {
		fmt.Fprintf(stderr, "anteroom demo: listen on %s: %v (choose another with --site-listen)\n", *siteListen, err)
		return 1
	}
	issuer := "http://" + ln.Addr().String()
	siteURL := "http://" + siteLn.Addr().String()
	cfg := demoConfig(issuer, siteURL)
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "anteroom demo: %v\n", err)
		return exitConfig
	}

	tracing, stopTracing, err := startTracing(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "anteroom demo: %v\n", err)
		return exitConfig
	}
	defer stopTracing()
	var rdb redis.UniversalClient
	var storeOpts []waitingroom.Option
	if *redisURL == "" {
		mr := miniredis.NewMiniRedis()
		if err := mr.StartAddr("127.0.0.1:0"); err != nil {
			fmt.Fprintf(stderr, "anteroom demo: embedded store: %v\n", err)
			return 1
		}
		defer mr.Close()
		slog.Warn("using an embedded in-process store (miniredis): all state is lost on exit; pass --redis or use `anteroom serve` for real use")
		rdb = redis.NewClient(&redis.Options{Addr: mr.Addr()})
		storeOpts = append(storeOpts, waitingroom.WithEmbeddedRedis())
	} else {
		opt, err := redis.ParseURL(*redisURL)
		if err != nil {
			fmt.Fprintf(stderr, "anteroom demo: --redis: %v\n", err)
			return exitConfig
		}
		rdb = redis.NewClient(opt)
	}
	defer rdb.Close()

	a, err := server.New(ctx, cfg, rdb, server.WithStoreOptions(storeOpts...), buildInfo(), tracing)
	if err != nil {
		slog.Error("start", "err", err)
		return 1
	}
	client := cfg.Clients[0]
	site := &demosite.Site{Issuer: issuer, BaseURL: siteURL, ClientID: client.ID, Secret: client.Secret, Room: "demo"}
	siteSrv := &http.Server{Handler: site.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = siteSrv.Serve(siteLn) }()
	defer siteSrv.Close()

	fmt.Fprintf(stdout, `
Anteroom demo is running.

  Protected sample site:  %[2]s
  Waiting room (issuer):  %[1]s
  Discovery:              %[1]s/.well-known/openid-configuration
  Room status:            %[1]s/api/v1/rooms/demo

  Demo client id:         %[3]s
  Demo client secret:     %[4]s
  Admin token:            %[5]s

The room admits 6 visitors a minute. Open the site in a few private windows to
queue, then let everyone in at once:

  curl -X POST -H 'Authorization: Bearer %[5]s' -d '{"count": 10}' %[1]s/admin/v1/rooms/demo/advance

or with the admin CLI, or the dashboard at %[1]s/admin/ (sign in with the admin token):

  ANTEROOM_URL=%[1]s ANTEROOM_ADMIN_TOKEN=%[5]s %[6]s admin advance demo 10

Press Ctrl-C to stop.
`, issuer, siteURL, client.ID, client.Secret, cfg.Admin.Token, selfCommand(os.Args[0], os.Getwd))
	if err := a.Serve(ctx, ln); err != nil {
		slog.Error("serve", "err", err)
		return 1
	}
	return 0
}

// selfCommand is how to run this binary again from a shell, for the hints
// the demo prints: arg0 (os.Args[0]) as it was typed when the shell found
// it on PATH ("anteroom"), its absolute path when it was run by a path
// (the hint may be pasted in another directory), and for `go run`, whose
// binary lives in a temporary go-build directory that is gone when it
// exits, the go run command: "go run ./cmd/anteroom" from the module's
// root (getwd), else "go run" of the package's import path.
func selfCommand(arg0 string, getwd func() (string, error)) string {
	slashed := filepath.ToSlash(arg0)
	if strings.Contains(slashed, "/go-build") && strings.Contains(slashed, "/exe/") {
		wd, err := getwd()
		switch {
		case err == nil && fileExists(filepath.Join(wd, "cmd", "anteroom", "main.go")):
			return "go run ./cmd/anteroom"
		case err == nil && filepath.Base(wd) == "anteroom" && fileExists(filepath.Join(wd, "main.go")) && fileExists(filepath.Join(wd, "demo.go")):
			return "go run ."
		}
		return "go run github.com/anteroom/anteroom/cmd/anteroom"
	}
	if !strings.ContainsRune(arg0, filepath.Separator) {
		return arg0
	}
	if abs, err := filepath.Abs(arg0); err == nil {
		arg0 = abs
	}
	return shellQuote(arg0)
}

// shellQuote quotes s for a POSIX shell when it holds anything but
// letters, digits and /._-+ (a path with a space).
func shellQuote(s string) string {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("/._-+", c)) {
			return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return s
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
