package gate

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
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
}

// newFixture builds a gate whose clock, and its key manager's, is f.now;
// keyOpts, when given, configures the key manager.
func newFixture(t *testing.T, keyOpts ...keys.Options) *fixture {
	t.Helper()
	rdb := testredis.Start(t).Client(t)
	secret := [][]byte{bytes.Repeat([]byte{7}, 32)}
	kb, _ := keys.NewBox(secret, "signing keys")
	f := &fixture{health: &fakeHealth{}, now: time.Unix(1_800_000_000, 0)}
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
		Issuer: testIssuer, Config: cfg, Keys: km, Box: box, Exchanger: noExchange{&f.calls}, Health: f.health,
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
	if _, cached := f.g.sessions.get(old, f.now); !cached {
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
	if c := w.Result().Cookies(); len(c) != 1 || c[0].Name != flowCookie || !c[0].HttpOnly || !c[0].Secure || c[0].MaxAge != 3600 {
		t.Fatalf("flow cookie: %+v", c)
	}
	if w := do("/sale/1", "Accept", "application/json"); w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), `"start_url":"`+testIssuer+`/gate/start?rd=%2Fsale%2F1"`) {
		t.Fatalf("fetch: %d %s", w.Code, w.Body)
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

func TestCallbackRefusesAForeignOrForgedState(t *testing.T) {
	f := newFixture(t)
	r := httptest.NewRequest(http.MethodGet, "/gate/start", nil)
	r.Header.Set("X-Original-URI", "/shop")
	w := httptest.NewRecorder()
	f.g.start(w, r)
	loc, _ := w.Result().Location()
	state := loc.Query().Get("state")
	flow := w.Result().Cookies()[0]

	call := func(state string, cookies ...*http.Cookie) int {
		r := httptest.NewRequest(http.MethodGet, "/gate/callback?code=x&state="+state, nil)
		for _, c := range cookies {
			r.AddCookie(c)
		}
		w := httptest.NewRecorder()
		f.g.callback(w, r)
		return w.Code
	}
	if code := call(state); code != http.StatusBadRequest || f.calls != 0 {
		t.Fatalf("state from another browser: %d, %d exchanges", code, f.calls)
	}
	if code := call(state[:len(state)-2]+"AA", flow); code != http.StatusBadRequest || f.calls != 0 {
		t.Fatalf("forged state: %d, %d exchanges", code, f.calls)
	}
	// The right browser gets as far as the code exchange (which this test's
	// exchanger refuses).
	if code := call(state, flow); code != http.StatusBadRequest || f.calls != 1 {
		t.Fatalf("own state: %d, %d exchanges", code, f.calls)
	}
	f.now = f.now.Add(2 * time.Hour)
	if code := call(state, flow); code != http.StatusBadRequest || f.calls != 1 {
		t.Fatalf("state older than max wait: %d, %d exchanges", code, f.calls)
	}
}
