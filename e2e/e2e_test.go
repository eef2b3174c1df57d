package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"

	"github.com/anteroom/anteroom/config"
	"github.com/anteroom/anteroom/internal/testredis"
	"github.com/anteroom/anteroom/server"
)

// These tests run whole Anteroom instances on loopback against a real
// redis-server and drive them with an independent OIDC client (go-oidc and
// x/oauth2) and a cookie-keeping "browser".

var redisServer *testredis.Server

func TestMain(m *testing.M) {
	srv, err := testredis.New()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	redisServer = srv
	code := m.Run()
	srv.Close()
	removeBinary()
	os.Exit(code)
}

const (
	// issuerAddr is where every instance claims to be; the test's dialer
	// sends connections for it to whichever instance it chooses, as a load
	// balancer would.
	issuerAddr  = "127.0.0.1:1"
	issuer      = "http://" + issuerAddr
	rpHost      = "rp.example.com"
	rpCallback  = "https://" + rpHost + "/callback"
	publicRP    = "http://127.0.0.1:2/cb"
	clientID    = "shop"
	secret      = "shop-secret-0123456789"
	adminToken  = "admin-token-0123456789"
	roomID      = "launch"
	cookieKey   = "0123456789abcdef0123456789abcdef"
	publicAppID = "spa"
)

type clock struct{ ns atomic.Int64 }

func newClock() *clock                   { c := &clock{}; c.ns.Store(time.Now().UnixNano()); return c }
func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

type env struct {
	t       *testing.T
	cfg     *config.Config
	rdb     redis.UniversalClient
	clock   *clock
	backend atomic.Pointer[string]
}

func testConfig() *config.Config {
	cfg := &config.Config{
		Issuer:  issuer,
		Secrets: config.Secrets{CookieKeys: []string{cookieKey}},
		Admin:   config.Admin{Token: adminToken},
		Rooms: []config.Room{{
			ID: roomID, Name: "Launch",
			SessionTTL: config.Duration(30 * time.Minute), MaxWait: config.Duration(time.Hour),
		}},
		Clients: []config.Client{
			{ID: clientID, Secret: secret, Room: roomID, RedirectURIs: []string{rpCallback}},
			{ID: publicAppID, Room: roomID, RedirectURIs: []string{publicRP}},
		},
	}
	cfg.ApplyDefaults()
	return cfg
}

// newEnv flushes the test Redis and returns an environment whose instances
// use a clock the test controls (realClock: the wall clock).
func newEnv(t *testing.T, realClock bool, mutate func(*config.Config)) *env {
	t.Helper()
	if err := redisServer.FlushAll(); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	if mutate != nil {
		mutate(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, cfg: cfg, rdb: redisServer.Client(t)}
	if !realClock {
		e.clock = newClock()
	}
	return e
}

// start runs one instance and points the load balancer at it.
func (e *env) start() (*server.Server, string) {
	e.t.Helper()
	return e.startOn(e.rdb)
}

// startOn is start with the instance's own Redis client.
func (e *env) startOn(rdb redis.UniversalClient) (*server.Server, string) {
	e.t.Helper()
	a, addr, _ := e.run(rdb)
	return a, addr
}

// run is startOn that also returns stop, which shuts the instance down
// as SIGTERM does and returns when it is done (the test's cleanup calls it
// too).
func (e *env) run(rdb redis.UniversalClient) (*server.Server, string, func()) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var now func() time.Time
	if e.clock != nil {
		now = e.clock.Now
	}
	a, err := server.New(ctx, e.cfg, rdb, server.WithClock(now))
	if err != nil {
		e.t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = a.Serve(ctx, ln); close(done) }()
	stop := func() { cancel(); <-done }
	e.t.Cleanup(stop)
	addr := ln.Addr().String()
	e.route(addr)
	return a, addr, stop
}

func (e *env) route(addr string) { e.backend.Store(&addr) }

func (e *env) transport() *http.Transport {
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr == issuerAddr {
				addr = *e.backend.Load()
			}
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
		DisableKeepAlives: true,
	}
}

// browser is a visitor's browser: it keeps cookies, follows redirects, and
// stops at the relying party's callback (which does not exist here).
func (e *env) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar:       jar,
		Transport: e.transport(),
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Host == rpHost || req.URL.Host == "127.0.0.1:2" {
				return http.ErrUseLastResponse
			}
			if len(via) >= 20 {
				return errors.New("redirect loop")
			}
			return nil
		},
	}
}

// rp is the relying party's side: an oauth2 config discovered through go-oidc.
type rp struct {
	ctx      context.Context
	oauth    *oauth2.Config
	verifier *gooidc.IDTokenVerifier
	provider *gooidc.Provider
}

func (e *env) rp(id, sec, redirect string) *rp {
	e.t.Helper()
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: e.transport()})
	p, err := gooidc.NewProvider(ctx, issuer)
	if err != nil {
		e.t.Fatal(err)
	}
	return &rp{ctx: ctx, provider: p, verifier: p.Verifier(&gooidc.Config{ClientID: id}),
		oauth: &oauth2.Config{ClientID: id, ClientSecret: sec, Endpoint: p.Endpoint(), RedirectURL: redirect, Scopes: []string{gooidc.ScopeOpenID}}}
}

// login is one visitor's attempt: the authorization URL's parameters.
type login struct {
	state, nonce, verifier string
}

func newLogin() login {
	return login{state: rand22(), nonce: rand22(), verifier: oauth2.GenerateVerifier()}
}

func rand22() string { return oauth2.GenerateVerifier()[:22] }

func (r *rp) authURL(l login, extra ...oauth2.AuthCodeOption) string {
	opts := append([]oauth2.AuthCodeOption{gooidc.Nonce(l.nonce), oauth2.S256ChallengeOption(l.verifier)}, extra...)
	return r.oauth.AuthCodeURL(l.state, opts...)
}

// visit follows u in the browser and returns the last response, its body
// read into a string.
func visit(t *testing.T, b *http.Client, method, u string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, u, nil)
	resp, err := b.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// codeFrom returns the code of a redirect to the relying party, or "".
func codeFrom(t *testing.T, resp *http.Response, l login) string {
	t.Helper()
	loc, err := resp.Location()
	if err != nil || (loc.Host != rpHost && loc.Host != "127.0.0.1:2") {
		return ""
	}
	if got := loc.Query().Get("state"); got != l.state {
		t.Fatalf("state %q, want %q", got, l.state)
	}
	return loc.Query().Get("code")
}

type status struct {
	Room        string `json:"room"`
	State       string `json:"state"`
	Position    int64  `json:"position"`
	Serving     int64  `json:"serving"`
	Ahead       int64  `json:"ahead"`
	ETASeconds  *int64 `json:"eta_seconds"`
	ContinueURL string `json:"continue_url"`
}

func pollStatus(t *testing.T, b *http.Client, waitURL string) status {
	t.Helper()
	resp, body := visit(t, b, http.MethodGet, waitURL+"?format=json")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status poll: %d %s", resp.StatusCode, body)
	}
	var st status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("status poll: %v: %s", err, body)
	}
	return st
}

// queue sends a visitor to the authorization endpoint and returns the
// waiting page's URL.
func queue(t *testing.T, b *http.Client, r *rp, l login) string {
	t.Helper()
	resp, body := visit(t, b, http.MethodGet, r.authURL(l))
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.String(), issuer+"/wait/") {
		t.Fatalf("expected the waiting page, got %d at %s: %.300s", resp.StatusCode, resp.Request.URL, body)
	}
	return resp.Request.URL.String()
}

func (e *env) admin(method, path, body string) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(method, issuer+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := (&http.Client{Transport: e.transport()}).Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&doc)
	return resp.StatusCode, doc
}

func (e *env) advance(n int) {
	e.t.Helper()
	if code, doc := e.admin(http.MethodPost, "/admin/v1/rooms/"+roomID+"/advance", fmt.Sprintf(`{"count": %d}`, n)); code != http.StatusOK {
		e.t.Fatalf("advance: %d %v", code, doc)
	}
}

// admittedCode queues a new visitor in a fresh browser, admits them and
// returns the code the relying party receives, with the login it belongs to.
func (e *env) admittedCode(r *rp) (string, login) {
	e.t.Helper()
	b := e.browser()
	l := newLogin()
	waitURL := queue(e.t, b, r, l)
	e.advance(1)
	resp, _ := visit(e.t, b, http.MethodPost, waitURL+"/continue")
	code := codeFrom(e.t, resp, l)
	if code == "" {
		e.t.Fatalf("no code after admission: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	return code, l
}

func TestFlowQueuesThenIssuesTokensWithQueueClaims(t *testing.T) {
	e := newEnv(t, false, nil)
	e.start()
	r := e.rp(clientID, secret, rpCallback)
	b := e.browser()
	l := newLogin()
	waitURL := queue(t, b, r, l)

	st := pollStatus(t, b, waitURL)
	if st.State != "waiting" || st.Position != 1 || st.Ahead != 0 || st.Serving != 0 || st.ContinueURL != "" {
		t.Fatalf("before admission: %+v", st)
	}
	// continue before the counter reaches the visitor: back to the page, no code.
	resp, _ := visit(t, b, http.MethodPost, waitURL+"/continue")
	if codeFrom(t, resp, l) != "" || resp.Request.URL.String() != waitURL {
		t.Fatalf("continue before admission ended at %s", resp.Request.URL)
	}
	// The provider's callback refuses a request that is not done.
	cb, _ := visit(t, b, http.MethodGet, issuer+"/authorize/callback?id="+url.QueryEscape(strings.TrimPrefix(waitURL, issuer+"/wait/")))
	if codeFrom(t, cb, l) != "" {
		t.Fatal("callback issued a code before admission")
	}

	e.advance(1)
	st = pollStatus(t, b, waitURL)
	if st.State != "admitted" || st.ContinueURL != waitURL+"/continue" {
		t.Fatalf("after advance: %+v", st)
	}
	resp, _ = visit(t, b, http.MethodPost, st.ContinueURL)
	code := codeFrom(t, resp, l)
	if code == "" {
		t.Fatalf("no code after admission; ended at %s (%d)", resp.Request.URL, resp.StatusCode)
	}
	tok, err := r.oauth.Exchange(r.ctx, code, oauth2.VerifierOption(l.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := r.verifier.Verify(r.ctx, raw)
	if err != nil {
		t.Fatalf("verify ID token: %v", err)
	}
	if idt.Nonce != l.nonce {
		t.Fatalf("nonce %q", idt.Nonce)
	}
	var claims struct {
		Sub        string `json:"sub"`
		Room       string `json:"room"`
		Position   int64  `json:"queue_position"`
		QueuedAt   int64  `json:"queued_at"`
		AdmittedAt int64  `json:"admitted_at"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now().Unix()
	if len(claims.Sub) != 22 || claims.Room != roomID || claims.Position != 1 ||
		claims.QueuedAt == 0 || claims.QueuedAt > claims.AdmittedAt || claims.AdmittedAt > now {
		t.Fatalf("ID token claims: %+v (now %d)", claims, now)
	}

	// The access token is a JWT a downstream API verifies with the JWKS alone.
	at, err := r.provider.VerifierContext(r.ctx, &gooidc.Config{ClientID: clientID}).Verify(r.ctx, tok.AccessToken)
	if err != nil {
		t.Fatalf("verify access token with the JWKS: %v", err)
	}
	var atClaims struct {
		Sub      string `json:"sub"`
		Room     string `json:"room"`
		Position int64  `json:"queue_position"`
		Exp      int64  `json:"exp"`
	}
	_ = at.Claims(&atClaims)
	if atClaims.Sub != claims.Sub || atClaims.Room != roomID || atClaims.Position != 1 {
		t.Fatalf("access token claims: %+v", atClaims)
	}
	if limit := claims.AdmittedAt + int64((30 * time.Minute).Seconds()); atClaims.Exp > limit {
		t.Fatalf("access token exp %d outlives the session (%d)", atClaims.Exp, limit)
	}

	// userinfo answers with the same subject and claims.
	info, err := r.provider.UserInfo(r.ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	var infoClaims map[string]any
	_ = info.Claims(&infoClaims)
	if info.Subject != claims.Sub || infoClaims["room"] != roomID {
		t.Fatalf("userinfo: %s %v", info.Subject, infoClaims)
	}

	// introspection by the client says active, then revocation ends it.
	if active := introspect(t, e, tok.AccessToken); active != true {
		t.Fatalf("introspection before revocation: active=%v", active)
	}
	if status := revoke(t, e, tok.AccessToken); status != http.StatusOK {
		t.Fatalf("revoke: %d", status)
	}
	if active := introspect(t, e, tok.AccessToken); active != false {
		t.Fatalf("introspection after revocation: active=%v", active)
	}
	if _, err := r.provider.UserInfo(r.ctx, oauth2.StaticTokenSource(tok)); err == nil {
		t.Fatal("userinfo accepted a revoked token")
	}
	if _, err := r.oauth.Exchange(r.ctx, code, oauth2.VerifierOption(l.verifier)); err == nil {
		t.Fatal("second exchange of the same code succeeded")
	}

	// end_session frees the visitor's slot at once.
	if _, doc := e.admin(http.MethodGet, "/admin/v1/rooms/"+roomID, ""); doc["active"] != float64(1) {
		t.Fatalf("active before logout: %v", doc["active"])
	}
	resp, _ = visit(t, b, http.MethodGet, issuer+"/end_session?id_token_hint="+url.QueryEscape(raw)+"&client_id="+clientID)
	if resp.StatusCode >= 400 {
		t.Fatalf("end_session: %d", resp.StatusCode)
	}
	if _, doc := e.admin(http.MethodGet, "/admin/v1/rooms/"+roomID, ""); doc["active"] != float64(0) {
		t.Fatalf("active after logout: %v", doc["active"])
	}
}

// revoke revokes token as the test client (RFC 7009) and returns the status.
func revoke(t *testing.T, e *env, token string) int {
	t.Helper()
	resp := postToken(t, e, "/revoke", token)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// introspect returns the "active" of token's introspection by the test client.
func introspect(t *testing.T, e *env, token string) any {
	t.Helper()
	resp := postToken(t, e, "/oauth/introspect", token)
	defer resp.Body.Close()
	var doc map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&doc)
	return doc["active"]
}

// postToken posts token to path as the test client.
func postToken(t *testing.T, e *env, path, token string) *http.Response {
	t.Helper()
	form := url.Values{"token": {token}}
	req, _ := http.NewRequest(http.MethodPost, issuer+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	resp, err := (&http.Client{Transport: e.transport()}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestVisitorsKeepOrderAndPositionAcrossRestartedLogins(t *testing.T) {
	h := newHarness(t)
	alice, bob := h.visitor(), h.visitor()
	alice.queue()
	bobFirst := bob.queue()
	if a, b := alice.status(), bob.status(); a.Position != 1 || b.Position != 2 || b.Ahead != 1 {
		t.Fatalf("positions: alice %+v, bob %+v", a, b)
	}
	// Bob restarts his login (new tab, new auth request): same place.
	if bob.queue() == bobFirst {
		t.Fatal("restarted login reused the auth request")
	}
	if st := bob.status(); st.Position != 2 {
		t.Fatalf("restarted login moved bob to %d", st.Position)
	}
	// One admission lets Alice in, not Bob.
	h.advance(1)
	if st := alice.status(); st.State != "admitted" {
		t.Fatalf("alice: %+v", st)
	}
	if st := bob.status(); st.State != "waiting" || st.Ahead != 0 {
		t.Fatalf("bob: %+v", st)
	}
	h.advance(1)
	if bob.reload() == "" { // a reload continues by itself
		t.Fatal("admitted bob's reload did not continue to the site")
	}
}

func TestCopiedWaitURLCannotContinueInAnotherBrowser(t *testing.T) {
	h := newHarness(t)
	owner, other := h.visitor(), h.visitor()
	waitURL := owner.queue()
	h.advance(5)

	resp, body := visit(t, other.browser, http.MethodGet, waitURL)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "start again from the site") {
		t.Fatalf("copied URL: %d %.300s", resp.StatusCode, body)
	}
	resp, _ = visit(t, other.browser, http.MethodPost, waitURL+"/continue")
	if codeFrom(t, resp, owner.login) != "" || resp.StatusCode < 400 {
		t.Fatalf("other browser continued: %d", resp.StatusCode)
	}
	// The copy cost no position: the room still has one visitor.
	if tail := h.tail(); tail != float64(1) {
		t.Fatalf("tail after copied URL: %v", tail)
	}
	if owner.proceed() == "" {
		t.Fatal("owner could not continue")
	}
}

func TestFlowStartedOnOneInstanceFinishesOnAnother(t *testing.T) {
	h := newHarness(t, instances(2))
	v := h.visitor()
	v.queue() // on A

	h.on(1)
	h.advance(1)
	code := v.proceed()
	if code == "" {
		t.Fatal("continue on B did not send the visitor back with a code")
	}
	h.on(0)
	tok, err := h.rp.oauth.Exchange(h.rp.ctx, code, oauth2.VerifierOption(v.login.verifier))
	if err != nil {
		t.Fatalf("exchange on A of a code from B: %v", err)
	}
	h.on(1)
	if _, err := h.rp.verifier.Verify(h.rp.ctx, tok.Extra("id_token").(string)); err != nil {
		t.Fatalf("verify with B's JWKS: %v", err)
	}
}

func TestOnlyOneInstanceSchedulesARoom(t *testing.T) {
	h := newHarness(t, wallClock(), ratePerMinute(120), instances(2))
	a, b := h.instance(0), h.instance(1)
	var byA, byB atomic.Int64
	a.Scheduler().OnAdvance = func(_ string, n int64) { byA.Add(n) }
	b.Scheduler().OnAdvance = func(_ string, n int64) { byB.Add(n) }
	for range 8 {
		// Not queue: the schedule may admit a visitor before they see the
		// page.
		if resp, _ := visit(t, h.visitor().browser, http.MethodGet, h.rp.authURL(newLogin())); resp.StatusCode >= 400 {
			t.Fatalf("join: %d", resp.StatusCode)
		}
	}
	if !waitUntil(15*time.Second, func() bool { return byA.Load()+byB.Load() >= 3 }) {
		t.Fatalf("the room admitted %d by schedule", byA.Load()+byB.Load())
	}
	if byA.Load() > 0 && byB.Load() > 0 {
		t.Fatalf("both instances advanced the room: %d and %d", byA.Load(), byB.Load())
	}
	if a.Scheduler().Leading(roomID) == b.Scheduler().Leading(roomID) {
		t.Fatalf("leading: a=%v b=%v", a.Scheduler().Leading(roomID), b.Scheduler().Leading(roomID))
	}
}

func TestConcurrentRedemptionsOfOneCode(t *testing.T) {
	e := newEnv(t, false, nil)
	e.start()
	r := e.rp(clientID, secret, rpCallback)
	code, l := e.admittedCode(r)
	var wins atomic.Int64
	var winner atomic.Pointer[oauth2.Token]
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if tok, err := r.oauth.Exchange(r.ctx, code, oauth2.VerifierOption(l.verifier)); err == nil {
				wins.Add(1)
				winner.Store(tok)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d of 20 concurrent redemptions succeeded", wins.Load())
	}
	// The 19 losers were second uses of the code all the same (RFC 6749
	// §4.1.2): what the winner got is revoked.
	if active := introspect(t, e, winner.Load().AccessToken); active != false {
		t.Fatalf("the winner's token after 19 other redemptions: active=%v", active)
	}
	// A code presented again after it was spent is refused.
	if _, err := r.oauth.Exchange(r.ctx, code, oauth2.VerifierOption(l.verifier)); err == nil {
		t.Fatal("replayed code succeeded")
	}
	if active := introspect(t, e, winner.Load().AccessToken); active != false {
		t.Fatalf("token of a replayed code is still active: %v", active)
	}
}

func TestWrongVerifierDoesNotBurnTheCode(t *testing.T) {
	e := newEnv(t, false, nil)
	e.start()
	r := e.rp(clientID, secret, rpCallback)
	code, l := e.admittedCode(r)
	if _, err := r.oauth.Exchange(r.ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier())); err == nil {
		t.Fatal("exchange with the wrong PKCE verifier succeeded")
	}
	if _, err := r.oauth.Exchange(r.ctx, code, oauth2.VerifierOption(l.verifier)); err != nil {
		t.Fatalf("exchange with the right verifier after a wrong one: %v", err)
	}
}

func TestPromptNone(t *testing.T) {
	e := newEnv(t, false, nil)
	e.start()
	r := e.rp(clientID, secret, rpCallback)
	b := e.browser()
	l := newLogin()
	resp, _ := visit(t, b, http.MethodGet, r.authURL(l, oauth2.SetAuthURLParam("prompt", "none")))
	loc, _ := resp.Location()
	if loc == nil || loc.Host != rpHost || loc.Query().Get("error") != "login_required" || loc.Query().Get("state") != l.state {
		t.Fatalf("prompt=none for a newcomer: %d %v", resp.StatusCode, loc)
	}
	if _, doc := e.admin(http.MethodGet, "/admin/v1/rooms/"+roomID, ""); doc["tail"] != float64(0) {
		t.Fatalf("prompt=none queued someone: tail %v", doc["tail"])
	}
	// Once admitted, a silent re-authentication succeeds.
	waitURL := queue(t, b, r, newLogin())
	e.advance(1)
	first := newLogin()
	resp, _ = visit(t, b, http.MethodPost, waitURL+"/continue")
	if loc, _ := resp.Location(); resp.StatusCode != http.StatusSeeOther || loc == nil || loc.Host != rpHost {
		t.Fatalf("continue: %d to %v, want 303 to the relying party", resp.StatusCode, loc)
	}
	resp, _ = visit(t, b, http.MethodGet, r.authURL(first, oauth2.SetAuthURLParam("prompt", "none")))
	if codeFrom(t, resp, first) == "" {
		t.Fatalf("prompt=none for an admitted visitor: %d %v", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestBadRequestsGetTheRightErrorAndAdmitNobody(t *testing.T) {
	e := newEnv(t, false, nil)
	e.start()
	r := e.rp(clientID, secret, rpCallback)
	plain := &http.Client{Transport: e.transport(), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(u string) (*http.Response, string) { return visit(t, plain, http.MethodGet, u) }

	t.Run("unregistered redirect_uri gets a page, no redirect", func(t *testing.T) {
		u := strings.Replace(r.authURL(newLogin()), url.QueryEscape(rpCallback), url.QueryEscape("https://evil.example/cb"), 1)
		resp, _ := get(u)
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Fatalf("%d location=%q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("unknown client gets a page, no redirect", func(t *testing.T) {
		u := strings.Replace(r.authURL(newLogin()), "client_id="+clientID, "client_id=nobody", 1)
		resp, _ := get(u)
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Fatalf("%d location=%q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("public client without PKCE", func(t *testing.T) {
		pub := e.rp(publicAppID, "", publicRP)
		resp, _ := get(pub.oauth.AuthCodeURL("st"))
		loc, _ := resp.Location()
		if loc == nil || loc.Host != "127.0.0.1:2" || loc.Query().Get("error") != "invalid_request" {
			t.Fatalf("%d %v", resp.StatusCode, loc)
		}
	})
	t.Run("PKCE plain is refused", func(t *testing.T) {
		u := r.oauth.AuthCodeURL("st", oauth2.SetAuthURLParam("code_challenge", strings.Repeat("a", 43)), oauth2.SetAuthURLParam("code_challenge_method", "plain"))
		resp, _ := get(u)
		loc, _ := resp.Location()
		if loc == nil || loc.Query().Get("error") != "invalid_request" {
			t.Fatalf("%d %v", resp.StatusCode, loc)
		}
	})
	t.Run("bad client secret", func(t *testing.T) {
		code, l := e.admittedCode(r)
		bad := *r.oauth
		bad.ClientSecret = "wrong-secret-0123456789"
		_, err := bad.Exchange(r.ctx, code, oauth2.VerifierOption(l.verifier))
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "invalid_client" {
			t.Fatalf("bad secret: %v", err)
		}
	})
	t.Run("tampered ticket cookie", func(t *testing.T) {
		b := e.browser()
		l := newLogin()
		waitURL := queue(t, b, r, l)
		u, _ := url.Parse(issuer)
		for _, c := range b.Jar.Cookies(u) {
			if strings.HasPrefix(c.Name, "anteroom_") {
				v := []byte(c.Value)
				v[len(v)/2] ^= 1
				c.Value = string(v)
				b.Jar.SetCookies(u, []*http.Cookie{c})
			}
		}
		e.advance(100)
		resp, body := visit(t, b, http.MethodPost, waitURL+"/continue")
		if codeFrom(t, resp, l) != "" || resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "start again") {
			t.Fatalf("tampered cookie: %d %.200s", resp.StatusCode, body)
		}
		resp, body = visit(t, b, http.MethodGet, waitURL)
		if codeFrom(t, resp, l) != "" || resp.StatusCode != http.StatusConflict {
			t.Fatalf("tampered cookie reload: %d %.200s", resp.StatusCode, body)
		}
	})
	t.Run("expired auth request", func(t *testing.T) {
		b := e.browser()
		l := newLogin()
		waitURL := queue(t, b, r, l)
		e.advance(100)
		e.clock.Advance(time.Hour + time.Second)
		resp, body := visit(t, b, http.MethodPost, waitURL+"/continue")
		if codeFrom(t, resp, l) != "" || resp.StatusCode != http.StatusGone {
			t.Fatalf("expired request: %d %.200s", resp.StatusCode, body)
		}
	})
	t.Run("pages carry anti-framing headers and the token response is not cacheable", func(t *testing.T) {
		resp, _ := get(issuer + "/wait/nonsense")
		if resp.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") || resp.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Fatalf("headers: %v", resp.Header)
		}
		req, _ := http.NewRequest(http.MethodPost, issuer+"/oauth/token", strings.NewReader("grant_type=authorization_code&code=x"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(clientID, secret)
		tr, err := plain.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		tr.Body.Close()
		if tr.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("token response Cache-Control %q", tr.Header.Get("Cache-Control"))
		}
		req, _ = http.NewRequest(http.MethodGet, r.authURL(newLogin()), nil)
		req.Header.Set("Origin", "https://evil.example")
		ar, err := plain.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		ar.Body.Close()
		if got := ar.Header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Fatalf("/authorize answered CORS: %q", got)
		}
	})
}

func TestAdminAPIGuardsAndValidates(t *testing.T) {
	e := newEnv(t, false, nil)
	e.start()
	c := &http.Client{Transport: e.transport()}
	do := func(method, path, token, body string) (int, string) {
		req, _ := http.NewRequest(method, issuer+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	path := "/admin/v1/rooms/" + roomID
	if code, _ := do(http.MethodGet, path, "", ""); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d", code)
	}
	if code, _ := do(http.MethodPost, path+"/advance", "wrong-token-0123456789", `{"count":5}`); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", code)
	}
	for _, body := range []string{`{"count":0}`, `{"count":-1}`, `{"count":"x"}`, `{"cnt":1}`, `nope`} {
		if code, _ := do(http.MethodPost, path+"/advance", adminToken, body); code != http.StatusBadRequest {
			t.Fatalf("advance %s: %d", body, code)
		}
	}
	for _, body := range []string{`{"state":"asleep"}`, `{"rate_per_minute":-5}`, `{"max_active":-1}`, `{"colour":"red"}`} {
		if code, _ := do(http.MethodPatch, path, adminToken, body); code != http.StatusBadRequest {
			t.Fatalf("patch %s: %d", body, code)
		}
	}
	if code, _ := do(http.MethodGet, "/admin/v1/rooms/nowhere", adminToken, ""); code != http.StatusNotFound {
		t.Fatalf("unknown room: %d", code)
	}

	// A paused room tells its visitors so and keeps their place.
	r := e.rp(clientID, secret, rpCallback)
	b := e.browser()
	waitURL := queue(t, b, r, newLogin())
	if code, body := do(http.MethodPatch, path, adminToken, `{"state":"paused","rate_per_minute":30}`); code != http.StatusOK ||
		!strings.Contains(body, `"state":"paused"`) || !strings.Contains(body, `"rate_per_minute":30`) {
		t.Fatalf("patch: %d %s", code, body)
	}
	if st := pollStatus(t, b, waitURL); st.State != "paused" || st.Position != 1 {
		t.Fatalf("paused room: %+v", st)
	}
	if code, body := do(http.MethodGet, "/api/v1/rooms/"+roomID, "", ""); code != http.StatusOK || !strings.Contains(body, `"waiting":1`) {
		t.Fatalf("public status: %d %s", code, body)
	}
}

func TestRedisOutageAnswers503AndRecoversWithoutRestart(t *testing.T) {
	if !redisServer.Real() {
		t.Skip("needs a real redis-server to kill")
	}
	e := newEnv(t, false, nil)
	e.start()
	r := e.rp(clientID, secret, rpCallback)
	b := e.browser()
	if err := redisServer.Kill(); err != nil {
		t.Fatal(err)
	}
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = redisServer.Restart()
		}
	})
	resp, body := visit(t, b, http.MethodGet, r.authURL(newLogin()))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "try again") {
		t.Fatalf("during the outage: %d Retry-After=%q %.200s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if err := redisServer.Restart(); err != nil {
		t.Fatal(err)
	}
	restarted = true
	// The restarted server is empty (no persistence in this test): the
	// room is seeded again on demand and the signing key set restored.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, body = visit(t, b, http.MethodGet, r.authURL(newLogin()))
		if resp.StatusCode == http.StatusOK || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="position"`) {
		t.Fatalf("after recovery: %d %.300s", resp.StatusCode, body)
	}
}

func TestEventsStreamPushesAdmission(t *testing.T) {
	e := newEnv(t, false, nil)
	e.start()
	r := e.rp(clientID, secret, rpCallback)
	b := e.browser()
	waitURL := queue(t, b, r, newLogin())
	req, _ := http.NewRequest(http.MethodGet, waitURL+"/events", nil)
	resp, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("events: %d %q", resp.StatusCode, ct)
	}
	events := make(chan status, 4)
	go func() {
		defer close(events)
		buf := make([]byte, 0, 4096)
		chunk := make([]byte, 1024)
		for {
			n, err := resp.Body.Read(chunk)
			buf = append(buf, chunk[:n]...)
			for {
				i := strings.Index(string(buf), "\n\n")
				if i < 0 {
					break
				}
				frame := string(buf[:i])
				buf = buf[i+2:]
				if data, ok := strings.CutPrefix(frame, "data: "); ok {
					var st status
					if json.Unmarshal([]byte(data), &st) == nil {
						events <- st
					}
				}
			}
			if err != nil {
				return
			}
		}
	}()
	next := func() status {
		select {
		case st, ok := <-events:
			if !ok {
				t.Fatal("stream ended")
			}
			return st
		case <-time.After(10 * time.Second):
			t.Fatal("no event")
		}
		return status{}
	}
	if st := next(); st.State != "waiting" || st.Position != 1 {
		t.Fatalf("first event: %+v", st)
	}
	e.advance(1)
	if st := next(); st.State != "admitted" || st.ContinueURL != waitURL+"/continue" {
		t.Fatalf("after advance: %+v", st)
	}
}

func TestLogoutEndsTokensAndTheNextLoginQueuesAgain(t *testing.T) {
	e := newEnv(t, false, nil)
	e.start()
	r := e.rp(clientID, secret, rpCallback)
	b := e.browser()
	l := newLogin()
	waitURL := queue(t, b, r, l)
	e.advance(1)
	resp, _ := visit(t, b, http.MethodPost, waitURL+"/continue")
	tok, err := r.oauth.Exchange(r.ctx, codeFrom(t, resp, l), oauth2.VerifierOption(l.verifier))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if active := introspect(t, e, tok.AccessToken); active != true {
		t.Fatalf("before logout: active=%v", active)
	}
	visit(t, b, http.MethodGet, issuer+"/end_session?id_token_hint="+url.QueryEscape(raw)+"&client_id="+clientID)
	if active := introspect(t, e, tok.AccessToken); active != false {
		t.Fatalf("after logout: active=%v", active)
	}
	if _, err := r.provider.UserInfo(r.ctx, oauth2.StaticTokenSource(tok)); err == nil {
		t.Fatal("userinfo answered after logout")
	}
	// The next login is a new visit: a new place at the back, not an error.
	next := newLogin()
	resp, body := visit(t, b, http.MethodGet, r.authURL(next))
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `<dd id="position">2</dd>`) {
		t.Fatalf("login after logout: %d at %s: %.400s", resp.StatusCode, resp.Request.URL, body)
	}
}

func TestTokenEndpointDuringAnOutageAsksToRetry(t *testing.T) {
	if !redisServer.Real() {
		t.Skip("needs a real redis-server to kill")
	}
	e := newEnv(t, false, nil)
	e.start()
	r := e.rp(clientID, secret, rpCallback)
	code, l := e.admittedCode(r)
	if err := redisServer.Kill(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = redisServer.Restart() })
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {rpCallback}, "code_verifier": {l.verifier}}
	req, _ := http.NewRequest(http.MethodPost, issuer+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	tr, err := (&http.Client{Transport: e.transport()}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(tr.Body)
	tr.Body.Close()
	if tr.StatusCode != http.StatusServiceUnavailable || tr.Header.Get("Retry-After") == "" ||
		!strings.Contains(string(body), "temporarily_unavailable") || strings.Contains(string(body), "dial") {
		t.Fatalf("token endpoint during outage: %d %q %s", tr.StatusCode, tr.Header.Get("Retry-After"), body)
	}
}

func TestPreQueueThroughHTTP(t *testing.T) {
	e := newEnv(t, false, func(c *config.Config) {
		rate := 60.0
		c.Rooms[0].Admission.RatePerMinute = &rate
	})
	// Opens an hour from the test clock's start.
	e.cfg.Rooms[0].OpensAt = e.clock.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	a, _ := e.start()
	r := e.rp(clientID, secret, rpCallback)
	b := e.browser()
	resp, body := visit(t, b, http.MethodGet, r.authURL(newLogin()))
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "drawn at opening") || !strings.Contains(body, "The room opens at") {
		t.Fatalf("before opening: %d %.400s", resp.StatusCode, body)
	}
	waitURL := resp.Request.URL.String()
	if st := pollStatus(t, b, waitURL); st.State != "waiting" || st.Position != 0 {
		t.Fatalf("pre-queue status: %+v", st)
	}
	e.clock.Advance(time.Hour + time.Second)
	if err := a.Scheduler().Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := a.Cache().Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := pollStatus(t, b, waitURL)
	if st.Position != 1 || st.State != "admitted" {
		t.Fatalf("after opening (the only early visitor draws 1 and the idle budget admits them): %+v", st)
	}
}
