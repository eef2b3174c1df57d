package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/anteroom/anteroom/config"
	"github.com/anteroom/anteroom/keys"
	"github.com/anteroom/anteroom/server"
)

// These tests rotate keys in running instances: the signing keys on a
// schedule, across two instances that share the test's clock, and the
// cookie keys (secrets.cookie_keys) through restarts with new
// configuration, as an operator does.

// startWith runs an instance of cfg on the env's Redis and clock, points
// the load balancer at it, and returns a function that stops it (also run
// when the test ends), for tests that restart instances.
func (e *env) startWith(cfg *config.Config) (*server.Server, string, func()) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := server.New(ctx, cfg, e.rdb, server.WithClock(e.clock.Now))
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = a.Serve(ctx, ln); close(done) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	e.t.Cleanup(stop)
	addr := ln.Addr().String()
	e.route(addr)
	return a, addr, stop
}

// tokens runs a whole login through the instance the load balancer points
// at and returns the ID token and the access token.
func (e *env) tokens(r *rp) (idToken, accessToken string) {
	e.t.Helper()
	code, l := e.admittedCode(r)
	tok, err := r.oauth.Exchange(r.ctx, code, oauth2.VerifierOption(l.verifier))
	if err != nil {
		e.t.Fatalf("exchange: %v", err)
	}
	return tok.Extra("id_token").(string), tok.AccessToken
}

// jwtHeader decodes a compact JWT's header.
func jwtHeader(t *testing.T, raw string) (kid, alg string) {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0])
	var h struct{ Kid, Alg string }
	if err != nil || json.Unmarshal(b, &h) != nil {
		t.Fatalf("not a JWT: %.40s", raw)
	}
	return h.Kid, h.Alg
}

// published fetches /keys from the instance at addr and returns the kids in
// it and the response's Cache-Control.
func (e *env) published(addr string) ([]string, string) {
	e.t.Helper()
	e.route(addr)
	resp, body := visit(e.t, &http.Client{Transport: e.transport()}, http.MethodGet, issuer+"/keys")
	var set struct {
		Keys []struct{ Kid, Kty, Alg, Use string }
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &set) != nil {
		e.t.Fatalf("/keys: %d %.200s", resp.StatusCode, body)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	slices.Sort(kids)
	return kids, resp.Header.Get("Cache-Control")
}

// verifyAt checks raw as a relying party that fetches the JWKS afresh from
// the instance at addr would, at the test clock's time.
func (e *env) verifyAt(addr, raw, audience string) error {
	e.route(addr)
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: e.transport()})
	v := gooidc.NewVerifier(issuer, gooidc.NewRemoteKeySet(ctx, issuer+"/keys"), &gooidc.Config{
		ClientID: audience, Now: e.clock.Now, SupportedSigningAlgs: []string{"RS256", "ES256"}})
	_, err := v.Verify(ctx, raw)
	return err
}

func sorted(s ...string) []string { slices.Sort(s); return s }

// Set moves the clock to t.
func (c *clock) Set(t time.Time) { c.ns.Store(t.UnixNano()) }

func TestSigningKeysRotateAcrossInstancesWithOverlap(t *testing.T) {
	e := newEnv(t, false, func(c *config.Config) {
		every := config.Duration(24 * time.Hour)
		c.Signing.RotateEvery = &every
		c.Signing.PublishAhead = config.Duration(2 * time.Hour)
	})
	a, addrA := e.start()
	b, addrB := e.start()
	t0 := e.clock.Now()
	r := e.rp(clientID, secret, rpCallback)

	e.route(addrA)
	idToken, _ := e.tokens(r)
	k1, alg := jwtHeader(t, idToken)
	for _, addr := range []string{addrA, addrB} {
		kids, cacheControl := e.published(addr)
		if !slices.Equal(kids, []string{k1}) || cacheControl != "public, max-age=3600" {
			t.Fatalf("JWKS of %s at the start: %v, Cache-Control %q; want [%s], max-age half of publish_ahead", addr, kids, cacheControl, k1)
		}
	}

	// Both instances find the rotation due at the same refresh.
	e.clock.Advance(22 * time.Hour)
	var wg sync.WaitGroup
	for _, inst := range []*server.Server{a, b} {
		wg.Go(func() {
			if err := inst.Keys().Refresh(context.Background()); err != nil {
				t.Errorf("refresh: %v", err)
			}
		})
	}
	wg.Wait()
	kidsA, _ := e.published(addrA)
	kidsB, _ := e.published(addrB)
	if len(kidsA) != 2 || !slices.Equal(kidsA, kidsB) || !slices.Contains(kidsA, k1) {
		t.Fatalf("after the rotation was due: A publishes %v, B %v; want the same two keys, %s and one new one", kidsA, kidsB, k1)
	}
	k2 := kidsA[0]
	if k2 == k1 {
		k2 = kidsA[1]
	}
	// Published, but not signing: every cache gets two hours to fetch it.
	for _, addr := range []string{addrA, addrB} {
		e.route(addr)
		if id, _ := e.tokens(r); func() string { k, _ := jwtHeader(t, id); return k }() != k1 {
			t.Fatalf("%s signs with the new key before its not_before", addr)
		}
	}

	// The last tokens of the old key, a minute before the switch.
	e.clock.Set(t0.Add(24*time.Hour - time.Minute))
	e.route(addrA)
	_, lastAccess := e.tokens(r)
	if k, _ := jwtHeader(t, lastAccess); k != k1 {
		t.Fatalf("a minute before the switch the access token is signed by %s, want %s", k, k1)
	}

	// At the switch both instances sign with the new key, by their clocks
	// alone, with no refresh in between.
	e.clock.Set(t0.Add(24 * time.Hour))
	for _, addr := range []string{addrA, addrB} {
		e.route(addr)
		id, access := e.tokens(r)
		kid, a1 := jwtHeader(t, id)
		akid, _ := jwtHeader(t, access)
		if kid != k2 || akid != k2 || a1 != alg {
			t.Fatalf("%s after the switch signs with %s/%s (%s), want %s", addr, kid, akid, a1, k2)
		}
		// (The access token, whose exp comes from the queue's clock, which
		// the test controls; the library stamps ID tokens by the wall clock.)
		if err := e.verifyAt(addr, access, clientID); err != nil {
			t.Fatalf("a token of the new key does not verify against %s: %v", addr, err)
		}
	}

	// The old key's tokens verify until they expire.
	e.clock.Set(t0.Add(24*time.Hour + 25*time.Minute))
	for _, addr := range []string{addrA, addrB} {
		if err := e.verifyAt(addr, lastAccess, clientID); err != nil {
			t.Fatalf("an unexpired access token of the old key fails against %s's JWKS: %v", addr, err)
		}
	}

	// It leaves the JWKS once everything it signed has expired: the 30m
	// session plus 5m of clock skew after the switch.
	e.clock.Set(t0.Add(24*time.Hour + 35*time.Minute - time.Second))
	for _, addr := range []string{addrA, addrB} {
		if kids, _ := e.published(addr); !slices.Equal(kids, sorted(k1, k2)) {
			t.Fatalf("%s retired the old key early: %v", addr, kids)
		}
	}
	e.clock.Set(t0.Add(24*time.Hour + 35*time.Minute))
	for _, addr := range []string{addrA, addrB} {
		if kids, _ := e.published(addr); !slices.Equal(kids, []string{k2}) {
			t.Fatalf("%s still publishes the retired key: %v", addr, kids)
		}
	}
	if err := a.Keys().Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	var rec struct{ Keys []struct{ Kid string } }
	if err := json.Unmarshal([]byte(e.rdb.Get(context.Background(), keys.DefaultRedisKey).Val()), &rec); err != nil ||
		len(rec.Keys) != 1 || rec.Keys[0].Kid != k2 {
		t.Fatalf("record after retirement: %+v (%v), want only %s", rec, err, k2)
	}
}

func TestES256EndToEnd(t *testing.T) {
	e := newEnv(t, false, func(c *config.Config) { c.Signing.Algorithm = config.AlgorithmES256 })
	e.start()
	r := e.rp(clientID, secret, rpCallback)

	var disco struct {
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := r.provider.Claims(&disco); err != nil || len(disco.Algs) == 0 || disco.Algs[0] != "ES256" || !slices.Contains(disco.Algs, "RS256") {
		t.Fatalf("discovery lists %v (%v), want ES256 first (and RS256, which Discovery 1.0 requires)", disco.Algs, err)
	}
	resp, body := visit(t, &http.Client{Transport: e.transport()}, http.MethodGet, issuer+"/keys")
	var set struct{ Keys []map[string]any }
	if json.Unmarshal([]byte(body), &set) != nil || len(set.Keys) != 1 || set.Keys[0]["kty"] != "EC" ||
		set.Keys[0]["crv"] != "P-256" || set.Keys[0]["alg"] != "ES256" || set.Keys[0]["use"] != "sig" {
		t.Fatalf("JWKS: %d %s", resp.StatusCode, body)
	}

	code, l := e.admittedCode(r)
	tok, err := r.oauth.Exchange(r.ctx, code, oauth2.VerifierOption(l.verifier))
	if err != nil {
		t.Fatal(err)
	}
	raw := tok.Extra("id_token").(string)
	if _, alg := jwtHeader(t, raw); alg != "ES256" {
		t.Fatalf("ID token alg %s", alg)
	}
	// go-oidc, configured from discovery, verifies both tokens.
	if _, err := r.verifier.Verify(r.ctx, raw); err != nil {
		t.Fatalf("verify ES256 ID token: %v", err)
	}
	if _, alg := jwtHeader(t, tok.AccessToken); alg != "ES256" {
		t.Fatalf("access token alg %s", alg)
	}
	if _, err := r.provider.VerifierContext(r.ctx, &gooidc.Config{ClientID: clientID}).Verify(r.ctx, tok.AccessToken); err != nil {
		t.Fatalf("verify ES256 access token: %v", err)
	}
	// Anteroom's own endpoints accept the ES256 access token.
	if info, err := r.provider.UserInfo(r.ctx, oauth2.StaticTokenSource(tok)); err != nil || info.Subject == "" {
		t.Fatalf("userinfo with an ES256 access token: %v", err)
	}
	if active := introspect(t, e, tok.AccessToken); active != true {
		t.Fatalf("introspection of an ES256 access token: active=%v", active)
	}
}

// withGate protects the whole test site with the launch room, so the gate's
// endpoints are served too.
func withGate(c *config.Config) {
	insecure := false
	c.Gate = &config.Gate{
		Cookie: config.GateCookie{Secure: &insecure},
		Rules:  []config.Rule{{PathPrefix: "/", Action: "queue", Room: roomID}},
	}
	c.Gate.ApplyDefaults()
}

// withCookieKeys is cfg with other cookie keys, as the operator's next
// deploy.
func withCookieKeys(cfg *config.Config, ks ...string) *config.Config {
	c := *cfg
	c.Secrets.CookieKeys = ks
	return &c
}

// gateAuth asks /gate/auth about /shop with b's cookies.
func (e *env) gateAuth(b *http.Client) int {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, issuer+"/gate/auth", nil)
	req.Header.Set("X-Original-URI", "/shop")
	u, _ := url.Parse(issuer)
	for _, c := range b.Jar.Cookies(u) {
		req.AddCookie(c)
	}
	resp, err := (&http.Client{Transport: e.transport()}).Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestCookieKeyRotationKeepsEveryonesPlace(t *testing.T) {
	const oldKey, newKey = cookieKey, "fedcba9876543210fedcba9876543210"
	e := newEnv(t, false, withGate)
	ctx := context.Background()

	// Under [old]: a visitor queues through a relying party, another through
	// the gate, a third who will never come back, and an operator signs in.
	_, _, stop := e.startWith(withCookieKeys(e.cfg, oldKey))
	kid := func() string {
		var rec struct{ Keys []struct{ Kid string } }
		json.Unmarshal([]byte(e.rdb.Get(ctx, keys.DefaultRedisKey).Val()), &rec)
		return rec.Keys[0].Kid
	}()
	r := e.rp(clientID, secret, rpCallback)
	alice, gateVisitor, gone := e.browser(), e.browser(), e.browser()
	aliceLogin := newLogin()
	aliceWait := queue(t, alice, r, aliceLogin)
	resp, _ := visit(t, gateVisitor, http.MethodGet, issuer+"/gate/start?rd=/shop")
	gateWait := resp.Request.URL.String()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(gateWait, issuer+"/wait/") {
		t.Fatalf("gate start: %d at %s", resp.StatusCode, gateWait)
	}
	goneWait := queue(t, gone, r, newLogin())
	op := e.operator()
	if resp, _ := op.signIn(adminToken); adminCookie(resp) == nil {
		t.Fatalf("sign-in under [old]: %d", resp.StatusCode)
	}
	oldOperator := op
	stop()

	// Restart with [new, old]: everything sealed under old still opens.
	_, _, stop = e.startWith(withCookieKeys(e.cfg, newKey, oldKey))
	if st := pollStatus(t, alice, aliceWait); st.State != "waiting" || st.Position != 1 {
		t.Fatalf("alice after the restart with [new, old]: %+v", st)
	}
	if st := pollStatus(t, gateVisitor, gateWait); st.State != "waiting" || st.Position != 2 {
		t.Fatalf("gate visitor after the restart: %+v", st)
	}
	if code, _ := oldOperator.api(http.MethodGet, "/rooms/"+roomID, ""); code != http.StatusOK {
		t.Fatalf("admin session from before the restart: %d", code)
	}
	// A newcomer's ticket and link, and a new sign-in, are sealed under new
	// (they still work below, once old is gone).
	carol := e.browser()
	carolWait := queue(t, carol, r, newLogin())
	newOperator := e.operator()
	if resp, _ := newOperator.signIn(adminToken); adminCookie(resp) == nil {
		t.Fatalf("sign-in under [new, old]: %d", resp.StatusCode)
	}
	e.advance(2)
	resp, _ = visit(t, alice, http.MethodPost, aliceWait+"/continue")
	code := codeFrom(t, resp, aliceLogin)
	if code == "" {
		t.Fatalf("alice's continue: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	if _, err := r.oauth.Exchange(r.ctx, code, oauth2.VerifierOption(aliceLogin.verifier)); err != nil {
		t.Fatalf("alice's exchange: %v", err)
	}
	visit(t, gateVisitor, http.MethodPost, gateWait+"/continue") // sealed gate state, opened at the callback
	if code := e.gateAuth(gateVisitor); code != http.StatusNoContent {
		t.Fatalf("gate session after a login begun under [old]: %d", code)
	}
	stop()

	// Restart with [new] alone: the instance starts (the signing keys were
	// sealed again under new) and signs with the same key.
	final, _, stop := e.startWith(withCookieKeys(e.cfg, newKey))
	defer stop()
	if got := final.Keys().Signing().ID; got != kid {
		t.Fatalf("after dropping the old cookie key %s signs, want the same key %s", got, kid)
	}
	if st := pollStatus(t, carol, carolWait); st.State != "waiting" || st.Position != 4 {
		t.Fatalf("carol, who joined under [new, old], after dropping old: %+v", st)
	}
	if code, _ := newOperator.api(http.MethodGet, "/rooms/"+roomID, ""); code != http.StatusOK {
		t.Fatalf("admin session signed under [new, old], after dropping old: %d", code)
	}
	if code := e.gateAuth(gateVisitor); code != http.StatusNoContent {
		t.Fatalf("gate session (signed with the signing key, not a cookie key) after dropping old: %d", code)
	}
	// What only old opened now gets a page that says what to do.
	resp, body := visit(t, gone, http.MethodGet, goneWait)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Go back to the site and try again") {
		t.Fatalf("a link sealed under the dropped key: %d %.300s", resp.StatusCode, body)
	}
	resp, body = visit(t, gone, http.MethodPost, carolWait+"/continue")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Please start again from the site") {
		t.Fatalf("a ticket cookie sealed under the dropped key: %d %.300s", resp.StatusCode, body)
	}
	// Starting again gets a new place, not an error.
	resp, body = visit(t, gone, http.MethodGet, r.authURL(newLogin()))
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `<dd id="position">5</dd>`) {
		t.Fatalf("starting again after the dropped key: %d %.300s", resp.StatusCode, body)
	}
	if code, _ := oldOperator.api(http.MethodGet, "/rooms/"+roomID, ""); code != http.StatusUnauthorized {
		t.Fatalf("admin session signed under the dropped key: %d", code)
	}
}

// retireKey asks the instance the load balancer points at to retire kid,
// and returns the status, the Retry-After header and the JSON answer.
func (e *env) retireKey(kid string) (int, string, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, issuer+"/admin/v1/keys/"+url.PathEscape(kid)+"/retire", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := (&http.Client{Transport: e.transport()}).Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&doc)
	return resp.StatusCode, resp.Header.Get("Retry-After"), doc
}

// refused checks that the instance at addr refuses tok, signed by a
// retired key, everywhere it checks a signature: userinfo, introspection,
// and a relying party that fetches its JWKS afresh.
func (e *env) refused(addr string, r *rp, tok *oauth2.Token) {
	e.t.Helper()
	e.route(addr)
	if info, err := r.provider.UserInfo(r.ctx, oauth2.StaticTokenSource(tok)); err == nil {
		e.t.Fatalf("%s: userinfo answered %s for a token of the retired key", addr, info.Subject)
	}
	if active := introspect(e.t, e, tok.AccessToken); active != false {
		e.t.Fatalf("%s: introspection of a token of the retired key: active=%v", addr, active)
	}
	if err := e.verifyAt(addr, tok.AccessToken, clientID); err == nil {
		e.t.Fatalf("%s: a relying party fetching the JWKS afresh accepts a token of the retired key", addr)
	}
}

func TestRetiredKeyIsRefusedAtOnceAndVisitorsKeepTheirPlaces(t *testing.T) {
	e := newEnv(t, false, withGate)
	ctx := context.Background()
	_, addrA := e.start()
	b, addrB := e.start()
	r := e.rp(clientID, secret, rpCallback)

	// Before the leak: alice logs in through a relying party, a visitor
	// through the gate, and a third visitor waits.
	alice := e.browser()
	aliceLogin := newLogin()
	aliceWait := queue(t, alice, r, aliceLogin)
	gateVisitor := e.browser()
	resp, _ := visit(t, gateVisitor, http.MethodGet, issuer+"/gate/start?rd=/shop")
	gateWait := resp.Request.URL.String()
	waiting := e.browser()
	waitingLogin := newLogin()
	waitURL := queue(t, waiting, r, waitingLogin)
	e.advance(2)
	resp, _ = visit(t, alice, http.MethodPost, aliceWait+"/continue")
	tok, err := r.oauth.Exchange(r.ctx, codeFrom(t, resp, aliceLogin), oauth2.VerifierOption(aliceLogin.verifier))
	if err != nil {
		t.Fatalf("alice's exchange: %v", err)
	}
	leaked, _ := jwtHeader(t, tok.AccessToken)
	visit(t, gateVisitor, http.MethodPost, gateWait+"/continue")
	// Both instances verify the gate session, and cache it.
	for _, addr := range []string{addrA, addrB} {
		e.route(addr)
		if code := e.gateAuth(gateVisitor); code != http.StatusNoContent {
			t.Fatalf("%s: gate session before the retirement: %d", addr, code)
		}
		if active := introspect(t, e, tok.AccessToken); active != true {
			t.Fatalf("%s: test is void: alice's token is refused before the retirement (%v)", addr, active)
		}
		if _, err := r.provider.UserInfo(r.ctx, oauth2.StaticTokenSource(tok)); err != nil {
			t.Fatalf("%s: test is void: userinfo refuses alice's token before the retirement: %v", addr, err)
		}
	}

	// The operator retires the key through A.
	e.route(addrA)
	code, _, doc := e.retireKey(leaked)
	fresh, _ := doc["signing"].(string)
	if code != http.StatusOK || doc["retired"] != leaked || fresh == "" || fresh == leaked {
		t.Fatalf("retire %s: %d %v", leaked, code, doc)
	}
	// A stops trusting it at once: its JWKS, its endpoints, its gate
	// (whose cache still holds the session).
	if kids, _ := e.published(addrA); !slices.Equal(kids, []string{fresh}) {
		t.Fatalf("A's JWKS after the retirement: %v, want only %s", kids, fresh)
	}
	e.refused(addrA, r, tok)
	e.route(addrA)
	if code := e.gateAuth(gateVisitor); code != http.StatusUnauthorized {
		t.Fatalf("A's gate lets a session of the retired key in: %d", code)
	}
	if code, _, _ := e.retireKey(leaked); code != http.StatusNotFound {
		t.Fatalf("retiring the key again: %d, want 404", code)
	}

	// B follows at its next refresh (every minute; the test drives it).
	if err := b.Keys().Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if kids, _ := e.published(addrB); !slices.Equal(kids, []string{fresh}) {
		t.Fatalf("B's JWKS after its refresh: %v, want only %s", kids, fresh)
	}
	e.refused(addrB, r, tok)
	e.route(addrB)
	if code := e.gateAuth(gateVisitor); code != http.StatusUnauthorized {
		t.Fatalf("B's gate lets a session of the retired key in: %d", code)
	}

	// Nobody lost their place. The waiting visitor still waits third, and
	// is let in next, with tokens of the new key.
	if st := pollStatus(t, waiting, waitURL); st.State != "waiting" || st.Position != 3 {
		t.Fatalf("the waiting visitor after the retirement: %+v", st)
	}
	e.advance(1)
	resp, _ = visit(t, waiting, http.MethodPost, waitURL+"/continue")
	next, err := r.oauth.Exchange(r.ctx, codeFrom(t, resp, waitingLogin), oauth2.VerifierOption(waitingLogin.verifier))
	if err != nil {
		t.Fatalf("the waiting visitor's exchange: %v", err)
	}
	// Alice, admitted, logs in again straight through, on either instance.
	for _, addr := range []string{addrA, addrB} {
		e.route(addr)
		l := newLogin()
		resp, _ := visit(t, alice, http.MethodGet, r.authURL(l))
		c := codeFrom(t, resp, l)
		if c == "" {
			t.Fatalf("%s: alice logging in again got %d at %s, want straight back with a code", addr, resp.StatusCode, resp.Request.URL)
		}
		again, err := r.oauth.Exchange(r.ctx, c, oauth2.VerifierOption(l.verifier))
		if err != nil {
			t.Fatalf("%s: alice's new exchange: %v", addr, err)
		}
		// New tokens are signed by the new key, and verify.
		for _, tk := range []*oauth2.Token{again, next} {
			id, _ := tk.Extra("id_token").(string)
			if kid, _ := jwtHeader(t, id); kid != fresh {
				t.Fatalf("%s: ID token signed by %s, want %s", addr, kid, fresh)
			}
			if kid, _ := jwtHeader(t, tk.AccessToken); kid != fresh {
				t.Fatalf("%s: access token signed by %s, want %s", addr, kid, fresh)
			}
			if err := e.verifyAt(addr, tk.AccessToken, clientID); err != nil {
				t.Fatalf("%s: a token of the new key does not verify: %v", addr, err)
			}
			if active := introspect(t, e, tk.AccessToken); active != true {
				t.Fatalf("%s: introspection of a token of the new key: %v", addr, active)
			}
		}
	}
	// The gate visitor starts again and goes straight through too.
	e.route(addrB)
	visit(t, gateVisitor, http.MethodGet, issuer+"/gate/start?rd=/shop")
	if code := e.gateAuth(gateVisitor); code != http.StatusNoContent {
		t.Fatalf("the gate visitor after starting again: %d", code)
	}
	newcomer := e.browser()
	if st := pollStatus(t, newcomer, queue(t, newcomer, r, newLogin())); st.Position != 4 {
		t.Fatalf("a newcomer got position %d, want 4: no place was handed out or lost", st.Position)
	}
}

func TestRetireKeyWhileRedisIsDownAsksToRetry(t *testing.T) {
	if !redisServer.Real() {
		t.Skip("needs a real redis-server to kill")
	}
	e := newEnv(t, false, nil)
	a, _ := e.start()
	kid := a.Keys().Signing().ID
	if err := redisServer.Kill(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = redisServer.Restart() })
	code, retry, doc := e.retireKey(kid)
	if code != http.StatusServiceUnavailable || retry == "" || doc["error"] != "temporarily_unavailable" {
		t.Fatalf("retire with Redis down: %d Retry-After=%q %v", code, retry, doc)
	}
	if a.Keys().Signing().ID != kid {
		t.Fatal("a retirement that failed changed the signing key")
	}
}
