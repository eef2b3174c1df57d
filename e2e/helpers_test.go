package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anteroom/anteroom/config"
	"github.com/anteroom/anteroom/internal/demosite"
	"github.com/anteroom/anteroom/server"
)

// serveApp runs an Anteroom instance for cfg on ln against the package's
// redis-server until the test ends. now is its clock (nil: the wall clock).
func serveApp(t *testing.T, cfg *config.Config, ln net.Listener, now func() time.Time) *server.Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := server.New(ctx, cfg, redisServer.Client(t), server.WithClock(now))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = a.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return a
}

// deployExample reads a file under deploy/ and points it at this test's
// addresses: each key of subst must occur in it (so an edit to the example
// that drops one fails loudly instead of testing something else).
func deployExample(t *testing.T, subst map[string]string, path ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(append([]string{"..", "deploy"}, path...)...))
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	for old, new := range subst {
		if !strings.Contains(conf, old) {
			t.Fatalf("deploy/%s no longer contains %q", filepath.Join(path...), old)
		}
		conf = strings.ReplaceAll(conf, old, new)
	}
	return conf
}

// advanceOver moves room's serving counter by n through the admin API of
// the Anteroom at base, as an operator would, and fails the test unless it
// answers 200.
func advanceOver(t *testing.T, base, room string, n int) {
	t.Helper()
	resp, body := fetch(t, http.DefaultClient, http.MethodPost, base+"/admin/v1/rooms/"+room+"/advance",
		fmt.Sprintf(`{"count":%d}`, n), "Authorization", "Bearer "+adminToken)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("advance %s by %d: %d %s", room, n, resp.StatusCode, body)
	}
}

// demoSite runs an Anteroom with testConfig, as mutate changes it (it
// gets the instance's issuer first), and the demo relying party of its
// room in front of it, each on a free port, until the test ends. It
// returns the issuer, the site's URL and the configuration served.
func demoSite(t *testing.T, mutate func(cfg *config.Config, issuer string)) (issuer, siteURL string, cfg *config.Config) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	siteLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer = "http://" + ln.Addr().String()
	siteURL = "http://" + siteLn.Addr().String()
	cfg = testConfig()
	cfg.Issuer = issuer
	cfg.Clients = []config.Client{{ID: clientID, Secret: secret, Room: roomID, RedirectURIs: []string{siteURL + "/callback"}}}
	if mutate != nil {
		mutate(cfg, issuer)
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	serveApp(t, cfg, ln, nil)
	site := &demosite.Site{Issuer: issuer, BaseURL: siteURL, ClientID: clientID, Secret: secret, Room: roomID}
	siteSrv := &http.Server{Handler: site.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = siteSrv.Serve(siteLn) }()
	t.Cleanup(func() { siteSrv.Close() })
	return issuer, siteURL, cfg
}
