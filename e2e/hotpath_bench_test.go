package e2e

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/anteroom/anteroom/config"
	"github.com/anteroom/anteroom/server"
)

// These benchmarks drive one instance's whole handler in process, without
// sockets, so that they measure what Anteroom itself spends on a hot path
// (CPU and allocations); bench/ measures the same paths over the network
// against baselines. Run them with
//
//	go test -run '^$' -bench . -benchmem ./e2e/

// hotApp is an instance on the package's redis-server with a manual room
// (visitors wait) and a passthrough room (flows go straight through).
func hotApp(b *testing.B, mutate ...func(*config.Config)) http.Handler {
	b.Helper()
	if err := redisServer.FlushAll(); err != nil {
		b.Fatal(err)
	}
	cfg := testConfig()
	cfg.Rooms = append(cfg.Rooms, config.Room{ID: "open", State: "passthrough"})
	cfg.Clients = append(cfg.Clients, config.Client{ID: "flow", Secret: secret, Room: "open", RedirectURIs: []string{rpCallback}})
	for _, m := range mutate {
		m(cfg)
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	// Start-up logs would interleave with the benchmark's lines.
	logger := slog.Default()
	slog.SetDefault(slog.New(slog.DiscardHandler))
	b.Cleanup(func() { slog.SetDefault(logger) })
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	a, err := server.New(ctx, cfg, redisServer.Client(b))
	if err != nil {
		b.Fatal(err)
	}
	go a.Cache().Run(ctx)
	go a.Scheduler().Run(ctx)
	return a.Handler()
}

// serve runs one request through h and returns the response.
func serve(h http.Handler, method, target, cookie string, form url.Values) *http.Response {
	var req *http.Request
	if form != nil {
		req = httptest.NewRequest(method, target, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req = httptest.NewRequest(method, target, nil)
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Result()
}

func authURL(clientID, redirect string, l login) string {
	conf := &oauth2.Config{ClientID: clientID, RedirectURL: redirect, Scopes: []string{gooidc.ScopeOpenID},
		Endpoint: oauth2.Endpoint{AuthURL: issuer + "/authorize"}}
	return conf.AuthCodeURL(l.state, gooidc.Nonce(l.nonce), oauth2.S256ChallengeOption(l.verifier))
}

// cookiesOf joins a response's Set-Cookie values into a Cookie header.
func cookiesOf(resp *http.Response) string {
	var parts []string
	for _, c := range resp.Cookies() {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; ")
}

// BenchmarkStatusPoll is a waiting page's poll: /wait/{id}?format=json with
// the visitor's ticket cookie (no Redis).
func BenchmarkStatusPoll(b *testing.B) {
	h := hotApp(b)
	resp := serve(h, http.MethodGet, authURL(publicAppID, publicRP, newLogin()), "", nil)
	waitURL := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(waitURL, issuer+"/wait/") {
		b.Fatalf("authorize: %s to %q", resp.Status, waitURL)
	}
	resp = serve(h, http.MethodGet, waitURL+"?format=json", "", nil)
	cookie := cookiesOf(resp)
	var st status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || st.State != "waiting" {
		b.Fatalf("join: %s %+v %v", resp.Status, st, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if resp := serve(h, http.MethodGet, waitURL+"?format=json", cookie, nil); resp.StatusCode != http.StatusOK {
			b.Fatal(resp.Status)
		}
	}
}

// BenchmarkJoin is a new visitor: authorize, then the waiting page's first
// visit, which joins the queue.
func BenchmarkJoin(b *testing.B) {
	h := hotApp(b)
	b.ReportAllocs()
	for b.Loop() {
		resp := serve(h, http.MethodGet, authURL(publicAppID, publicRP, newLogin()), "", nil)
		if resp = serve(h, http.MethodGet, resp.Header.Get("Location")+"?format=json", "", nil); resp.StatusCode != http.StatusOK {
			b.Fatal(resp.Status)
		}
	}
}

// BenchmarkFlow is a whole login in a passthrough room, as the server sees
// it: authorize, the waiting page (which lets the visitor straight
// through), the callback, and the token exchange with its two signatures.
func BenchmarkFlow(b *testing.B) {
	h := hotApp(b)
	b.ReportAllocs()
	for b.Loop() {
		l := newLogin()
		resp := serve(h, http.MethodGet, authURL("flow", rpCallback, l), "", nil)
		next := resp.Header.Get("Location")
		cookie := ""
		for range 4 {
			if strings.HasPrefix(next, rpCallback) {
				break
			}
			resp = serve(h, http.MethodGet, next, cookie, nil)
			if c := cookiesOf(resp); c != "" {
				cookie = c
			}
			next = resp.Header.Get("Location")
		}
		u, err := url.Parse(next)
		if err != nil || u.Query().Get("code") == "" {
			b.Fatalf("flow ended at %q (%s)", next, resp.Status)
		}
		form := url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")},
			"redirect_uri": {rpCallback}, "code_verifier": {l.verifier},
			"client_id": {"flow"}, "client_secret": {secret}}
		if resp = serve(h, http.MethodPost, issuer+"/oauth/token", "", form); resp.StatusCode != http.StatusOK {
			b.Fatalf("token: %s", resp.Status)
		}
	}
}

// BenchmarkGateAuth is nginx's auth_request for a visitor the gate has
// admitted: /gate/auth with the room's session cookie, answered from the
// session cache (no Redis).
func BenchmarkGateAuth(b *testing.B) {
	insecure := false
	h := hotApp(b, func(c *config.Config) {
		c.Gate = &config.Gate{Cookie: config.GateCookie{Secure: &insecure},
			Rules: []config.Rule{{PathPrefix: "/", Action: "queue", Room: "open"}}}
	})
	// A browser through the gate's login: start, authorize, the
	// passthrough room's waiting page, the callback that sets the cookie.
	jar := map[string]string{}
	next := issuer + "/gate/start?rd=%2Fapp"
	for range 6 {
		if !strings.HasPrefix(next, issuer) {
			break
		}
		var parts []string
		for k, v := range jar {
			parts = append(parts, k+"="+v)
		}
		resp := serve(h, http.MethodGet, next, strings.Join(parts, "; "), nil)
		for _, c := range resp.Cookies() {
			jar[c.Name] = c.Value
		}
		next = resp.Header.Get("Location")
		if strings.HasPrefix(next, "/") {
			next = issuer + next
		}
	}
	if jar["anteroom_gate_open"] == "" {
		b.Fatalf("no gate session after the login (cookies %v, ended at %q)", jar, next)
	}
	cookie := "anteroom_gate_open=" + jar["anteroom_gate_open"]
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodGet, issuer+"/gate/auth", nil)
		req.Header.Set("Cookie", cookie)
		req.Header.Set("X-Original-URI", "/app")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusNoContent {
			b.Fatalf("gate/auth: %d", w.Code)
		}
	}
}
