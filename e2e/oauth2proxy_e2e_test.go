package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"

	"github.com/anteroom/anteroom/config"
)

// These tests run deploy/oauth2-proxy/oauth2-proxy.cfg in a real
// oauth2-proxy, in front of a small upstream that echoes what it receives,
// with a real Anteroom as its OpenID provider: what a site that copies the
// example gets.
//
// oauth2-proxy is found through ANTEROOM_OAUTH2_PROXY (a path) or on PATH.
// It is a Go module, built from the module proxy; see findOAuth2Proxy.

const (
	o2pClientSecret = "oauth2-proxy-client-secret-0123456789"
	// The example's room, as its comment configures it in Anteroom.
	o2pMaxWait    = 6 * time.Hour
	o2pSessionTTL = 30 * time.Minute
	// oauth2-proxy's default cookie name; its CSRF cookies are named
	// after it, _oauth2_proxy_<state>_csrf with cookie_csrf_per_request.
	o2pSessionCookie = "_oauth2_proxy"
)

// findOAuth2Proxy returns the oauth2-proxy binary, or skips (fails with
// ANTEROOM_TEST_OAUTH2_PROXY=required).
func findOAuth2Proxy(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("ANTEROOM_OAUTH2_PROXY"); p != "" {
		bin, err := exec.LookPath(p)
		if err != nil {
			t.Fatalf("ANTEROOM_OAUTH2_PROXY=%s: %v", p, err)
		}
		return bin
	}
	if bin, err := exec.LookPath("oauth2-proxy"); err == nil {
		return bin
	}
	if os.Getenv("ANTEROOM_TEST_OAUTH2_PROXY") == "required" {
		t.Fatal("oauth2-proxy is required (ANTEROOM_TEST_OAUTH2_PROXY=required) but neither ANTEROOM_OAUTH2_PROXY nor PATH has it")
	}
	t.Skip("oauth2-proxy not found: build it in a scratch module (go mod init x && " +
		"go get github.com/oauth2-proxy/oauth2-proxy/v7@v7.15.3 && go install github.com/oauth2-proxy/oauth2-proxy/v7) " +
		"and set ANTEROOM_OAUTH2_PROXY to the binary or put it on PATH; set ANTEROOM_TEST_OAUTH2_PROXY=required to fail instead")
	return ""
}

// o2pOption returns the value of the first uncommented line of conf that
// sets name, without quotes.
func o2pOption(t *testing.T, conf, name string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s*` + name + `\s*=\s*(.+?)\s*$`).FindStringSubmatch(conf)
	if m == nil {
		t.Fatalf("deploy/oauth2-proxy/oauth2-proxy.cfg no longer sets %s", name)
	}
	return strings.Trim(m[1], `"`)
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// o2pSeen is what the upstream saw of one request.
type o2pSeen struct {
	uri    string
	header http.Header
}

// o2pSite's methods take the *testing.T of the test or subtest calling
// them, so that a failure stops that one.
type o2pSite struct {
	base     string // http://127.0.0.1:PORT, oauth2-proxy
	anteroom string // Anteroom's address
	issuer   string
	conf     string // the example as written
	output   *lockedBuffer

	mu   sync.Mutex
	seen []o2pSeen // requests that reached the upstream
}

// startO2PSite runs Anteroom, the upstream and oauth2-proxy with the
// example configuration pointed at them. replace changes more of the
// example, each old string required to be there.
func startO2PSite(t *testing.T, replace map[string]string) *o2pSite {
	t.Helper()
	bin := findOAuth2Proxy(t)
	if err := redisServer.FlushAll(); err != nil {
		t.Fatal(err)
	}
	s := &o2pSite{output: &lockedBuffer{}}

	// The upstream records and echoes what reaches it.
	app := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.seen = append(s.seen, o2pSeen{uri: r.URL.RequestURI(), header: r.Header.Clone()})
		s.mu.Unlock()
		fmt.Fprintf(w, "app: %s\n", r.URL.RequestURI())
		_ = json.NewEncoder(w).Encode(r.Header)
	})}
	appLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Serve(appLn) }()
	t.Cleanup(func() { app.Close() })

	// Anteroom, its issuer on its own loopback address, with the room and
	// client the example's comment describes.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.anteroom = ln.Addr().String()
	s.issuer = "http://" + s.anteroom
	proxyAddr := freeAddr(t)
	s.base = "http://" + proxyAddr
	cfg := testConfig()
	cfg.Issuer = s.issuer
	cfg.Rooms[0].MaxWait = config.Duration(o2pMaxWait)
	cfg.Rooms[0].SessionTTL = config.Duration(o2pSessionTTL)
	cfg.Clients = []config.Client{{
		ID: clientID, Secret: o2pClientSecret, Room: roomID, RequirePKCE: true,
		RedirectURIs: []string{s.base + "/oauth2/callback"},
	}}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	serveApp(t, cfg, ln, nil)

	// The example configuration, pointed at this test's ports.
	example, err := os.ReadFile(filepath.Join("..", "deploy", "oauth2-proxy", "oauth2-proxy.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	s.conf = string(example)
	conf := s.conf
	subst := map[string]string{
		`http_address = "127.0.0.1:4180"`:                                  `http_address = "` + proxyAddr + `"`,
		`upstreams = ["http://127.0.0.1:3000/"]`:                           `upstreams = ["http://` + appLn.Addr().String() + `/"]`,
		`oidc_issuer_url = "https://queue.example.com"`:                    `oidc_issuer_url = "` + s.issuer + `"`,
		`redirect_url = "https://shop.example.com/oauth2/callback"`:        `redirect_url = "` + s.base + `/oauth2/callback"`,
		`"https://queue.example.com/end_session?id_token_hint={id_token}"`: `"` + s.issuer + `/end_session?id_token_hint={id_token}"`,
		// Test only: this test speaks plain http on loopback, and Go's
		// cookie jar (like a browser on anything but localhost) sends a
		// Secure cookie over https alone.
		"cookie_secure = true": "cookie_secure = false",
	}
	for old, new := range replace {
		subst[old] = new
	}
	for old, new := range subst {
		if !strings.Contains(conf, old) {
			t.Fatalf("deploy/oauth2-proxy/oauth2-proxy.cfg no longer contains %q", old)
		}
		conf = strings.ReplaceAll(conf, old, new)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "oauth2-proxy.cfg")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}

	// The secrets come from the environment, as the example says; nothing
	// else of the test's environment configures oauth2-proxy.
	cookieSecret := make([]byte, 32)
	_, _ = rand.Read(cookieSecret)
	cmd := exec.Command(bin, "--config", path)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OAUTH2_PROXY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env,
		"OAUTH2_PROXY_CLIENT_SECRET="+o2pClientSecret,
		"OAUTH2_PROXY_COOKIE_SECRET="+base64.RawURLEncoding.EncodeToString(cookieSecret))
	cmd.Stdout, cmd.Stderr = s.output, s.output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("oauth2-proxy output:\n%s", s.output.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(s.base + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-exited:
			t.Fatalf("oauth2-proxy exited at start:\n%s", s.output.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("oauth2-proxy did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

func (s *o2pSite) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second}
}

func (s *o2pSite) appRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

func (s *o2pSite) lastSeen(t *testing.T) o2pSeen {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.seen) == 0 {
		t.Fatal("no request reached the upstream")
	}
	return s.seen[len(s.seen)-1]
}

func (s *o2pSite) do(t *testing.T, b *http.Client, method, u string, header ...string) (*http.Response, string) {
	t.Helper()
	return fetch(t, b, method, u, "", header...)
}

// queueThrough opens path on the site in b and expects Anteroom's waiting
// page, with nothing served by the upstream; it returns the waiting page's
// URL and the response.
func (s *o2pSite) queueThrough(t *testing.T, b *http.Client, path string) (string, *http.Response) {
	t.Helper()
	before := s.appRequests()
	resp, body := s.do(t, b, http.MethodGet, s.base+path)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.String(), s.issuer+"/wait/") {
		t.Fatalf("%s: expected the waiting page, got %d at %s: %.300s", path, resp.StatusCode, resp.Request.URL, body)
	}
	if s.appRequests() != before || strings.Contains(body, "app: ") {
		t.Fatal("a queued visitor reached the upstream")
	}
	return resp.Request.URL.String(), resp
}

func (s *o2pSite) advance(t *testing.T, n int) {
	t.Helper()
	advanceOver(t, s.issuer, roomID, n)
}

// admitted posts the waiting page's continue form and expects to end at
// the upstream, at path, having passed oauth2-proxy's callback with a code.
// It returns what the upstream saw and the response.
func (s *o2pSite) admitted(t *testing.T, b *http.Client, waitURL, path string) (o2pSeen, *http.Response) {
	t.Helper()
	before := s.appRequests()
	resp, body := s.do(t, b, http.MethodPost, waitURL+"/continue")
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != s.base+path || !strings.HasPrefix(body, "app: "+path+"\n") {
		t.Fatalf("after admission: %d at %s: %.500s", resp.StatusCode, resp.Request.URL, body)
	}
	var viaCallback bool
	for _, u := range o2pHops(resp) {
		viaCallback = viaCallback || (u.Host == resp.Request.URL.Host && u.Path == "/oauth2/callback" && u.Query().Get("code") != "")
	}
	if !viaCallback {
		t.Fatalf("the way back did not pass oauth2-proxy's /oauth2/callback with a code: %v", o2pHops(resp))
	}
	if s.appRequests() != before+1 {
		t.Fatalf("the upstream saw %d requests, want 1", s.appRequests()-before)
	}
	return s.lastSeen(t), resp
}

// introspect asks Anteroom whether token is active, as the client.
func (s *o2pSite) introspect(t *testing.T, token string) any {
	t.Helper()
	form := url.Values{"token": {token}}
	req, _ := http.NewRequest(http.MethodPost, s.issuer+"/oauth/introspect", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, o2pClientSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&doc)
	return doc["active"]
}

// csrfCookies returns oauth2-proxy's CSRF cookies in b's jar.
func (s *o2pSite) csrfCookies(b *http.Client) []*http.Cookie {
	u, _ := url.Parse(s.base)
	var out []*http.Cookie
	for _, c := range b.Jar.Cookies(u) {
		if isCSRFCookie(c.Name) {
			out = append(out, c)
		}
	}
	return out
}

// o2pHops lists the URLs a response's redirects went through, first to last.
func o2pHops(resp *http.Response) []*url.URL {
	var out []*url.URL
	for r := resp; r != nil; r = r.Request.Response {
		out = append([]*url.URL{r.Request.URL}, out...)
	}
	return out
}

// o2pSetCookie returns the last cookie whose name matches that a response
// on resp's redirect chain set (not cleared), with the URL that set it.
// The cookie jar keeps no Max-Age, so this reads what the server answered.
func o2pSetCookie(resp *http.Response, match func(name string) bool) (*http.Cookie, *url.URL) {
	for r := resp; r != nil; r = r.Request.Response {
		for _, c := range r.Cookies() {
			if match(c.Name) && c.MaxAge > 0 {
				return c, r.Request.URL
			}
		}
	}
	return nil, nil
}

func isCSRFCookie(name string) bool {
	return strings.HasPrefix(name, o2pSessionCookie+"_") && strings.HasSuffix(name, "_csrf")
}

func TestOAuth2ProxyUsesAnteroom(t *testing.T) {
	s := startO2PSite(t, nil)

	// What the example promises about the room its comment configures.
	if v := o2pOption(t, s.conf, "client_id"); v != clientID {
		t.Fatalf("client_id %s, want %s", v, clientID)
	}
	csrfExpire, err := time.ParseDuration(o2pOption(t, s.conf, "cookie_csrf_expire"))
	if err != nil || csrfExpire < o2pMaxWait {
		t.Fatalf("cookie_csrf_expire %s is shorter than the room's max_wait %s: visitors who wait longer are turned away", csrfExpire, o2pMaxWait)
	}
	if v, err := time.ParseDuration(o2pOption(t, s.conf, "cookie_expire")); err != nil || v != o2pSessionTTL {
		t.Fatalf("cookie_expire %s does not match the room's session_ttl %s", v, o2pSessionTTL)
	}
	csrfLimit, err := strconv.Atoi(o2pOption(t, s.conf, "cookie_csrf_per_request_limit"))
	if err != nil || csrfLimit < 1 || o2pOption(t, s.conf, "cookie_csrf_per_request") != "true" {
		t.Fatalf("the example should keep a bounded number of CSRF cookies, one per login")
	}
	if m := regexp.MustCompile(`(?m)^\s*(client_secret|cookie_secret)\s*=`).FindString(s.conf); m != "" {
		t.Fatalf("the example writes a secret in the file: %q", m)
	}

	first, second := s.browser(), s.browser()

	// The first visitor asks for a page; oauth2-proxy sends them straight
	// to Anteroom's authorization endpoint, which puts them in the waiting
	// room. The upstream serves nothing.
	firstWait, resp := s.queueThrough(t, first, "/shop?item=42")
	var authorize *url.URL
	for _, u := range o2pHops(resp) {
		if u.Host == s.anteroom && u.Path == "/authorize" {
			authorize = u
		}
	}
	if authorize == nil {
		t.Fatalf("oauth2-proxy did not send the visitor to /authorize: %v", o2pHops(resp))
	}
	q := authorize.Query()
	if q.Get("client_id") != clientID || q.Get("response_type") != "code" || q.Get("scope") != "openid" ||
		q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" ||
		q.Get("redirect_uri") != s.base+"/oauth2/callback" || q.Get("state") == "" || q.Get("nonce") == "" {
		t.Fatalf("authorization request: %s", authorize)
	}
	// The CSRF cookie, which carries the login to the callback, outlives
	// the longest wait the room allows.
	csrf, setBy := o2pSetCookie(resp, isCSRFCookie)
	if csrf == nil || "http://"+setBy.Host != s.base {
		t.Fatalf("oauth2-proxy set no CSRF cookie on the way to the waiting room: %v", o2pHops(resp))
	}
	if time.Duration(csrf.MaxAge)*time.Second < o2pMaxWait {
		t.Fatalf("CSRF cookie Max-Age %d s is shorter than max_wait %s", csrf.MaxAge, o2pMaxWait)
	}
	if st := pollStatus(t, first, firstWait); st.Position != 1 || st.Ahead != 0 || st.Room != roomID || st.State != "waiting" {
		t.Fatalf("first visitor: %+v", st)
	}

	// A second visitor queues behind them.
	secondWait, _ := s.queueThrough(t, second, "/account")
	if st := pollStatus(t, second, secondWait); st.Position != 2 || st.Ahead != 1 {
		t.Fatalf("second visitor: %+v", st)
	}

	// Before the counter moves, continue leads back to the waiting page.
	if resp, _ := s.do(t, first, http.MethodPost, firstWait+"/continue"); resp.Request.URL.String() != firstWait || s.appRequests() != 0 {
		t.Fatalf("continue before admission: %d at %s", resp.StatusCode, resp.Request.URL)
	}

	// The admin lets one visitor in: the first continues, oauth2-proxy
	// redeems the code (PKCE, nonce checked) and the upstream serves the
	// page they first asked for, with who they are.
	s.advance(t, 1)
	seen, resp := s.admitted(t, first, firstWait, "/shop?item=42")
	sub := seen.header.Get("X-Forwarded-User")
	if len(sub) != 22 || seen.header.Get("X-Forwarded-Email") != sub || seen.header.Get("X-Forwarded-Groups") != roomID {
		t.Fatalf("the upstream saw user=%q email=%q groups=%q", sub, seen.header.Get("X-Forwarded-Email"), seen.header.Get("X-Forwarded-Groups"))
	}
	// The callback set the session cookie for the room's session TTL.
	session, setBy := o2pSetCookie(resp, func(name string) bool { return name == o2pSessionCookie })
	if session == nil || setBy.Path != "/oauth2/callback" {
		t.Fatalf("no session cookie from oauth2-proxy's callback: %v", o2pHops(resp))
	}
	if time.Duration(session.MaxAge)*time.Second != o2pSessionTTL {
		t.Fatalf("session cookie Max-Age %d s, want the room's session_ttl %s", session.MaxAge, o2pSessionTTL)
	}
	// The access token, a JWT with the queue claims, verifies with
	// Anteroom's JWKS alone.
	accessToken := seen.header.Get("X-Forwarded-Access-Token")
	ctx := context.Background()
	provider, err := gooidc.NewProvider(ctx, s.issuer)
	if err != nil {
		t.Fatal(err)
	}
	at, err := provider.Verifier(&gooidc.Config{ClientID: clientID}).Verify(ctx, accessToken)
	if err != nil {
		t.Fatalf("the upstream's X-Forwarded-Access-Token does not verify with the JWKS: %v", err)
	}
	var claims struct {
		Sub        string `json:"sub"`
		Room       string `json:"room"`
		Position   int64  `json:"queue_position"`
		QueuedAt   int64  `json:"queued_at"`
		AdmittedAt int64  `json:"admitted_at"`
	}
	if err := at.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if claims.Sub != sub || claims.Room != roomID || claims.Position != 1 || claims.QueuedAt == 0 ||
		claims.QueuedAt > claims.AdmittedAt || time.Since(time.Unix(claims.AdmittedAt, 0)).Abs() > time.Minute {
		t.Fatalf("access token claims: %+v (user %s)", claims, sub)
	}
	if limit := time.Unix(claims.AdmittedAt, 0).Add(o2pSessionTTL); at.Expiry.After(limit) {
		t.Fatalf("access token expires at %s, after the session (%s)", at.Expiry, limit)
	}

	t.Run("the session carries on without Anteroom", func(t *testing.T) {
		before := s.appRequests()
		resp, body := s.do(t, first, http.MethodGet, s.base+"/shop/basket")
		if resp.StatusCode != http.StatusOK || resp.Request.Response != nil || s.appRequests() != before+1 ||
			s.lastSeen(t).header.Get("X-Forwarded-User") != sub {
			t.Fatalf("%d at %s (redirected: %v): %.300s", resp.StatusCode, resp.Request.URL, resp.Request.Response != nil, body)
		}
	})

	t.Run("a client cannot forge who they are", func(t *testing.T) {
		s.do(t, first, http.MethodGet, s.base+"/shop/basket",
			"X-Forwarded-User", "forged", "X-Forwarded-Email", "forged@example.com",
			"X-Forwarded-Groups", "forged", "X-Forwarded-Access-Token", "forged")
		h := s.lastSeen(t).header
		if h.Get("X-Forwarded-User") != sub || h.Get("X-Forwarded-Email") != sub || h.Get("X-Forwarded-Groups") != roomID || h.Get("X-Forwarded-Access-Token") != accessToken ||
			len(h.Values("X-Forwarded-User")) != 1 {
			t.Fatalf("the upstream saw %v", h)
		}
	})

	t.Run("a visitor without a session never reaches the upstream", func(t *testing.T) {
		before := s.appRequests()
		s.queueThrough(t, s.browser(), "/shop")
		if s.appRequests() != before {
			t.Fatal("reached the upstream")
		}
	})

	t.Run("the second visitor waits, in several tabs, for the next advance", func(t *testing.T) {
		before := s.appRequests()
		resp, _ := s.do(t, second, http.MethodPost, secondWait+"/continue")
		if resp.Request.URL.String() != secondWait || s.appRequests() != before {
			t.Fatalf("continue at position 2 after one advance: %d at %s", resp.StatusCode, resp.Request.URL)
		}
		// Each reload of the site starts a new login with its own CSRF
		// cookie; the place stays the same, and oauth2-proxy keeps only the
		// newest few cookies.
		var otherTab string
		for range csrfLimit + 3 {
			otherTab, _ = s.queueThrough(t, second, "/orders")
			if st := pollStatus(t, second, otherTab); st.Position != 2 {
				t.Fatalf("after a reload: %+v", st)
			}
		}
		if n := len(s.csrfCookies(second)); n > csrfLimit+1 {
			t.Fatalf("%d CSRF cookies after %d reloads, limit %d", n, csrfLimit+3, csrfLimit)
		}
		// A newer tab and then an older one that still has its cookie both
		// finish once the counter reaches the visitor.
		lastTab, _ := s.queueThrough(t, second, "/account/orders")
		s.advance(t, 1)
		seen, _ := s.admitted(t, second, lastTab, "/account/orders")
		secondSub := seen.header.Get("X-Forwarded-User")
		if len(secondSub) != 22 || secondSub == sub {
			t.Fatalf("second visitor is %q (first %q)", secondSub, sub)
		}
		if seen, _ := s.admitted(t, second, otherTab, "/orders"); seen.header.Get("X-Forwarded-User") != secondSub {
			t.Fatalf("the older tab came back as %q, want %q", seen.header.Get("X-Forwarded-User"), secondSub)
		}
	})

	t.Run("signing out ends the session at Anteroom too", func(t *testing.T) {
		if active := s.introspect(t, accessToken); active != true {
			t.Fatalf("before sign-out: active=%v", active)
		}
		// oauth2-proxy calls backend_logout_url (Anteroom's end_session),
		// clears its cookie and sends the visitor home, which is the queue.
		resp, body := s.do(t, first, http.MethodGet, s.base+"/oauth2/sign_out")
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.String(), s.issuer+"/wait/") {
			t.Fatalf("after sign-out: %d at %s: %.300s", resp.StatusCode, resp.Request.URL, body)
		}
		if active := s.introspect(t, accessToken); active != false {
			t.Fatalf("after sign-out the access token is still active=%v; oauth2-proxy said:\n%s", active, s.output.String())
		}
		// Their next visit is a new place at the back, not the old one.
		if st := pollStatus(t, first, resp.Request.URL.String()); st.State != "waiting" || st.Position <= 2 {
			t.Fatalf("after sign-out: %+v", st)
		}
	})
}

// With oauth2-proxy's default cookie_csrf_expire of 15 minutes, every
// visitor who waits longer than that is turned away at the callback, after
// their turn came: the browser has dropped the CSRF cookie that carries the
// login's state, nonce and PKCE verifier, and oauth2-proxy would refuse it
// anyway, since it checks the time it signed into the cookie. A test cannot
// wait 15 minutes, so this one runs the example with a CSRF lifetime of one
// second and a visitor who waits longer: the same failure, scaled down.
// TestOAuth2ProxyUsesAnteroom checks that the example's own lifetime
// covers the room's max_wait, and that its visitors get through.
func TestOAuth2ProxyCSRFCookieMustOutliveTheWait(t *testing.T) {
	s := startO2PSite(t, map[string]string{`cookie_csrf_expire = "6h"`: `cookie_csrf_expire = "1s"`})
	b := s.browser()
	waitURL, _ := s.queueThrough(t, b, "/shop")
	kept := s.csrfCookies(b)
	if len(kept) != 1 {
		t.Fatalf("%d CSRF cookies after one login, want 1", len(kept))
	}

	// The visitor waits longer than the cookie lives; the browser drops it.
	deadline := time.Now().Add(10 * time.Second)
	for len(s.csrfCookies(b)) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the browser kept the CSRF cookie past its Max-Age")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Even a browser that kept it would not get through: put it back.
	u, _ := url.Parse(s.base)
	b.Jar.SetCookies(u, []*http.Cookie{{Name: kept[0].Name, Value: kept[0].Value, Path: "/"}})

	// Their turn comes; Anteroom issues the code, and oauth2-proxy refuses
	// the callback before redeeming it.
	s.advance(t, 1)
	resp, body := s.do(t, b, http.MethodPost, waitURL+"/continue")
	if resp.StatusCode != http.StatusForbidden || resp.Request.URL.Path != "/oauth2/callback" ||
		!strings.Contains(body, "Unable to find a valid CSRF token") || s.appRequests() != 0 {
		t.Fatalf("continue after the CSRF cookie expired: %d at %s: %.300s", resp.StatusCode, resp.Request.URL, body)
	}
	// oauth2-proxy writes its log line around the time it answers; give
	// the pipe a moment rather than race it.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(s.output.String(), "unable to obtain CSRF cookie"); {
		if time.Now().After(deadline) {
			t.Fatalf("oauth2-proxy did not say why it refused the callback:\n%s", s.output.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Starting again from the site is a new login, with a new CSRF cookie;
	// Anteroom keeps the place the visitor already reached.
	resp, body = s.do(t, b, http.MethodGet, s.base+"/shop")
	if strings.HasPrefix(resp.Request.URL.String(), s.issuer+"/wait/") {
		if st := pollStatus(t, b, resp.Request.URL.String()); st.State != "admitted" || st.Position != 1 {
			t.Fatalf("starting again after the refused callback: %+v", st)
		}
		s.admitted(t, b, resp.Request.URL.String(), "/shop")
	} else if resp.StatusCode != http.StatusOK || !strings.HasPrefix(body, "app: /shop\n") {
		t.Fatalf("starting again after the refused callback: %d at %s: %.300s", resp.StatusCode, resp.Request.URL, body)
	}
}
