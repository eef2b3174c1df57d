package gate

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/anteroom/anteroom/config"
	"github.com/anteroom/anteroom/keys"
	"github.com/anteroom/anteroom/waitingroom"
)

// Fuzz targets for what the gate reads from nginx and the browser: the
// session cookie, the sealed OIDC state, and the
// return address (X-Original-URI or rd). CI runs each for a few seconds
// (.ci/fuzz); seeds and past failures are in testdata/fuzz/<target>.

// newFuzzFixture is newFixture over an in-process miniredis (the key
// manager needs Redis only to create its key set), so that every fuzzing
// worker gets one cheaply.
func newFuzzFixture(f *testing.F) *fixture {
	f.Helper()
	m := miniredis.NewMiniRedis()
	if err := m.Start(); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(m.Close)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	f.Cleanup(func() { rdb.Close() })
	secret := [][]byte{bytes.Repeat([]byte{7}, 32)}
	kb, _ := keys.NewBox(secret, "signing keys")
	km, err := keys.NewManager(context.Background(), rdb, kb, keys.Options{})
	if err != nil {
		f.Fatal(err)
	}
	box, _ := keys.NewBox(secret, "gate flow")
	fx := &fixture{keys: km, health: &fakeHealth{}, now: time.Unix(1_800_000_000, 0)}
	cfg := &config.Gate{Rules: []config.Rule{
		{PathPrefix: "/static/", Action: "bypass"},
		{PathPrefix: "/", Action: "queue", Room: "launch"},
	}}
	cfg.ApplyDefaults()
	fx.g, err = New(Options{
		Issuer: testIssuer, Config: cfg, Keys: km, Box: box, Exchanger: noExchange{&fx.calls}, Health: fx.health,
		Rooms: map[string]Room{
			"launch": {Room: waitingroom.Room{ID: "launch", SessionTTL: 30 * time.Minute, MaxWait: time.Hour}},
		},
		ClientID:   func(r string) string { return "gate-" + r },
		Now:        func() time.Time { return fx.now },
		Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		f.Fatal(err)
	}
	return fx
}

// FuzzGateSession: /gate/auth lets a request through on a session cookie
// only if Anteroom signed exactly those claims, for this room, unexpired.
// Forgeries among the seeds: alg none, HS256 keyed with the public key,
// another audience, another room, expired, a tampered payload.
func FuzzGateSession(f *testing.F) {
	fx := newFuzzFixture(f)
	valid := fx.claims("launch")
	good, err := signedWith(fx.keys.Signing(), valid)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	parts := strings.Split(good, ".")
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + ".")
	pub, _ := x509.MarshalPKIXPublicKey(fx.keys.Signing().Public.Key)
	hs, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: jose.JSONWebKey{Key: pub, KeyID: fx.keys.Signing().ID}}, nil)
	forged, _ := jwt.Signed(hs).Claims(valid).Serialize()
	f.Add(forged)
	for _, mutate := range []func(*sessionClaims){
		func(c *sessionClaims) { c.Audience = jwt.Audience{"shop"} },
		func(c *sessionClaims) { c.Room = "sale" },
		func(c *sessionClaims) { c.Expiry = jwt.NewNumericDate(fx.now.Add(-time.Second)) },
		func(c *sessionClaims) { c.Issuer = "https://evil.example" },
	} {
		c := fx.claims("launch")
		mutate(&c)
		tok, _ := signedWith(fx.keys.Signing(), c)
		f.Add(tok)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	f.Add(parts[0] + "." + base64.RawURLEncoding.EncodeToString(bytes.Replace(payload, []byte(`"queue_position":7`), []byte(`"queue_position":1`), 1)) + "." + parts[2])
	f.Add("")
	want, _ := json.Marshal(valid)

	f.Fuzz(func(t *testing.T, token string) {
		r := httptest.NewRequest(http.MethodGet, "/gate/auth", nil)
		r.Header.Set("X-Original-URI", "/shop")
		r.Header.Set("Cookie", fx.g.CookieName("launch")+"="+token)
		w := httptest.NewRecorder()
		fx.g.auth(w, r)
		switch w.Code {
		case http.StatusUnauthorized:
			return
		case http.StatusNoContent:
		default:
			t.Fatalf("session %q: %d", token, w.Code)
		}
		// Through: the claims must be the ones signed, whatever spelling
		// of the token carried them.
		segs := strings.Split(token, ".")
		if len(segs) != 3 {
			t.Fatalf("%q let through, but it is not a compact JWS", token)
		}
		got, err := base64.RawURLEncoding.DecodeString(segs[1])
		var a, b map[string]any
		if err != nil || json.Unmarshal(got, &a) != nil || json.Unmarshal(want, &b) != nil || !jsonEqual(a, b) {
			t.Fatalf("%q let through with claims %s, but Anteroom signed %s", token, got, want)
		}
		if w.Header().Get("X-Anteroom-Sub") != valid.Subject || w.Header().Get("X-Anteroom-Position") != "7" {
			t.Fatalf("%q let through as %v", token, w.Header())
		}
	})
}

func jsonEqual(a, b map[string]any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// FuzzGateFlowState: the callback opens a state only if the gate sealed
// it, and only with a same-site return address. (Whose login it is, the
// browser's ticket decides: see TestCallbackAcceptsOnlyTheBrowserOfTheTicket.)
func FuzzGateFlowState(f *testing.F) {
	fx := newFuzzFixture(f)
	started := map[string]bool{"/shop?x=1": true, "/a/b/": true}
	for rd := range started {
		r := httptest.NewRequest(http.MethodGet, "/gate/start", nil)
		r.Header.Set("X-Original-URI", rd)
		w := httptest.NewRecorder()
		fx.g.start(w, r)
		loc, err := w.Result().Location()
		if err != nil {
			f.Fatal(err)
		}
		state := loc.Query().Get("state")
		f.Add(state)
		f.Add(state[:len(state)-2] + "AA")
	}
	f.Add("")
	f.Fuzz(func(t *testing.T, state string) {
		got, err := fx.g.openFlow(state)
		if err != nil {
			return
		}
		if !started[got.Target] || got.Room != "launch" || got.Verifier == "" || got.Nonce == "" {
			t.Fatalf("state %q opened as %+v", state, got)
		}
	})
}

// FuzzReturnAddress: a return address the gate accepts (from
// X-Original-URI or rd) always lands the browser on the protected site
// itself, through every redirect the gate makes with it.
func FuzzReturnAddress(f *testing.F) {
	for _, s := range []string{"/shop?x=1", "//evil.example", "/\\evil.example", "/%2F%2Fevil.example", "/.//evil.example",
		"https://evil.example/", "/a\r\nSet-Cookie: x=1", "/..//evil.example", "/\t/evil.example", "/%09/evil.example", "/@evil.example"} {
		f.Add(s)
	}
	site, _ := url.Parse("https://shop.example.com/deep/page")
	f.Fuzz(func(t *testing.T, rd string) {
		target, ok := sameSiteTarget(rd)
		if !ok {
			return
		}
		// The gate answers with http.Redirect, which cleans the path.
		r := httptest.NewRequest(http.MethodGet, site.String(), nil)
		w := httptest.NewRecorder()
		http.Redirect(w, r, target, http.StatusFound)
		loc := w.Header().Get("Location")
		if strings.ContainsAny(loc, "\r\n") {
			t.Fatalf("return address %q made a Location with a line break: %q", rd, loc)
		}
		u, err := url.Parse(loc)
		if err != nil {
			// A browser cannot follow it anywhere either.
			return
		}
		if end := site.ResolveReference(u); end.Host != site.Host || end.Scheme != site.Scheme || end.User != nil {
			t.Fatalf("return address %q leads to %q (Location %q)", rd, end, loc)
		}
		// Browsers drop tabs and line breaks from a URL and read a
		// backslash as a slash: /\evil is //evil to them.
		browser := strings.NewReplacer("\t", "", "\n", "", "\r", "", `\`, "/").Replace(loc)
		if strings.HasPrefix(browser, "//") {
			t.Fatalf("return address %q gives Location %q, another host to a browser", rd, loc)
		}
	})
}
