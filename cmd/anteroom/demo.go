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
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/anteroom/anteroom/config"
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
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "`address` of Anteroom")
	siteListen := fs.String("site-listen", "127.0.0.1:8081", "`address` of the sample protected site")
	redisURL := fs.String("redis", "", "Redis `URL` (default: an embedded in-process store)")
	if err := fs.Parse(args); err != nil {
		return exitConfig
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

	a, err := newApp(ctx, cfg, rdb, nil, storeOpts...)
	if err != nil {
		slog.Error("start", "err", err)
		return 1
	}
	client := cfg.Clients[0]
	site := &demoSite{issuer: issuer, baseURL: siteURL, clientID: client.ID, secret: client.Secret, room: "demo"}
	siteSrv := &http.Server{Handler: site.handler(), ReadHeaderTimeout: 10 * time.Second}
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

  ANTEROOM_URL=%[1]s ANTEROOM_ADMIN_TOKEN=%[5]s anteroom admin advance demo 10

Press Ctrl-C to stop.
`, issuer, siteURL, client.ID, client.Secret, cfg.Admin.Token)
	if err := a.serve(ctx, ln); err != nil {
		slog.Error("serve", "err", err)
		return 1
	}
	return 0
}
