package gate

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/anteroom/anteroom/config"
	"github.com/anteroom/anteroom/internal/testredis"
	"github.com/anteroom/anteroom/keys"
	"github.com/anteroom/anteroom/waitingroom"
)

const testIssuer = "https://shop.example.com/_anteroom"

type fakeHealth struct{ err error }

func (f *fakeHealth) Err() error { return f.err }

// noExchange refuses every code and counts the attempts.
type noExchange struct{ calls *int }

func (x noExchange) ExchangeCode(context.Context, string, string, string, string) (string, error) {
	*x.calls++
	return "", errors.New("not in this test")
}

type fixture struct {
	g      *Gate
	keys   *keys.Manager
	health *fakeHealth
	now    time.Time
	calls  int
	// codes are what the fixture's exchanger redeems: code -> the ID
	// token's claims (its aud is set to the client).
	codes map[string]idClaims
	store *fakeSessions
}

// fixtureExchange redeems the codes of fixture.codes, as the provider
// would: an ID token signed with the fixture's key.
type fixtureExchange struct{ f *fixture }

func (x fixtureExchange) ExchangeCode(_ context.Context, clientID, code, _, _ string) (string, error) {
	x.f.calls++
	c, ok := x.f.codes[code]
	if !ok {
		return "", errors.New("invalid_grant: unknown code")
	}
	c.Audience = jwt.Audience{clientID}
	return signedWith(x.f.keys.Signing(), c)
}

// cookieTickets reads the room's ticket cookie as the plain ticket id (the
// web package seals it; the gate needs only the id).
type cookieTickets struct{}

func (cookieTickets) TicketID(r *http.Request, room string) (string, bool) {
	c, err := r.Cookie("anteroom_" + room)
	if err != nil || c.Value == "" {
		return "", false
	}
	return c.Value, true
}

// fakeSessions is the store's view of sessions: ticket id -> end.
type fakeSessions struct {
	ends  map[waitingroom.TicketID]time.Time
	err   error
	calls int
	// deadline is the last check's context deadline.
	deadline time.Time
}

func (s *fakeSessions) SessionEnd(ctx context.Context, _ string, id waitingroom.TicketID) (time.Time, bool, error) {
	s.calls++
	s.deadline, _ = ctx.Deadline()
	if s.err != nil {
		return time.Time{}, false, s.err
	}
	t, ok := s.ends[id]
	return t, ok, nil
}

// newFixture builds a gate whose clock, and its key manager's, is f.now;
// keyOpts, when given, configures the key manager.
func newFixture(t *testing.T, keyOpts ...keys.Options) *fixture {
	t.Helper()
	rdb := testredis.Start(t).Client(t)
	secret := [][]byte{bytes.Repeat([]byte{7}, 32)}
	kb, _ := keys.NewBox(secret, "signing keys")
	f := &fixture{health: &fakeHealth{}, now: time.Unix(1_800_000_000, 0), codes: map[string]idClaims{},
		store: &fakeSessions{ends: map[waitingroom.TicketID]time.Time{}}}
	var ko keys.Options
	if len(keyOpts) > 0 {
		ko = keyOpts[0]
	}
	ko.Now = func() time.Time { return f.now }
	km, err := keys.NewManager(context.Background(), rdb, kb, ko)
	if err != nil {
		t.Fatal(err)
	}
	f.keys = km
	box, _ := keys.NewBox(secret, "gate flow")
	cfg := &config.Gate{
		DynamicPaths: []string{"/checkout"},
		Rules: []config.Rule{
			{PathPrefix: "/static/", Action: "bypass"},
			{PathPrefix: "/private/", Action: "block"},
			{PathPrefix: "/sale", Action: "queue", Room: "sale"},
			{PathPrefix: "/", Action: "queue", Room: "launch"},
		},
	}
	cfg.ApplyDefaults()
	f.g, err = New(Options{
		Issuer: testIssuer, Config: cfg, Keys: km, Box: box, Exchanger: fixtureExchange{f}, Health: f.health,
		Tickets: cookieTickets{}, Sessions: f.store,
		Rooms: map[string]Room{
			"launch": {Room: waitingroom.Room{ID: "launch", SessionTTL: 30 * time.Minute, MaxWait: time.Hour}},
			"sale":   {Room: waitingroom.Room{ID: "sale", SessionTTL: 30 * time.Minute, MaxWait: time.Hour}, FailOpen: true},
		},
		ClientID:   func(r string) string { return "gate-" + r },
		Now:        func() time.Time { return f.now },
		Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) claims(room string) sessionClaims {
	return sessionClaims{
		Claims: jwt.Claims{Issuer: testIssuer, Subject: "ticket-0000000000000000", Audience: jwt.Audience{Audience},
			Expiry: jwt.NewNumericDate(f.now.Add(10 * time.Minute)), IssuedAt: jwt.NewNumericDate(f.now)},
		Room: room, Position: 7,
	}
}

func (f *fixture) token(t *testing.T, c sessionClaims) string {
	t.Helper()
	tok, err := signedWith(f.keys.Signing(), c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (f *fixture) auth(uri string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "/gate/auth", nil)
	r.Header.Set("X-Original-URI", uri)
	for _, c := range cookies {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	f.g.auth(w, r)
	return w
}

func TestAuthAnswersByRuleAndSession(t *testing.T) {
	f := newFixture(t)
	cookie := func(room, value string) *http.Cookie { return &http.Cookie{Name: f.g.CookieName(room), Value: value} }
	valid := f.token(t, f.claims("launch"))

	if w := f.auth("/static/a.css"); w.Code != http.StatusNoContent {
		t.Fatalf("bypass: %d", w.Code)
	}
	if w := f.auth("/private/x"); w.Code != http.StatusForbidden {
		t.Fatalf("block: %d", w.Code)
	}
	if w := f.auth("/shop"); w.Code != http.StatusUnauthorized {
		t.Fatalf("no session: %d", w.Code)
	}
	w := f.auth("/shop", cookie("launch", valid))
	if w.Code != http.StatusNoContent || w.Header().Get("X-Anteroom-Sub") != "ticket-0000000000000000" ||
		w.Header().Get("X-Anteroom-Room") != "launch" || w.Header().Get("X-Anteroom-Position") != "7" {
		t.Fatalf("valid session: %d %v", w.Code, w.Header())
	}
	// The launch session does not open the sale room.
	if w := f.auth("/sale/item", cookie("launch", valid)); w.Code != http.StatusUnauthorized {
		t.Fatalf("other room's cookie: %d", w.Code)
	}

	bad := map[string]string{}
	c := f.claims("sale")
	bad["room claim differs from the cookie's room"] = f.token(t, c)
	c = f.claims("launch")
	c.Issuer = "https://evil.example"
	bad["wrong issuer"] = f.token(t, c)
	c = f.claims("launch")
	c.Audience = jwt.Audience{"shop"}
	bad["wrong audience (an ID token)"] = f.token(t, c)
	c = f.claims("launch")
	c.Expiry = jwt.NewNumericDate(f.now.Add(-time.Second))
	bad["expired"] = f.token(t, c)
	c = f.claims("launch")
	c.NotBefore = jwt.NewNumericDate(f.now.Add(time.Hour))
	bad["not yet valid"] = f.token(t, c)
	parts := strings.Split(valid, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	bad["tampered payload"] = parts[0] + "." + base64.RawURLEncoding.EncodeToString(bytes.Replace(payload, []byte("launch"), []byte("launcH"), 1)) + "." + parts[2]
	bad["alg none"] = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
	pub, _ := x509.MarshalPKIXPublicKey(f.keys.Signing().Public.Key)
	hs, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: jose.JSONWebKey{Key: pub, KeyID: f.keys.Signing().ID}}, nil)
	bad["HS256 keyed with the public key"], _ = jwt.Signed(hs).Claims(f.claims("launch")).Serialize()
	hdr, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": "unknown"})
	bad["unknown kid"] = base64.RawURLEncoding.EncodeToString(hdr) + "." + parts[1] + "." + parts[2]
	for name, tok := range bad {
		if w := f.auth("/shop", cookie("launch", tok)); w.Code != http.StatusUnauthorized {
			t.Errorf("%s: %d", name, w.Code)
		}
	}

	// The cache remembers a verified token, but not past its expiry.
	f.now = f.now.Add(11 * time.Minute)
	if w := f.auth("/shop", cookie("launch", valid)); w.Code != http.StatusUnauthorized {
		t.Fatalf("cached session after expiry: %d", w.Code)
	}
}

func TestCachedSessionIsRefusedOnceItsKeyLeavesTheJWKS(t *testing.T) {
	// Keys that rotate hourly and stay published five minutes after:
	// shorter than this session, which only a key pulled early (or a
	// session_ttl raised without care) would allow, so the cache's own
	// check is what refuses it.
	f := newFixture(t, keys.Options{Algorithm: jose.ES256, RotateEvery: time.Hour, PublishAhead: 10 * time.Minute, Retain: 5 * time.Minute})
	start := f.now
	c := f.claims("launch")
	c.Expiry = jwt.NewNumericDate(start.Add(2 * time.Hour))
	old := f.token(t, c)
	oldKID := f.keys.Signing().ID
	cookie := &http.Cookie{Name: f.g.CookieName("launch"), Value: old}
	if w := f.auth("/shop", cookie); w.Code != http.StatusNoContent {
		t.Fatalf("fresh session: %d", w.Code)
	}
	if _, cached := f.g.sessions.get(sessionKey(old), f.now); !cached {
		t.Fatal("test is void: the verified session was not cached")
	}

	f.now = start.Add(50 * time.Minute)
	if err := f.keys.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.now = start.Add(time.Hour)
	if f.keys.Signing().ID == oldKID {
		t.Fatal("test is void: the key did not rotate")
	}
	if w := f.auth("/shop", cookie); w.Code != http.StatusNoContent {
		t.Fatalf("session of the previous key, which is still published: %d", w.Code)
	}
	fresh := &http.Cookie{Name: f.g.CookieName("launch"), Value: f.token(t, f.claims("launch"))}
	if w := f.auth("/shop", fresh); w.Code != http.StatusNoContent {
		t.Fatalf("session of the new key: %d", w.Code)
	}

	// Five minutes after the switch the old key leaves the JWKS, by the
	// clock alone, and the cached session with it, unexpired as it is.
	f.now = start.Add(time.Hour + 5*time.Minute)
	if f.keys.Published(oldKID) {
		t.Fatal("test is void: the old key is still published")
	}
	if w := f.auth("/shop", cookie); w.Code != http.StatusUnauthorized {
		t.Fatalf("cached session whose key left the JWKS: %d, want 401", w.Code)
	}
	if w := f.auth("/shop", fresh); w.Code != http.StatusNoContent {
		t.Fatalf("session of the new key after the old one left: %d", w.Code)
	}
}

func TestAuthFailsOpenOnlyWhereConfiguredAndOnlyWhileTheStoreIsDown(t *testing.T) {
	f := newFixture(t)
	f.health.err = errors.New("connection refused")
	if w := f.auth("/sale/item"); w.Code != http.StatusNoContent || w.Header().Get("X-Anteroom-Fail-Open") != "1" {
		t.Fatalf("fail_open room, store down: %d", w.Code)
	}
	if w := f.auth("/shop"); w.Code != http.StatusUnauthorized {
		t.Fatalf("fail_closed room, store down: %d", w.Code)
	}
	f.health.err = nil
	if w := f.auth("/sale/item"); w.Code != http.StatusUnauthorized {
		t.Fatalf("fail_open room, store up: %d", w.Code)
	}
}

func TestStart(t *testing.T) {
	f := newFixture(t)
	do := func(rd string, header ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/gate/start", nil)
		r.Header.Set("X-Original-URI", rd)
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		w := httptest.NewRecorder()
		f.g.start(w, r)
		return w
	}
	w := do("/shop?x=1")
	loc, _ := w.Result().Location()
	if w.Code != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), testIssuer+"/authorize?") ||
		loc.Query().Get("client_id") != "gate-launch" || loc.Query().Get("code_challenge_method") != "S256" ||
		loc.Query().Get("redirect_uri") != testIssuer+"/gate/callback" || loc.Query().Get("state") == "" {
		t.Fatalf("browser: %d %v", w.Code, loc)
	}
	// No cookie of its own: nginx runs a start inside whatever request was
	// refused, where a cookie scoped to the gate's path is never sent, so
	// one could only be overwritten by the next start.
	if c := w.Result().Cookies(); len(c) != 0 {
		t.Fatalf("start set cookies: %+v", c)
	}
	if w := do("/sale/1", "Accept", "application/json"); w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), `"start_url":"`+testIssuer+`/gate/start?rd=%2Fsale%2F1"`) {
		t.Fatalf("fetch: %d %s", w.Code, w.Body)
	}
	// The browser's own favicon request and other subresources (Fetch
	// Metadata, Sec-Fetch-Mode) start no login: each would take one of the
	// ticket's logins_per_ticket. A navigation does, whatever it accepts.
	for _, h := range [][]string{
		{"Accept", "image/avif,image/webp,*/*", "Sec-Fetch-Mode", "no-cors", "Sec-Fetch-Dest", "image"},
		{"Accept", "text/html", "Sec-Fetch-Mode", "cors"},
	} {
		if w := do("/favicon.ico", h...); w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), `"start_url"`) {
			t.Fatalf("subresource %v: %d %s", h, w.Code, w.Body)
		}
	}
	if w := do("/shop", "Accept", "*/*", "Sec-Fetch-Mode", "navigate"); w.Code != http.StatusFound {
		t.Fatalf("navigation: %d", w.Code)
	}
	for _, rd := range []string{"", "https://evil.example/", "//evil.example", "/\\evil", "/a\r\nSet-Cookie: x"} {
		if w := do(rd); w.Code != http.StatusBadRequest {
			t.Fatalf("rd %q: %d", rd, w.Code)
		}
	}
	if w := do("/static/x.js"); w.Code != http.StatusFound || w.Header().Get("Location") != "/static/x.js" {
		t.Fatalf("bypass: %d %v", w.Code, w.Header())
	}
}

// startAt runs /gate/start as nginx does, inside the browser's request for
// page (error_page 401 = @queue), and returns the state and nonce of the
// authorization request it sends the browser to.
func (f *fixture) startAt(t *testing.T, jar http.CookieJar, page string) (state, nonce string) {
	t.Helper()
	u, _ := url.Parse("https://shop.example.com" + page)
	r := httptest.NewRequest(http.MethodGet, "/gate/start", nil)
	r.Header.Set("X-Original-URI", page)
	for _, c := range jar.Cookies(u) {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	f.g.start(w, r)
	jar.SetCookies(u, w.Result().Cookies())
	loc, err := w.Result().Location()
	if w.Code != http.StatusFound || err != nil {
		t.Fatalf("start at %s: %d %v", page, w.Code, err)
	}
	return loc.Query().Get("state"), loc.Query().Get("nonce")
}

// callbackIn finishes a login in the browser whose cookies are jar.
func (f *fixture) callbackIn(jar http.CookieJar, query string) *httptest.ResponseRecorder {
	u, _ := url.Parse(testIssuer + "/gate/callback?" + query)
	r := httptest.NewRequest(http.MethodGet, u.String(), nil)
	for _, c := range jar.Cookies(u) {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	f.g.callback(w, r)
	jar.SetCookies(u, w.Result().Cookies())
	return w
}

// admit makes code redeemable for an ID token admitting ticket with nonce.
func (f *fixture) admit(code, ticket, nonce string) {
	f.codes[code] = idClaims{
		Claims: jwt.Claims{Issuer: testIssuer, Subject: ticket, IssuedAt: jwt.NewNumericDate(f.now),
			Expiry: jwt.NewNumericDate(f.now.Add(5 * time.Minute))},
		Nonce: nonce, Room: "launch", Position: 3, AdmittedAt: f.now.Unix(),
	}
}

// withTicket is a browser holding ticket's cookie for the launch room.
func withTicket(t *testing.T, ticket string) http.CookieJar {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(testIssuer + "/")
	if ticket != "" {
		jar.SetCookies(u, []*http.Cookie{{Name: "anteroom_launch", Value: ticket, Path: "/_anteroom"}})
	}
	return jar
}

// captureLog sends slog's output to a buffer until the test ends.
func captureLog(t *testing.T) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(prev) })
	return &buf
}

// TestEveryGateStartOfOneBrowserEndsOnTheSite is the regression test of
// the "Please start again" a real browser got the moment it was admitted:
// nginx runs /gate/start inside the refused request itself (the page, the
// browser's own /favicon.ico, a second tab, a reload), where a cookie
// scoped to /_anteroom/gate/ is never sent, so each start wrote a new
// binding cookie over the one the waiting tab's login needed. Every login
// of the browser that holds the admitted ticket must now finish.
func TestEveryGateStartOfOneBrowserEndsOnTheSite(t *testing.T) {
	f := newFixture(t)
	ticket := waitingroom.NewTicketID().String()
	browser := withTicket(t, ticket)
	pages := []string{"/shop?item=1", "/favicon.ico", "/shop/other-tab", "/shop?item=1"}
	type login struct{ page, state, nonce string }
	var logins []login
	for _, p := range pages {
		state, nonce := f.startAt(t, browser, p)
		logins = append(logins, login{p, state, nonce})
	}
	// Finished in any order, the first (the waiting tab's) last.
	for i := len(logins) - 1; i >= 0; i-- {
		l := logins[i]
		code := fmt.Sprintf("code-%d", i)
		f.admit(code, ticket, l.nonce)
		w := f.callbackIn(browser, url.Values{"code": {code}, "state": {l.state}}.Encode())
		if w.Code != http.StatusFound || w.Header().Get("Location") != l.page {
			t.Fatalf("login %d (started at %s): %d %q: %s", i, l.page, w.Code, w.Header().Get("Location"), w.Body)
		}
		if c := w.Result().Cookies(); len(c) != 1 || c[0].Name != f.g.CookieName("launch") {
			t.Fatalf("login %d: cookies %+v", i, c)
		}
	}
}

// TestCallbackAcceptsOnlyTheBrowserOfTheTicket: the login is the browser's
// that holds the ticket the ID token admitted (RFC 6749 §10.12, OIDC Core
// 3.1.2.7); a callback URL passed to another browser, or planted in one
// (login CSRF), gives nobody a session, and every refusal is logged with
// its reason, never with the state or the code.
func TestCallbackAcceptsOnlyTheBrowserOfTheTicket(t *testing.T) {
	f := newFixture(t)
	log := captureLog(t)
	ticket := waitingroom.NewTicketID().String()
	state, nonce := f.startAt(t, withTicket(t, ticket), "/shop")
	f.admit("the-code", ticket, nonce)
	query := url.Values{"code": {"the-code"}, "state": {state}}.Encode()

	if w := f.callbackIn(withTicket(t, ""), query); w.Code != http.StatusBadRequest || f.calls != 0 || len(w.Result().Cookies()) != 0 {
		t.Fatalf("browser without a ticket: %d, %d exchanges", w.Code, f.calls)
	}
	if !strings.Contains(log.String(), `reason="no ticket for the room in this browser"`) {
		t.Fatalf("refusal not logged with its reason:\n%s", log)
	}
	if w := f.callbackIn(withTicket(t, waitingroom.NewTicketID().String()), query); w.Code != http.StatusBadRequest || f.calls != 1 || len(w.Result().Cookies()) != 0 {
		t.Fatalf("browser of another ticket: %d, %d exchanges, cookies %v", w.Code, f.calls, w.Result().Cookies())
	}
	if !strings.Contains(log.String(), `reason="login admitted another browser's ticket"`) {
		t.Fatalf("refusal not logged with its reason:\n%s", log)
	}
	if w := f.callbackIn(withTicket(t, ticket), query); w.Code != http.StatusFound {
		t.Fatalf("the ticket's own browser: %d %s", w.Code, w.Body)
	}
	if strings.Contains(log.String(), state) || strings.Contains(log.String(), "the-code") {
		t.Fatalf("the log carries the state or the code:\n%s", log)
	}
}

func TestCallbackRefusesAForgedOrExpiredState(t *testing.T) {
	f := newFixture(t)
	log := captureLog(t)
	ticket := waitingroom.NewTicketID().String()
	browser := withTicket(t, ticket)
	state, nonce := f.startAt(t, browser, "/shop")
	f.admit("x", ticket, nonce)
	call := func(state string) int {
		return f.callbackIn(browser, url.Values{"code": {"x"}, "state": {state}}.Encode()).Code
	}
	if code := call(state[:len(state)-2] + "AA"); code != http.StatusBadRequest || f.calls != 0 {
		t.Fatalf("forged state: %d, %d exchanges", code, f.calls)
	}
	if code := call("not base64!"); code != http.StatusBadRequest || f.calls != 0 {
		t.Fatalf("garbage state: %d, %d exchanges", code, f.calls)
	}
	f.now = f.now.Add(2 * time.Hour)
	if code := call(state); code != http.StatusBadRequest || f.calls != 0 {
		t.Fatalf("state older than max wait: %d, %d exchanges", code, f.calls)
	}
	for _, reason := range []string{errStateSeal.Error(), errStateOld.Error()} {
		if !strings.Contains(log.String(), `reason="`+reason+`"`) {
			t.Fatalf("refusal %q not logged:\n%s", reason, log)
		}
	}
}

// TestAuthRechecksASessionInTheStoreAtMostEveryRecheck: a session ended
// early in the store (end_session of any client, which frees its
// max_active slot) stops passing /gate/auth within SessionRecheck, and
// between checks /gate/auth reads nothing from the store.
func TestAuthRechecksASessionInTheStoreAtMostEveryRecheck(t *testing.T) {
	f := newFixture(t)
	id := waitingroom.NewTicketID()
	f.store.ends[id] = f.now.Add(10 * time.Minute)
	c := f.claims("launch")
	c.Subject = id.String()
	cookie := &http.Cookie{Name: f.g.CookieName("launch"), Value: f.token(t, c)}

	if w := f.auth("/shop", cookie); w.Code != http.StatusNoContent || f.store.calls != 1 {
		t.Fatalf("first sight: %d, %d store reads", w.Code, f.store.calls)
	}
	start := f.now
	for i := 0; i < 100; i++ {
		f.now = start.Add(time.Duration(i) * (SessionRecheck - time.Millisecond) / 100)
		if w := f.auth("/shop", cookie); w.Code != http.StatusNoContent {
			t.Fatalf("hit %d: %d", i, w.Code)
		}
	}
	if f.store.calls != 1 {
		t.Fatalf("%d store reads for hits within %v of the last check, want none after the first", f.store.calls, SessionRecheck)
	}

	// The session is ended elsewhere: it passes until the next check is
	// due, never longer.
	f.store.ends[id] = f.now
	f.now = start.Add(SessionRecheck)
	if w := f.auth("/shop", cookie); w.Code != http.StatusUnauthorized || f.store.calls != 2 {
		t.Fatalf("ended session at the recheck: %d, %d store reads", w.Code, f.store.calls)
	}
	for range 10 {
		if w := f.auth("/shop", cookie); w.Code != http.StatusUnauthorized {
			t.Fatalf("ended session passed again: %d", w.Code)
		}
	}
	if f.store.calls != 2 {
		t.Fatalf("an ended session is remembered; %d store reads", f.store.calls)
	}

	// Another instance, which never saw it, refuses it at first sight.
	o := f.g.o
	o.Registerer = prometheus.NewRegistry()
	other, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	f.g = other
	if w := f.auth("/shop", cookie); w.Code != http.StatusUnauthorized || f.store.calls != 3 {
		t.Fatalf("ended session on an instance that never saw it: %d, %d store reads", w.Code, f.store.calls)
	}
}

// TestAuthKeepsASessionTheStoreCannotJudge: while the store is unreachable,
// or after it lost the admission record, a signed session stands until its
// exp; the next check is a Recheck later, not on every hit.
func TestAuthKeepsASessionTheStoreCannotJudge(t *testing.T) {
	f := newFixture(t)
	id := waitingroom.NewTicketID()
	c := f.claims("launch")
	c.Subject = id.String()
	cookie := &http.Cookie{Name: f.g.CookieName("launch"), Value: f.token(t, c)}
	if w := f.auth("/shop", cookie); w.Code != http.StatusNoContent {
		t.Fatalf("no admission record: %d", w.Code)
	}
	f.store.err = errors.New("connection refused")
	f.now = f.now.Add(SessionRecheck)
	for range 5 {
		if w := f.auth("/shop", cookie); w.Code != http.StatusNoContent {
			t.Fatalf("store down: %d", w.Code)
		}
	}
	if f.store.calls != 2 {
		t.Fatalf("%d store reads, want 2 (first sight, one recheck)", f.store.calls)
	}
	// A hung store holds the request that checks for a short while only.
	if f.store.deadline.IsZero() || time.Until(f.store.deadline) > sessionCheckTimeout {
		t.Fatalf("check's deadline %v, want at most %v away", f.store.deadline, sessionCheckTimeout)
	}
}
