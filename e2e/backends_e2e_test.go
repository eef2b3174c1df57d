package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"

	"github.com/anteroom/anteroom/config"
	"github.com/anteroom/anteroom/internal/testredis"
	"github.com/anteroom/anteroom/server"
)

// These tests run two instances on each Redis Anteroom supports, configured
// as an operator would (redis.url, redis.addrs, redis.master_name), and
// take every part that talks to Redis through them: the OIDC storage over a
// whole flow, the signing keys, the counter cache, heartbeats, the
// scheduler's lease, the admin and public APIs, the gate and the metrics'
// reads. On a Cluster, the rooms live on three different masters and any
// CROSSSLOT error fails the test.

// backendRooms are the rooms of these tests, one per Cluster master: their
// hash tags fall in slots 16274, 8557 and 810, and redis-cli gives each
// master a third of the slots, in order.
const (
	gateRoom = "other" // protected by the gate
	rateRoom = "sale"  // admits by rate, with abandonment
	rateApp  = "sale-shop"
)

func TestOnMiniredis(t *testing.T) {
	m := miniredis.RunT(t)
	onBackend(t, config.Redis{URL: "redis://" + m.Addr() + "/0"}, func() error { m.FlushAll(); return nil })
}

func TestOnRedisServer(t *testing.T) {
	onBackend(t, config.Redis{URL: redisServer.URL()}, redisServer.FlushAll)
}

func TestOnRedisCluster(t *testing.T) {
	c := testredis.StartCluster(t)
	// One seed address is enough: the client learns the rest from it.
	e := onBackend(t, config.Redis{Addrs: c.Addrs()[:1]}, c.FlushAll)
	if _, ok := e.rdb.(*redis.ClusterClient); !ok {
		t.Fatalf("redis.addrs made a %T, want a Cluster client", e.rdb)
	}
}

// TestOnRedisSentinel runs the same, then fails the master over under the
// instances: they keep serving without a restart, answering 503 with
// Retry-After while no master answers, and nobody loses their place.
func TestOnRedisSentinel(t *testing.T) {
	s := testredis.StartSentinel(t)
	e := onBackend(t, config.Redis{Addrs: s.Addrs(), MasterName: s.MasterName()}, s.FlushAll)
	ctx := t.Context()

	// A visitor waits in the room; the replica has their place (WAIT),
	// as it has any write older than the replication lag.
	r := e.rp(clientID, secret, rpCallback)
	b := e.browser()
	l := newLogin()
	waitURL := queue(t, b, r, l)
	before := pollStatus(t, b, waitURL)
	beforeServing := e.serving()
	master, err := s.Master(ctx)
	if err != nil {
		t.Fatal(err)
	}
	direct := redis.NewClient(&redis.Options{Addr: master.Addr()})
	if n, err := direct.Wait(ctx, 1, 5*time.Second).Result(); err != nil || n != 1 {
		t.Fatalf("WAIT for the replica = %d, %v", n, err)
	}
	direct.Close()

	if err := master.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	// Newcomers keep arriving. Until a new master answers they are told
	// to retry, never shown an error of another kind; then they queue
	// again, on the same instances.
	refused := 0
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, body := visit(t, e.browser(), http.MethodGet, r.authURL(newLogin()))
		if resp.StatusCode == http.StatusOK && strings.HasPrefix(resp.Request.URL.String(), issuer+"/wait/") {
			break
		}
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("a join during the failover: %d (Retry-After %q) at %s: %.300s",
				resp.StatusCode, resp.Header.Get("Retry-After"), resp.Request.URL, body)
		}
		refused++
		if time.Now().After(deadline) {
			t.Fatalf("no join succeeded within 30 s of the master's death (%d refused)", refused)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("the first join after the master's death succeeded %s later; %d refused with 503 before", time.Since(killed).Round(time.Millisecond), refused)
	if err := s.WaitForFailover(ctx, master.Addr()); err != nil {
		t.Fatal(err)
	}

	// The waiting visitor kept their place, the counter did not move back,
	// and the visitor finishes the flow.
	if st := pollStatus(t, b, waitURL); st.Position != before.Position {
		t.Fatalf("position after failover %d, before %d", st.Position, before.Position)
	}
	if got := e.serving(); got < beforeServing {
		t.Fatalf("serving moved back from %d to %d", beforeServing, got)
	}
	if n := before.Position - e.serving(); n > 0 {
		e.advance(int(n))
	}
	resp, _ := visit(t, b, http.MethodPost, waitURL+"/continue")
	code := codeFrom(t, resp, l)
	if code == "" {
		t.Fatalf("continue after failover: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	if _, err := r.oauth.Exchange(r.ctx, code, oauth2.VerifierOption(l.verifier)); err != nil {
		t.Fatalf("exchange after failover: %v", err)
	}
}

// onBackend runs two instances on the Redis that cfg names, takes every
// part that talks to Redis through them, and returns the env, its
// instances still running.
func onBackend(t *testing.T, rc config.Redis, flush func() error) *env {
	t.Helper()
	if err := flush(); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Redis = rc
	rate := 60.0
	abandon := config.Duration(30 * time.Second)
	insecure := false
	cfg.Rooms = append(cfg.Rooms,
		config.Room{ID: gateRoom, Name: "Other",
			SessionTTL: config.Duration(30 * time.Minute), MaxWait: config.Duration(time.Hour)},
		config.Room{ID: rateRoom, Name: "Sale", Admission: config.Admission{RatePerMinute: &rate}, AbandonAfter: &abandon,
			SessionTTL: config.Duration(30 * time.Minute), MaxWait: config.Duration(time.Hour)})
	cfg.Clients = append(cfg.Clients, config.Client{ID: rateApp, Secret: secret, Room: rateRoom, RedirectURIs: []string{rpCallback}})
	cfg.Gate = &config.Gate{Cookie: config.GateCookie{Secure: &insecure},
		Rules: []config.Rule{{PathPrefix: "/", Action: "queue", Room: gateRoom}}}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	// The client is made as serve makes it, from the configuration.
	opts, err := cfg.Redis.Options()
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewUniversalClient(opts)
	t.Cleanup(func() { rdb.Close() })
	testredis.FailOnCrossSlot(t, rdb)
	ctx := t.Context()
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		masters := map[string]bool{}
		for _, room := range []string{roomID, gateRoom, rateRoom} {
			m, err := cc.MasterForKey(ctx, "anteroom:{r:"+room+"}:tail")
			if err != nil {
				t.Fatal(err)
			}
			masters[m.Options().Addr] = true
		}
		if len(masters) != 3 {
			t.Fatalf("the three rooms live on %d masters, want one each", len(masters))
		}
	}

	e := &env{t: t, cfg: cfg, rdb: rdb, clock: newClock()}
	a, addrA := e.start()
	b, addrB := e.start()
	errorsBefore := e.scrape()["anteroom_redis_errors_total"]
	if a.Keys().Signing().ID != b.Keys().Signing().ID {
		t.Fatalf("instances sign with %s and %s, want one shared key", a.Keys().Signing().ID, b.Keys().Signing().ID)
	}

	oidcFlowAcrossInstances(e, addrA, addrB)
	gateFlow(e)
	adminAndPublicAPI(e)
	schedulerAndHeartbeats(e, a, b)
	if err := a.Keys().Refresh(ctx); err != nil {
		t.Fatalf("keys.Refresh: %v", err)
	}
	if got := e.scrape()["anteroom_redis_errors_total"] - errorsBefore; got != 0 {
		t.Fatalf("anteroom_redis_errors_total moved by %v: some Redis call failed on this backend", got)
	}
	return e
}

// oidcFlowAcrossInstances takes a visitor through the whole flow, each step
// on the other instance: authorize, wait, continue, token, refresh,
// userinfo, introspection, code replay, revocation and end_session.
func oidcFlowAcrossInstances(e *env, addrA, addrB string) {
	t := e.t
	e.route(addrA)
	r := e.rp(clientID, secret, rpCallback)
	r.oauth.Scopes = append(r.oauth.Scopes, gooidc.ScopeOfflineAccess)
	b := e.browser()
	l := newLogin()
	waitURL := queue(t, b, r, l)
	if st := pollStatus(t, b, waitURL); st.State != "waiting" || st.Position != 1 {
		t.Fatalf("status on A: %+v", st)
	}
	e.route(addrB)
	e.advance(1)
	resp, _ := visit(t, b, http.MethodPost, waitURL+"/continue")
	code := codeFrom(t, resp, l)
	if code == "" {
		t.Fatalf("continue on B: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	e.route(addrA)
	tok, err := r.oauth.Exchange(r.ctx, code, oauth2.VerifierOption(l.verifier))
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("exchange on A: %v (refresh token %q)", err, tok.RefreshToken)
	}
	e.route(addrB)
	raw, _ := tok.Extra("id_token").(string)
	if _, err := r.verifier.Verify(r.ctx, raw); err != nil {
		t.Fatalf("verify A's ID token with B's JWKS: %v", err)
	}
	if _, err := r.provider.UserInfo(r.ctx, oauth2.StaticTokenSource(tok)); err != nil {
		t.Fatalf("userinfo on B: %v", err)
	}
	e.route(addrA)
	if active := introspect(t, e, tok.AccessToken); active != true {
		t.Fatalf("introspection on A: active=%v", active)
	}

	// A refresh on B rotates the refresh token.
	e.route(addrB)
	stale := &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Minute)}
	tok2, err := r.oauth.TokenSource(r.ctx, stale).Token()
	if err != nil || tok2.RefreshToken == "" || tok2.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh on B: %v", err)
	}
	// Revocation ends the refreshed access token.
	e.route(addrA)
	if active := introspect(t, e, tok2.AccessToken); active != true {
		t.Fatalf("refreshed access token: active=%v", active)
	}
	if status := revoke(t, e, tok2.AccessToken); status != http.StatusOK {
		t.Fatalf("revoke: %d", status)
	}
	if active := introspect(t, e, tok2.AccessToken); active != false {
		t.Fatalf("revoked access token: active=%v", active)
	}
	// The code presented again revokes every token of its grant: those it
	// bought and the refresh token they were rotated into.
	if _, err := r.oauth.Exchange(r.ctx, code, oauth2.VerifierOption(l.verifier)); err == nil {
		t.Fatal("a replayed code succeeded")
	}
	e.route(addrB)
	if active := introspect(t, e, tok.AccessToken); active != false {
		t.Fatalf("the access token of a replayed code: active=%v", active)
	}
	rotated := &oauth2.Token{RefreshToken: tok2.RefreshToken, Expiry: time.Now().Add(-time.Minute)}
	if _, err := r.oauth.TokenSource(r.ctx, rotated).Token(); err == nil {
		t.Fatal("the rotated refresh token of a replayed code was accepted")
	}
	if _, err := r.oauth.TokenSource(r.ctx, stale).Token(); err == nil {
		t.Fatal("a rotated-out refresh token was accepted again")
	}

	// The metrics read the room's active sessions from Redis; end_session
	// on B frees the visitor's slot.
	if got := e.scrape()[`anteroom_room_active{room="launch"}`]; got != 1 {
		t.Fatalf(`anteroom_room_active{room="launch"} = %v, want 1`, got)
	}
	e.route(addrB)
	resp, _ = visit(t, b, http.MethodGet, issuer+"/end_session?id_token_hint="+url.QueryEscape(raw)+"&client_id="+clientID)
	if resp.StatusCode >= 400 {
		t.Fatalf("end_session on B: %d", resp.StatusCode)
	}
	e.route(addrA)
	if st := e.roomStatus(); st["active"] != float64(0) {
		t.Fatalf("active after end_session: %v", st["active"])
	}
	if got, ok := e.scrape()[`anteroom_room_active{room="launch"}`]; !ok || got != 0 {
		t.Fatalf(`anteroom_room_active{room="launch"} = %v (%v), want 0`, got, ok)
	}
}

// gateFlow takes a browser through the gate of its room, as nginx would
// send it: refused, queued, admitted, and then let through by its cookie.
func gateFlow(e *env) {
	t := e.t
	b := e.browser()
	gate := func(path string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, issuer+path, nil)
		req.Header.Set("X-Original-URI", "/shop/item")
		resp, err := b.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := gate("/gate/auth"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/gate/auth without a session: %d", resp.StatusCode)
	}
	resp := gate("/gate/start")
	waitURL := resp.Request.URL.String()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(waitURL, issuer+"/wait/") {
		t.Fatalf("/gate/start: %d at %s", resp.StatusCode, waitURL)
	}
	if code, doc := e.admin(http.MethodPost, "/admin/v1/rooms/"+gateRoom+"/advance", `{"count":1}`); code != http.StatusOK {
		t.Fatalf("advance %s: %d %v", gateRoom, code, doc)
	}
	resp, _ = visit(t, b, http.MethodPost, waitURL+"/continue")
	if resp.Request.URL.Path != "/shop/item" {
		t.Fatalf("continue through the gate ended at %s (%d), want the original URL", resp.Request.URL, resp.StatusCode)
	}
	resp = gate("/gate/auth")
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("X-Anteroom-Room") != gateRoom || resp.Header.Get("X-Anteroom-Sub") == "" {
		t.Fatalf("/gate/auth with the session: %d %v", resp.StatusCode, resp.Header)
	}
}

// adminAndPublicAPI reads every room's status and changes a room's state.
func adminAndPublicAPI(e *env) {
	t := e.t
	code, doc := e.admin(http.MethodGet, "/admin/v1/rooms", "")
	rooms, _ := doc["rooms"].([]any)
	if code != http.StatusOK || len(rooms) != 3 {
		t.Fatalf("GET /admin/v1/rooms: %d %v", code, doc)
	}
	// Not the rate room: pausing it would spend the budget that its
	// safety net is tested with below.
	for _, st := range []string{"paused", "open"} {
		if code, doc := e.admin(http.MethodPatch, "/admin/v1/rooms/"+gateRoom, `{"state":"`+st+`"}`); code != http.StatusOK || doc["state"] != st {
			t.Fatalf("PATCH %s to %s: %d %v", gateRoom, st, code, doc)
		}
	}
	// The public status comes from the instance's cache, refreshed from
	// every room's slot twice a second.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, body := visit(t, &http.Client{Transport: e.transport()}, http.MethodGet, issuer+"/api/v1/rooms/"+gateRoom)
		if resp.StatusCode == http.StatusOK && strings.Contains(body, `"serving":1`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("public status of %s: %d %s", gateRoom, resp.StatusCode, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// schedulerAndHeartbeats lets the rate room's safety net, its scheduler
// (one leader between the instances) and abandonment work: a visitor
// whose page beats is let in, a silent one is passed over.
func schedulerAndHeartbeats(e *env, a, b *server.Server) {
	t := e.t
	ctx := t.Context()
	r := e.rp(rateApp, secret, rpCallback)
	first := newLogin()
	resp, _ := visit(t, e.browser(), http.MethodGet, r.authURL(first))
	if codeFrom(t, resp, first) == "" {
		t.Fatalf("the safety net did not let the first visitor of an idle room in: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	queue(t, e.browser(), r, newLogin()) // falls silent
	live, l := e.browser(), newLogin()
	waitURL := queue(t, live, r, l)
	// Past two grace periods, only a page's beats say it is there.
	e.clock.Advance(time.Minute + time.Second)
	pollStatus(t, live, waitURL)
	for _, inst := range []*server.Server{a, b} {
		if err := inst.Heartbeats().Flush(ctx); err != nil {
			t.Fatalf("heartbeats flush: %v", err)
		}
	}
	// The instances' own ticks run too, and one may come before the flush:
	// then the beating visitor is passed over with the silent one, and let
	// in at the next tick as one who came back. Either way it gets in.
	deadline := time.Now().Add(15 * time.Second)
	for {
		for _, inst := range []*server.Server{a, b} {
			if err := inst.Scheduler().Step(ctx); err != nil {
				t.Fatalf("scheduler step: %v", err)
			}
		}
		resp, _ := visit(t, live, http.MethodPost, waitURL+"/continue")
		if codeFrom(t, resp, l) != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the beating visitor was not let in")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if a.Scheduler().Leading(rateRoom) == b.Scheduler().Leading(rateRoom) {
		t.Fatalf("leading %s: a=%v b=%v, want exactly one", rateRoom, a.Scheduler().Leading(rateRoom), b.Scheduler().Leading(rateRoom))
	}
	code, doc := e.admin(http.MethodGet, "/admin/v1/rooms/"+rateRoom, "")
	if code != http.StatusOK || doc["serving"] != float64(3) || doc["tail"] != float64(3) {
		t.Fatalf("%s after the tick: %d %v, want serving 3 of 3 (the silent visitor passed over)", rateRoom, code, doc)
	}
}
