//go:build unix

package e2e

import (
	"context"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/anteroom/anteroom/config"
)

// Rooms chained to dex (rooms[].identity), a real and independent OpenID
// provider the tests start themselves: static password users, in-memory
// storage, its own port, its config in a temp dir. .ci/run builds it from
// the Go module proxy (ANTEROOM_DEX); without it these tests skip, unless
// ANTEROOM_TEST_DEX=required. People sign in through dex's own login form,
// by Go clients and by Chromium.

const (
	dexClientID = "anteroom"
	dexSecret   = "dex-client-secret-0123"
	// dexPassword is every test user's; dexHash is its bcrypt hash, as in
	// dex's own examples/config-dev.yaml.
	dexPassword = "password"
	dexHash     = "$2a$10$2b2cU8CPhOTaGrs1HRQuAueS7JTT5ZHsHSzYiFPm1leZck7Mc8T4W"
)

// dexProcess is a running dex.
type dexProcess struct {
	t      *testing.T
	bin    string
	dir    string
	Issuer string
	cmd    *exec.Cmd
}

func requireDex(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("ANTEROOM_DEX")
	if bin == "" {
		if os.Getenv("ANTEROOM_TEST_DEX") == "required" {
			t.Fatal("dex is required (ANTEROOM_TEST_DEX=required) but ANTEROOM_DEX is not set")
		}
		t.Skip("dex not available: set ANTEROOM_DEX to its binary (.ci/run builds it)")
	}
	return bin
}

// startDex starts dex with users alice and bob at example.com and carol at
// example.org, and one client whose redirect URI is callback.
func startDex(t *testing.T, callback string) *dexProcess {
	t.Helper()
	bin := requireDex(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	d := &dexProcess{t: t, bin: bin, dir: t.TempDir(), Issuer: "http://" + addr + "/dex"}
	var users strings.Builder
	for i, name := range []string{"alice@example.com", "bob@example.com", "carol@example.org"} {
		fmt.Fprintf(&users, "- email: %q\n  hash: %q\n  username: %q\n  userID: \"0000000%d-0000-4000-8000-000000000000\"\n",
			name, dexHash, strings.Split(name, "@")[0], i+1)
	}
	cfg := fmt.Sprintf(`issuer: %s
storage:
  type: memory
web:
  http: %s
logger:
  level: error
oauth2:
  skipApprovalScreen: true
enablePasswordDB: true
staticClients:
- id: %s
  secret: %s
  name: Anteroom
  redirectURIs: [%q]
staticPasswords:
%s`, d.Issuer, addr, dexClientID, dexSecret, callback, users.String())
	if err := os.WriteFile(filepath.Join(d.dir, "config.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d.start()
	t.Cleanup(d.stop)
	return d
}

func (d *dexProcess) start() {
	d.t.Helper()
	d.cmd = exec.Command(d.bin, "serve", filepath.Join(d.dir, "config.yaml"))
	d.cmd.Stdout, d.cmd.Stderr = os.Stderr, os.Stderr
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	if !waitUntil(30*time.Second, func() bool {
		resp, err := http.Get(d.Issuer + "/.well-known/openid-configuration")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}) {
		d.t.Fatal("dex did not start")
	}
}

// stop ends dex (and with it, its in-memory sessions).
func (d *dexProcess) stop() {
	if d.cmd != nil && d.cmd.Process != nil {
		_ = d.cmd.Process.Kill()
		_ = d.cmd.Wait()
		d.cmd = nil
	}
}

// dexIdentity chains the test room to d, admitting example.com addresses
// and copying email into Anteroom's tokens.
func dexIdentity(d *dexProcess) *config.Identity {
	return &config.Identity{Issuer: d.Issuer, ClientID: dexClientID, ClientSecret: dexSecret,
		Scopes: []string{"openid", "email", "profile"}, Claims: []string{"email", "email_verified"},
		Require: config.Require{{Claim: "email", Values: []string{"@example.com"}}}}
}

// dexSignIn starts a login at the test client's site in v's browser, signs
// in at dex's own login form as email, and returns the last response.
func dexSignIn(t *testing.T, v *visitor, email string) (*http.Response, string) {
	t.Helper()
	v.login = newLogin()
	resp, body := visit(t, v.browser, http.MethodGet, v.h.rp.authURL(v.login))
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `name="password"`) {
		t.Fatalf("expected dex's login form, got %d at %s: %.300s", resp.StatusCode, resp.Request.URL, body)
	}
	_, rest, _ := strings.Cut(body, `<form method="post" action="`)
	action, _, _ := strings.Cut(rest, `"`)
	post, err := resp.Request.URL.Parse(html.UnescapeString(action))
	if err != nil {
		t.Fatal(err)
	}
	resp, err = v.browser.PostForm(post.String(), url.Values{"login": {email}, "password": {dexPassword}})
	if err != nil {
		t.Fatal(err)
	}
	return resp, readAll(resp)
}

// dexQueue signs v in as email through dex and returns the waiting page.
func dexQueue(t *testing.T, v *visitor, email string) string {
	t.Helper()
	resp, body := dexSignIn(t, v, email)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.String(), issuer+"/wait/") {
		t.Fatalf("%s: expected the waiting page, got %d at %s: %.300s", email, resp.StatusCode, resp.Request.URL, body)
	}
	v.waitURL = resp.Request.URL.String()
	return v.waitURL
}

// TestDexOnePlacePerPerson, by Go clients through dex's login form: the
// same user in two fresh browsers holds one position, two users hold two, a
// user outside require is refused with the room's page and takes no place;
// Anteroom's ID token carries dex's email beside the queue claims; with dex
// stopped while people wait, a newcomer sees a clear page and everyone
// keeps their place.
func TestDexOnePlacePerPerson(t *testing.T) {
	d := startDex(t, issuer+"/upstream/callback")
	// The README's dex example, pointed at this dex.
	id := readmeIdentity(t, "# rooms[].identity for dex", map[string]string{"DEX_ISSUER": d.Issuer, "DEX_CLIENT_SECRET": dexSecret})
	h := newHarness(t, configure(func(c *config.Config) { c.Rooms[0].Identity = id }))

	laptop, phone, bob := h.visitor(), h.visitor(), h.visitor()
	dexQueue(t, laptop, "alice@example.com")
	dexQueue(t, phone, "alice@example.com")
	dexQueue(t, bob, "bob@example.com")
	if a1, a2, b := laptop.status(), phone.status(), bob.status(); a1.Position != 1 || a2.Position != 1 || b.Position != 2 {
		t.Fatalf("positions: alice %d and %d, bob %d; want 1, 1, 2", a1.Position, a2.Position, b.Position)
	}

	carol := h.visitor()
	resp, body := dexSignIn(t, carol, "carol@example.org")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "This queue is for registered customers") {
		t.Fatalf("carol: %d %.400s", resp.StatusCode, body)
	}
	if tail := h.tail(); tail != float64(2) {
		t.Fatalf("tail = %v, want 2", tail)
	}

	h.advance(1)
	code := phone.proceed()
	if code == "" {
		t.Fatal("alice's phone got no code")
	}
	c, _, _ := phone.identityToken(code)
	if c.Email != "alice@example.com" || c.Room != roomID || c.Position != 1 || c.AdmittedAt == 0 || c.Sub == "" {
		t.Fatalf("ID token: %+v", c)
	}

	d.stop()
	h.clock.Advance(time.Minute)
	dave := h.visitor()
	dave.login = newLogin()
	resp, body = visit(t, dave.browser, http.MethodGet, h.rp.authURL(dave.login))
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "cannot reach the sign-in service") {
		t.Fatalf("newcomer with dex stopped: %d %.300s", resp.StatusCode, body)
	}
	if st := bob.status(); st.State != "waiting" || st.Position != 2 {
		t.Fatalf("bob with dex stopped: %+v", st)
	}
	if st := laptop.status(); st.State != "admitted" || st.Position != 1 {
		t.Fatalf("alice's laptop with dex stopped: %+v", st)
	}
	if code := laptop.proceed(); code == "" {
		t.Fatal("alice's laptop could not go on with dex stopped")
	}
}

// TestDexSamePersonTwoBrowsersInChromium: in two fresh Chromium browsers a
// person signs in through dex's own login form and sees the same number on
// the waiting page; another person sees the next; a person outside the
// room's require rules sees the room's refusal page, and its button takes
// them back to the site with access_denied (OIDC Core §3.1.2.6).
func TestDexSamePersonTwoBrowsersInChromium(t *testing.T) {
	chromium := requireChromium(t)
	requireDex(t)
	if err := redisServer.FlushAll(); err != nil {
		t.Fatal(err)
	}
	var d *dexProcess
	_, siteURL, _ := demoSite(t, func(cfg *config.Config, issuer string) {
		d = startDex(t, issuer+"/upstream/callback")
		cfg.Rooms[0].Identity = dexIdentity(d)
	})

	dexForm := func(ctx context.Context, email string) error {
		return chromedp.Do(ctx,
			chromedp.Navigate(siteURL+"/login"),
			chromedp.WaitVisible(chromedp.CSS("#login")),
			chromedp.SendKeys(chromedp.CSS("#login"), email),
			chromedp.SendKeys(chromedp.CSS("#password"), dexPassword),
			chromedp.Click(chromedp.CSS("#submit-login")),
		)
	}
	signIn := func(email string) string {
		ctx := browser(t, chromium)
		if err := dexForm(ctx, email); err != nil {
			t.Fatalf("%s: %v", email, err)
		}
		if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("#position"))); err != nil {
			t.Fatalf("%s: %v", email, err)
		}
		position, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#position")))
		if err != nil {
			t.Fatalf("%s: %v", email, err)
		}
		return position
	}
	first, second, other := signIn("alice@example.com"), signIn("alice@example.com"), signIn("bob@example.com")
	if first != "1" || second != "1" || other != "2" {
		t.Fatalf("positions in Chromium: alice %q and %q, bob %q; want 1, 1, 2", first, second, other)
	}

	carol := browser(t, chromium)
	if err := dexForm(carol, "carol@example.org"); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(carol, chromedp.WaitVisible(chromedp.CSS("main h1"))); err != nil {
		t.Fatal(err)
	}
	if title, err := chromedp.Run(carol, chromedp.Text(chromedp.CSS("main h1"))); err != nil || title != "This queue is for registered customers" {
		t.Fatalf("carol's page: %q %v", title, err)
	}
	if err := chromedp.Do(carol, chromedp.Click(chromedp.CSS("main form button"))); err != nil {
		t.Fatal(err)
	}
	var loc string
	if !waitUntil(15*time.Second, func() bool {
		loc, _ = chromedp.Run(carol, chromedp.Location())
		return strings.HasPrefix(loc, siteURL+"/callback?") && strings.Contains(loc, "error=access_denied")
	}) {
		t.Fatalf("carol back at the site: %s", loc)
	}
}
