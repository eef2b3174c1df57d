package e2e

import (
	"net/http"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/anteroom/anteroom/config"
	"github.com/anteroom/anteroom/server"
)

// The harness gives the common set-up a short, scenario-shaped API, after
// caddytest: a test says what world it needs (rooms, policies, instances,
// clock) and then reads as what the visitors and the operator do.
//
//	h := newHarness(t, ratePerMinute(120), instances(2))
//	alice := h.visitor()
//	alice.queue()
//	h.advance(1)
//	code := alice.proceed()
//
// Under it is env (e2e_test.go): the test Redis flushed, a load balancer
// the test points at any instance (h.on), and a relying party discovered
// with go-oidc. Tests that need more reach env, the instances and the
// lower-level helpers (visit, pollStatus, codeFrom) through the harness.

// harness is one scenario's world: its instances, running on the test
// Redis behind the test's load balancer, and the relying party of the
// test client.
type harness struct {
	*env
	t *testing.T
	// instances are the running Anteroom instances, in start order; addrs
	// their addresses (for on).
	instances []*server.Server
	addrs     []string
	// rp is the confidential client's side (clientID, rpCallback).
	rp *rp
}

// setup is one thing a scenario needs of its world.
type setup func(*harnessSetup)

type harnessSetup struct {
	wallClock bool
	instances int
	mutate    []func(*config.Config)
}

// wallClock runs the instances on the wall clock, for scenarios that wait
// for their schedulers; by default they run on a clock the test advances
// (h.clock.Advance), and admit only when the scenario says so.
func wallClock() setup { return func(s *harnessSetup) { s.wallClock = true } }

// instances runs n instances on the one Redis; the load balancer starts on
// the first.
func instances(n int) setup { return func(s *harnessSetup) { s.instances = n } }

// ratePerMinute gives the test room (roomID) an admission rate.
func ratePerMinute(n float64) setup {
	return configure(func(c *config.Config) { c.Rooms[0].Admission.RatePerMinute = &n })
}

// configure changes the configuration (testConfig) in any other way.
func configure(f func(*config.Config)) setup {
	return func(s *harnessSetup) { s.mutate = append(s.mutate, f) }
}

// newHarness builds the world the setups describe and starts it; it stops
// when the test ends.
func newHarness(t *testing.T, setups ...setup) *harness {
	t.Helper()
	s := harnessSetup{instances: 1}
	for _, f := range setups {
		f(&s)
	}
	e := newEnv(t, s.wallClock, func(c *config.Config) {
		for _, f := range s.mutate {
			f(c)
		}
	})
	h := &harness{env: e, t: t}
	for range s.instances {
		srv, addr := e.start()
		h.instances = append(h.instances, srv)
		h.addrs = append(h.addrs, addr)
	}
	h.on(0)
	h.rp = e.rp(clientID, secret, rpCallback)
	return h
}

// on points the load balancer at instance i: every request after it, the
// visitors' and the relying party's, reaches that instance.
func (h *harness) on(i int) { h.route(h.addrs[i]) }

// instance is the i-th running instance.
func (h *harness) instance(i int) *server.Server { return h.instances[i] }

// tail is how many visitors the test room has queued, by the admin API.
func (h *harness) tail() any {
	h.t.Helper()
	code, doc := h.admin(http.MethodGet, "/admin/v1/rooms/"+roomID, "")
	if code != http.StatusOK {
		h.t.Fatalf("room status: %d %v", code, doc)
	}
	return doc["tail"]
}

// visitor is one person with a browser of their own (cookies kept) who
// logs in to the test client's site, which sends them through the room.
type visitor struct {
	h       *harness
	browser *http.Client
	// login is their current attempt (state, nonce, PKCE verifier);
	// waitURL is its waiting page, once queued.
	login   login
	waitURL string
}

// visitor is a new person, with a fresh browser.
func (h *harness) visitor() *visitor {
	return &visitor{h: h, browser: h.browser()}
}

// queue starts a login (a new one each call, as a new tab does) and
// returns the waiting page's URL; the test fails unless it lands there.
func (v *visitor) queue() string {
	v.h.t.Helper()
	v.login = newLogin()
	v.waitURL = queue(v.h.t, v.browser, v.h.rp, v.login)
	return v.waitURL
}

// status is what the waiting page's poll answers now.
func (v *visitor) status() status {
	v.h.t.Helper()
	return pollStatus(v.h.t, v.browser, v.waitURL)
}

// proceed presses continue on the waiting page and returns the code the
// site receives, or "" when the visitor was not sent back with one.
func (v *visitor) proceed() string {
	v.h.t.Helper()
	resp, _ := visit(v.h.t, v.browser, http.MethodPost, v.waitURL+"/continue")
	return codeFrom(v.h.t, resp, v.login)
}

// reload opens the waiting page again and returns the code the site
// receives when the page went on by itself, or "".
func (v *visitor) reload() string {
	v.h.t.Helper()
	resp, _ := visit(v.h.t, v.browser, http.MethodGet, v.waitURL)
	return codeFrom(v.h.t, resp, v.login)
}

// redeem is the site exchanging code for tokens (with this login's PKCE
// verifier) and verifying the ID token, as go-oidc does.
func (v *visitor) redeem(code string) (*oauth2.Token, error) {
	r := v.h.rp
	tok, err := r.oauth.Exchange(r.ctx, code, oauth2.VerifierOption(v.login.verifier))
	if err != nil {
		return nil, err
	}
	raw, _ := tok.Extra("id_token").(string)
	if _, err := r.verifier.Verify(r.ctx, raw); err != nil {
		return nil, err
	}
	return tok, nil
}

// waitUntil polls cond until it holds or the deadline passes; it says
// whether it held. For what a wall-clock scheduler does in its own time.
func waitUntil(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}
