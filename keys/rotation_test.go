package keys

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/anteroom/anteroom/internal/testredis"
)

// testClock is a clock the test moves; instances that share one switch
// keys at the same instant, as instances with synchronized clocks do.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *testClock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

func describe(keys []Key) string {
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "[%s %s %s..%s] ", k.ID[:6], k.Algorithm, k.NotBefore.Format(time.RFC3339), k.NotAfter.Format(time.RFC3339))
	}
	return b.String()
}

func kids(keys []Key) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.ID
	}
	return out
}

// storedRecord reads the record as it is in Redis.
func storedRecord(t *testing.T, rdb redis.UniversalClient) record {
	t.Helper()
	var rec record
	raw, err := rdb.Get(context.Background(), DefaultRedisKey).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(raw), &rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

func recordKIDs(rec record) []string {
	out := make([]string, len(rec.Keys))
	for i, k := range rec.Keys {
		out[i] = k.KID
	}
	return out
}

// rotating is the options of an instance that rotates daily, publishes
// two hours ahead and keeps retired keys an hour, on clk.
func rotating(alg jose.SignatureAlgorithm, clk *testClock) Options {
	return Options{Algorithm: alg, RotateEvery: 24 * time.Hour, PublishAhead: 2 * time.Hour, Retain: time.Hour,
		Now: clk.Now, Logger: quietLogger()}
}

func inJWKS(m *Manager, kid string) bool {
	set := m.JWKS()
	return len(set.Key(kid)) == 1
}

func mustRefresh(t *testing.T, m *Manager) {
	t.Helper()
	if err := m.Refresh(context.Background()); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
}

func TestRotationTimeline(t *testing.T) {
	rdb := testredis.Start(t).Client(t)
	box := mustBox(t, "signing keys", secret(1))
	clk := &testClock{t: fixedNow}
	m := mustManager(t, rdb, box, rotating(jose.ES256, clk))
	first := m.Signing()
	if !first.NotBefore.Equal(fixedNow) || !first.NotAfter.IsZero() {
		t.Fatalf("first key window %v..%v, want from %v, open-ended", first.NotBefore, first.NotAfter, fixedNow)
	}

	// Not due until PublishAhead before the rotation.
	clk.Set(fixedNow.Add(22*time.Hour - time.Second))
	mustRefresh(t, m)
	if n := len(m.Verification()); n != 1 {
		t.Fatalf("a key was added %s before it was due: %d published", time.Second, n)
	}

	// Due: the next key is published, starting to sign in two hours.
	clk.Set(fixedNow.Add(22 * time.Hour))
	mustRefresh(t, m)
	v := m.Verification()
	if len(v) != 2 || v[0].ID != first.ID {
		t.Fatalf("after the rotation was due: published %s, want the first key signing and a new one", describe(v))
	}
	next := v[1]
	switchAt := fixedNow.Add(24 * time.Hour)
	if !next.NotBefore.Equal(switchAt) || !next.NotAfter.IsZero() || next.Algorithm != jose.ES256 {
		t.Fatalf("new key %s, want ES256 signing from %v", describe([]Key{next}), switchAt)
	}
	if v[0].NotAfter != switchAt.Add(time.Hour) {
		t.Fatalf("first key leaves at %v, want an hour (Retain) after the switch, %v", v[0].NotAfter, switchAt.Add(time.Hour))
	}
	if !inJWKS(m, next.ID) {
		t.Fatal("the new key is not in the JWKS")
	}

	// The first key signs until the switch, the new one from it: no
	// refresh is needed, the clock decides.
	clk.Set(switchAt.Add(-time.Nanosecond))
	if got := m.Signing().ID; got != first.ID {
		t.Fatalf("just before the switch %s signs, want the first key", got)
	}
	clk.Set(switchAt)
	if got := m.Signing().ID; got != next.ID {
		t.Fatalf("at the switch %s signs, want the new key", got)
	}
	if v := m.Verification(); len(v) != 2 || v[0].ID != next.ID || v[1].ID != first.ID {
		t.Fatalf("after the switch: published %s, want the new key first and the old one still", describe(v))
	}

	// The record puts the signing key first at the next refresh, for
	// instances of a version that signs with the first key.
	if got := recordKIDs(storedRecord(t, rdb)); got[0] != first.ID {
		t.Fatalf("record order before the refresh: %v", got)
	}
	mustRefresh(t, m)
	if got := recordKIDs(storedRecord(t, rdb)); !slices.Equal(got, []string{next.ID, first.ID}) {
		t.Fatalf("record order after the switch: %v, want [%s %s]", got, next.ID, first.ID)
	}

	// The first key is published until its not_after, not a moment longer.
	clk.Set(switchAt.Add(time.Hour - time.Nanosecond))
	if !m.Published(first.ID) || !inJWKS(m, first.ID) {
		t.Fatal("the first key left before its not_after")
	}
	clk.Set(switchAt.Add(time.Hour))
	if m.Published(first.ID) || inJWKS(m, first.ID) || len(m.Verification()) != 1 {
		t.Fatalf("the first key is still published at its not_after: %s", describe(m.Verification()))
	}
	mustRefresh(t, m)
	if got := recordKIDs(storedRecord(t, rdb)); !slices.Equal(got, []string{next.ID}) {
		t.Fatalf("record after retirement: %v, want only %s", got, next.ID)
	}

	// The next rotation follows the new key's schedule.
	clk.Set(switchAt.Add(22 * time.Hour))
	mustRefresh(t, m)
	if v := m.Verification(); len(v) != 2 || !v[1].NotBefore.Equal(switchAt.Add(24*time.Hour)) {
		t.Fatalf("second rotation: %s", describe(v))
	}
}

func TestConcurrentRotationAddsExactlyOneKey(t *testing.T) {
	rdb := testredis.Start(t).Client(t)
	box := mustBox(t, "signing keys", secret(1))
	clk := &testClock{t: fixedNow}
	const n = 4
	managers := make([]*Manager, n)
	for i := range managers {
		managers[i] = mustManager(t, rdb, box, rotating(jose.ES256, clk))
	}
	first := managers[0].Signing().ID

	// Every instance plans the rotation before any writes it, as when all
	// see it due at the same refresh.
	var planned sync.WaitGroup
	planned.Add(n)
	for _, m := range managers {
		m.beforeWrite = func() { planned.Done(); planned.Wait() }
	}
	clk.Set(fixedNow.Add(22 * time.Hour))
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, m := range managers {
		wg.Go(func() { errs[i] = m.Refresh(context.Background()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
	}

	rec := storedRecord(t, rdb)
	if len(rec.Keys) != 2 || rec.Keys[0].KID != first {
		t.Fatalf("record after %d concurrent rotations: %v, want the first key and exactly one new key", n, recordKIDs(rec))
	}
	// Without another refresh, every instance already holds the record's
	// keys: the losers adopted the winner's record.
	for i, m := range managers {
		if got := kids(m.Verification()); !slices.Equal(got, recordKIDs(rec)) {
			t.Fatalf("instance %d publishes %v, the record holds %v", i, got, recordKIDs(rec))
		}
	}
	var scheduled float64
	for _, m := range managers {
		scheduled += m.counts.get("scheduled")
	}
	if scheduled != 1 {
		t.Fatalf("instances counted %v scheduled keys, want 1", scheduled)
	}
	// And they switch together.
	clk.Set(fixedNow.Add(24 * time.Hour))
	for i, m := range managers {
		if got := m.Signing().ID; got != rec.Keys[1].KID {
			t.Fatalf("instance %d signs with %s after the switch, want %s", i, got, rec.Keys[1].KID)
		}
	}
}

func TestLateRotationIsStillPublishedAhead(t *testing.T) {
	rdb := testredis.Start(t).Client(t)
	box := mustBox(t, "signing keys", secret(1))
	clk := &testClock{t: fixedNow}
	m := mustManager(t, rdb, box, rotating(jose.ES256, clk))
	first := m.Signing().ID

	// The deployment was down for a week: the rotation is long overdue, but
	// the new key must not sign before caches could have it.
	clk.Set(fixedNow.Add(7 * 24 * time.Hour))
	late := mustManager(t, rdb, box, rotating(jose.ES256, clk))
	v := late.Verification()
	if len(v) != 2 || late.Signing().ID != first {
		t.Fatalf("after a week: %s, signing %s; want the old key signing and one new key", describe(v), late.Signing().ID)
	}
	if want := clk.Now().Add(2 * time.Hour); !v[1].NotBefore.Equal(want) {
		t.Fatalf("overdue key signs from %v, want PublishAhead from now, %v", v[1].NotBefore, want)
	}
}

func TestRetentionTakesTheLongestConfiguredLife(t *testing.T) {
	rdb := testredis.Start(t).Client(t)
	box := mustBox(t, "signing keys", secret(1))
	clk := &testClock{t: fixedNow}
	short := rotating(jose.ES256, clk)
	long := rotating(jose.ES256, clk)
	long.Retain = 12 * time.Hour
	a := mustManager(t, rdb, box, short)
	b := mustManager(t, rdb, box, long)
	first := a.Signing().ID

	clk.Set(fixedNow.Add(22 * time.Hour))
	mustRefresh(t, a) // schedules, and sets the first key's not_after an hour after the switch
	mustRefresh(t, b) // extends it: b's tokens live 12 hours
	mustRefresh(t, a) // and a does not shorten it again
	switchAt := fixedNow.Add(24 * time.Hour)
	for name, m := range map[string]*Manager{"short": a, "long": b} {
		v := m.Verification()
		if len(v) != 2 || v[0].ID != first || !v[0].NotAfter.Equal(switchAt.Add(12*time.Hour)) {
			t.Fatalf("%s instance: %s, want the first key published until 12h after the switch", name, describe(v))
		}
	}
	clk.Set(switchAt.Add(2 * time.Hour))
	mustRefresh(t, a)
	if !a.Published(first) {
		t.Fatal("the instance with the shorter life retired a key that the other's tokens still need")
	}
}

func TestRecordFromBeforeRotation(t *testing.T) {
	rdb := testredis.Start(t).Client(t)
	box := mustBox(t, "signing keys", secret(1))
	ctx := context.Background()
	mustManager(t, rdb, box, testOptions(jose.ES256))
	added := addKey(t, rdb, box)
	// Strip every window, as a record written before rotation has none.
	var rec map[string]any
	json.Unmarshal([]byte(rdb.Get(ctx, DefaultRedisKey).Val()), &rec)
	for _, k := range rec["keys"].([]any) {
		delete(k.(map[string]any), "not_before")
		delete(k.(map[string]any), "not_after")
	}
	legacy := jsonOf(t, rec)
	rdb.Set(ctx, DefaultRedisKey, legacy, 0)
	firstKID := rec["keys"].([]any)[0].(map[string]any)["kid"].(string)

	// Read without maintenance: the first key signs, all are published.
	m := &Manager{box: box, opts: Options{RedisKey: DefaultRedisKey}}
	set, err := m.decode(legacy)
	if err != nil {
		t.Fatal(err)
	}
	if got := set.keys[set.signer(fixedNow)].ID; got != firstKID {
		t.Fatalf("a record without windows signs with %s, want its first key %s", got, firstKID)
	}
	if got := kids(set.published(fixedNow)); !slices.Equal(got, []string{firstKID, added}) {
		t.Fatalf("a record without windows publishes %v, want both keys", got)
	}

	// A manager gives it windows: the first key keeps signing, the other
	// one, never used to sign, stays published for Retain.
	clk := &testClock{t: fixedNow}
	opts := rotating(jose.ES256, clk)
	opts.RotateEvery = 0
	up := mustManager(t, rdb, box, opts)
	if up.Signing().ID != firstKID {
		t.Fatalf("after the upgrade %s signs, want %s", up.Signing().ID, firstKID)
	}
	stored := storedRecord(t, rdb)
	if len(stored.Keys) != 2 || stored.Keys[0].KID != firstKID || !stored.Keys[0].NotBefore.Equal(fixedNow) ||
		!stored.Keys[0].NotAfter.IsZero() || !stored.Keys[1].NotAfter.Equal(fixedNow.Add(time.Hour)) {
		t.Fatalf("upgraded record: %+v", stored.Keys)
	}
	clk.Advance(time.Hour)
	mustRefresh(t, up)
	if got := recordKIDs(storedRecord(t, rdb)); !slices.Equal(got, []string{firstKID}) {
		t.Fatalf("record an hour after the upgrade: %v, want only the signing key", got)
	}

	// With rotation configured, a key created long ago is due at once.
	clk.Advance(30 * 24 * time.Hour)
	rot := mustManager(t, rdb, box, rotating(jose.ES256, clk))
	if v := rot.Verification(); len(v) != 2 || !v[1].NotBefore.Equal(clk.Now().Add(2*time.Hour)) {
		t.Fatalf("rotation of an old key: %s", describe(v))
	}
}

func TestCookieKeyRotationResealsTheRecord(t *testing.T) {
	rdb := testredis.Start(t).Client(t)
	ctx := context.Background()
	oldKey, newKey := secret(1), secret(2)
	before := mustManager(t, rdb, mustBox(t, "signing keys", oldKey), testOptions(jose.ES256))
	kid := before.Signing().ID

	// The new secret alone cannot open the record: the operator must list
	// the old one second first, and the error says so.
	if _, err := NewManager(ctx, rdb, mustBox(t, "signing keys", newKey), testOptions(jose.ES256)); err == nil ||
		!strings.Contains(err.Error(), "list the previous cookie key second") {
		t.Fatalf("NewManager with only a new cookie key: %v", err)
	}

	var logs bytes.Buffer
	opts := testOptions(jose.ES256)
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	rotated := mustManager(t, rdb, mustBox(t, "signing keys", newKey, oldKey), opts)
	if rotated.Signing().ID != kid || rotated.counts.get("resealed") != 1 || !strings.Contains(logs.String(), "sealed signing keys again") {
		t.Fatalf("with [new, old]: signing %s (want %s), resealed %v; log:\n%s", rotated.Signing().ID, kid, rotated.counts.get("resealed"), logs.String())
	}
	// Sealed under the new secret only: the old one can be dropped.
	for _, rk := range storedRecord(t, rdb).Keys {
		sealed, _ := base64.RawURLEncoding.DecodeString(rk.Private)
		if _, err := mustBox(t, "signing keys", oldKey).Open(sealed, []byte(rk.KID)); err == nil {
			t.Fatalf("key %s still opens with the old cookie key", rk.KID)
		}
	}
	after := mustManager(t, rdb, mustBox(t, "signing keys", newKey), testOptions(jose.ES256))
	if after.Signing().ID != kid {
		t.Fatalf("after dropping the old cookie key %s signs, want %s", after.Signing().ID, kid)
	}
	// Sealing again is done once, not at every refresh.
	raw := rdb.Get(ctx, DefaultRedisKey).Val()
	mustRefresh(t, rotated)
	if rdb.Get(ctx, DefaultRedisKey).Val() != raw {
		t.Fatal("a refresh rewrote a record that was already sealed under the first cookie key")
	}
}

func TestSkewedClocksDoNotTakeTurnsReordering(t *testing.T) {
	rdb := testredis.Start(t).Client(t)
	box := mustBox(t, "signing keys", secret(1))
	ahead := &testClock{t: fixedNow}
	behind := &testClock{t: fixedNow}
	a := mustManager(t, rdb, box, rotating(jose.ES256, ahead))
	b := mustManager(t, rdb, box, rotating(jose.ES256, behind))
	ahead.Set(fixedNow.Add(22 * time.Hour))
	mustRefresh(t, a)
	mustRefresh(t, b)

	// a's clock has passed the switch, b's is ten seconds short of it.
	switchAt := fixedNow.Add(24 * time.Hour)
	ahead.Set(switchAt.Add(5 * time.Second))
	behind.Set(switchAt.Add(-5 * time.Second))
	mustRefresh(t, a) // moves the new key first
	raw := rdb.Get(context.Background(), DefaultRedisKey).Val()
	for range 3 {
		mustRefresh(t, b)
		mustRefresh(t, a)
	}
	if rdb.Get(context.Background(), DefaultRedisKey).Val() != raw {
		t.Fatal("instances with skewed clocks rewrote the record back and forth")
	}
	if a.Signing().ID == b.Signing().ID {
		t.Fatal("test is void: the skewed instances agree on the signing key")
	}
}

func TestDiscoveryListsAPendingAlgorithmAhead(t *testing.T) {
	rdb := testredis.Start(t).Client(t)
	box := mustBox(t, "signing keys", secret(1))
	clk := &testClock{t: fixedNow}
	rs := mustManager(t, rdb, box, rotating(jose.RS256, clk))
	if got := rs.Algorithms(); !slices.Equal(got, []jose.SignatureAlgorithm{jose.RS256}) {
		t.Fatalf("RS256 alone: Algorithms = %v", got)
	}
	es := mustManager(t, rdb, box, rotating(jose.ES256, clk))
	for name, m := range map[string]*Manager{"the instance that scheduled it": es, "another instance": rs} {
		mustRefresh(t, m)
		// RS256 signs for two more hours, ES256 is published ahead: a
		// relying party that reads discovery now must accept both.
		if got := m.Algorithms(); !slices.Equal(got, []jose.SignatureAlgorithm{jose.RS256, jose.ES256}) {
			t.Fatalf("%s: Algorithms = %v while an ES256 key is published ahead, want [RS256 ES256]", name, got)
		}
	}
	clk.Advance(2 * time.Hour)
	if got := es.Algorithms(); !slices.Equal(got, []jose.SignatureAlgorithm{jose.ES256, jose.RS256}) {
		t.Fatalf("after the switch: Algorithms = %v, want [ES256 RS256]", got)
	}
}

func TestRecordWithImpossibleWindowsIsRefused(t *testing.T) {
	rdb := testredis.Start(t).Client(t)
	box := mustBox(t, "signing keys", secret(1))
	ctx := context.Background()
	m := mustManager(t, rdb, box, testOptions(jose.ES256))
	good := rdb.Get(ctx, DefaultRedisKey).Val()
	for name, edit := range map[string]func(k map[string]any){
		"the newest key retires": func(k map[string]any) { k["not_after"] = "2027-01-01T00:00:00Z" },
		"a key leaves before it signs": func(k map[string]any) {
			k["not_before"] = "2027-01-01T00:00:00Z"
			k["not_after"] = "2026-12-01T00:00:00Z"
		},
	} {
		var rec map[string]any
		json.Unmarshal([]byte(good), &rec)
		edit(rec["keys"].([]any)[0].(map[string]any))
		rdb.Set(ctx, DefaultRedisKey, jsonOf(t, rec), 0)
		if err := m.Refresh(ctx); err == nil {
			t.Errorf("%s: Refresh accepted the record", name)
		}
		if _, err := NewManager(ctx, rdb, box, testOptions(jose.ES256)); err == nil {
			t.Errorf("%s: NewManager accepted the record", name)
		}
		if len(m.Verification()) != 1 {
			t.Errorf("%s: a refused record changed the key set", name)
		}
	}
}

func TestOptionsAreChecked(t *testing.T) {
	rdb := testredis.Start(t).Client(t)
	box := mustBox(t, "signing keys", secret(1))
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{RotateEvery: -time.Hour}, "negative rotation period"},
		{Options{RotateEvery: time.Hour, PublishAhead: time.Hour}, "must be shorter than the rotation period"},
		{Options{RotateEvery: time.Hour}, "publish ahead 2h0m0s must be shorter"}, // the default is 2h
	} {
		if _, err := NewManager(context.Background(), rdb, box, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want %q", tc.opts, err, tc.want)
		}
	}
}

func TestCacheMaxAge(t *testing.T) {
	rdb := testredis.Start(t).Client(t)
	box := mustBox(t, "signing keys", secret(1))
	for ahead, want := range map[time.Duration]time.Duration{
		10 * time.Minute: 5 * time.Minute,
		2 * time.Hour:    time.Hour,
		48 * time.Hour:   time.Hour,
	} {
		m := mustManager(t, rdb, box, Options{Algorithm: jose.ES256, PublishAhead: ahead, Logger: quietLogger()})
		if got := m.CacheMaxAge(); got != want {
			t.Errorf("publish ahead %s: CacheMaxAge %s, want %s", ahead, got, want)
		}
	}
}

func TestMetricsShowKeysAndChanges(t *testing.T) {
	rdb := testredis.Start(t).Client(t)
	box := mustBox(t, "signing keys", secret(1))
	clk := &testClock{t: fixedNow}
	m := mustManager(t, rdb, box, rotating(jose.ES256, clk))
	reg := prometheus.NewRegistry()
	if err := m.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	first := m.Signing().ID
	clk.Set(fixedNow.Add(22 * time.Hour))
	mustRefresh(t, m)
	next := m.Verification()[1].ID

	expect := func(when string, keys map[string]string, changes map[string]int) {
		t.Helper()
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, f := range families {
			if f.GetName() != "anteroom_signing_key_info" {
				continue
			}
			for _, metric := range f.GetMetric() {
				labels := map[string]string{}
				for _, l := range metric.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["alg"] != "ES256" || metric.GetGauge().GetValue() != 1 {
					t.Fatalf("%s: series %v = %v", when, labels, metric.GetGauge().GetValue())
				}
				got[labels["kid"]] = labels["state"]
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(keys) {
			t.Fatalf("%s: key states %v, want %v", when, got, keys)
		}
		for kind, n := range changes {
			if got := m.counts.get(kind); got != float64(n) {
				t.Fatalf("%s: %s = %v, want %d", when, kind, got, n)
			}
		}
	}
	expect("after scheduling", map[string]string{first: "signing", next: "next"}, map[string]int{"created": 1, "scheduled": 1, "retired": 0})
	clk.Set(fixedNow.Add(24 * time.Hour))
	expect("after the switch", map[string]string{first: "retiring", next: "signing"}, nil)
	clk.Set(fixedNow.Add(25 * time.Hour))
	mustRefresh(t, m)
	expect("after retirement", map[string]string{next: "signing"}, map[string]int{"retired": 1})
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "anteroom_signing_key_changes_total" && len(f.GetMetric()) != len(changeKinds) {
			t.Fatalf("changes series: %d, want one per kind", len(f.GetMetric()))
		}
	}
}

// anteroom_signing_key_rotation_due_timestamp_seconds is when the signing
// key will have signed for RotateEvery: it moves on when the next key
// takes over, stays in the past while no refresh rotates (the alert's
// "rotation overdue"), and is absent when keys never rotate.
func TestMetricsShowWhenRotationIsDue(t *testing.T) {
	rdb := testredis.Start(t).Client(t)
	box := mustBox(t, "signing keys", secret(1))
	due := func(reg *prometheus.Registry) (time.Time, bool) {
		t.Helper()
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			if f.GetName() == "anteroom_signing_key_rotation_due_timestamp_seconds" {
				return time.UnixMilli(int64(f.GetMetric()[0].GetGauge().GetValue() * 1e3)).UTC(), true
			}
		}
		return time.Time{}, false
	}
	clk := &testClock{t: fixedNow}
	m := mustManager(t, rdb, box, rotating(jose.ES256, clk))
	reg := prometheus.NewRegistry()
	if err := m.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	start := m.Signing().NotBefore
	if got, ok := due(reg); !ok || !got.Equal(start.Add(24*time.Hour)) {
		t.Fatalf("first key: due %v (%v), want %v", got, ok, start.Add(24*time.Hour))
	}
	// No refresh ran: the key signs past its time, and the metric says so.
	clk.Set(fixedNow.Add(25 * time.Hour))
	if got, _ := due(reg); !got.Before(clk.Now()) {
		t.Fatalf("unrotated key at +25h: due %v, want a time before %v", got, clk.Now())
	}
	// A refresh schedules the next key, which signs publish_ahead later;
	// from then on the time is its own plus 24h.
	mustRefresh(t, m)
	clk.Set(fixedNow.Add(28 * time.Hour))
	next := m.Signing()
	if next.NotBefore.Equal(start) {
		t.Fatal("no rotation after the refresh")
	}
	if got, _ := due(reg); !got.Equal(next.NotBefore.Add(24 * time.Hour)) {
		t.Fatalf("after the rotation: due %v, want %v", got, next.NotBefore.Add(24*time.Hour))
	}

	never := mustManager(t, testredis.Start(t).Client(t), box, Options{Algorithm: jose.ES256, Logger: quietLogger()})
	reg = prometheus.NewRegistry()
	if err := never.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if got, ok := due(reg); ok {
		t.Fatalf("keys that never rotate: due %v, want no series", got)
	}
}
