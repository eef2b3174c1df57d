package keys

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/anteroom/anteroom/internal/testredis"
)

// These tests retire keys early, as an operator does with a key that
// leaked: the key leaves the record at once, whatever its window said.

// mustRetire retires kid on m and returns the key that signs afterwards.
func mustRetire(t *testing.T, m *Manager, kid string) Key {
	t.Helper()
	k, err := m.Retire(context.Background(), kid)
	if err != nil {
		t.Fatalf("Retire(%s): %v", kid, err)
	}
	return k
}

// states returns the published keys' states by kid.
func states(m *Manager) map[string]KeyState {
	out := map[string]KeyState{}
	for _, k := range m.Status() {
		out[k.ID] = k.State
	}
	return out
}

// lockedLog is a log that the test reads while instances write to it.
type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestRetireSigningKeyReplacesItAtOnce(t *testing.T) {
	rdb := testredis.Start(t).Client(t)
	box := mustBox(t, "signing keys", secret(1))
	clk := &testClock{t: fixedNow}
	var log lockedLog
	opts := rotating(jose.ES256, clk)
	opts.Logger = slog.New(slog.NewTextHandler(&log, nil))
	a := mustManager(t, rdb, box, opts)
	b := mustManager(t, rdb, box, rotating(jose.ES256, clk))
	leaked := a.Signing().ID

	clk.Advance(time.Hour)
	signing := mustRetire(t, a, leaked)
	if signing.ID == leaked || !signing.NotBefore.Equal(clk.Now()) || signing.Algorithm != jose.ES256 {
		t.Fatalf("after retiring the signing key: %s signs; want a new ES256 key signing from now, %v", describe([]Key{signing}), clk.Now())
	}
	// This instance stops trusting the key at once: no grace, no
	// publish-ahead.
	if a.Signing().ID != signing.ID || a.Published(leaked) || inJWKS(a, leaked) || len(a.Verification()) != 1 {
		t.Fatalf("the retiring instance publishes %s, signing %s; want only %s", describe(a.Verification()), a.Signing().ID, signing.ID)
	}
	if got := recordKIDs(storedRecord(t, rdb)); !slices.Equal(got, []string{signing.ID}) {
		t.Fatalf("record holds %v, want only %s", got, signing.ID)
	}
	if a.counts.get("revoked") != 1 || a.counts.get("scheduled") != 0 {
		t.Fatalf("counted revoked %v, scheduled %v; want 1 and 0", a.counts.get("revoked"), a.counts.get("scheduled"))
	}
	if l := log.String(); !strings.Contains(l, "level=WARN msg=\"revoked signing key") || !strings.Contains(l, "kid="+leaked) ||
		!strings.Contains(l, "alg=ES256") || !strings.Contains(l, "signing="+signing.ID) {
		t.Fatalf("log lacks a warning naming the key, its alg and its successor:\n%s", l)
	}

	// The other instance follows at its next refresh.
	if !b.Published(leaked) {
		t.Fatal("test is void: the other instance dropped the key before refreshing")
	}
	mustRefresh(t, b)
	if b.Signing().ID != signing.ID || b.Published(leaked) || len(b.Verification()) != 1 {
		t.Fatalf("the other instance after its refresh publishes %s; want only %s", describe(b.Verification()), signing.ID)
	}

	// The rotation schedule starts again from the new key.
	clk.Advance(22*time.Hour - time.Second)
	mustRefresh(t, a)
	if n := len(a.Verification()); n != 1 {
		t.Fatalf("a rotation was scheduled before the new key had signed for rotate_every - publish_ahead: %d keys", n)
	}
}

func TestRetireKeyPublishedAhead(t *testing.T) {
	rdb := testredis.Start(t).Client(t)
	box := mustBox(t, "signing keys", secret(1))
	clk := &testClock{t: fixedNow}
	m := mustManager(t, rdb, box, rotating(jose.ES256, clk))
	old := m.Signing().ID
	clk.Set(fixedNow.Add(22 * time.Hour))
	mustRefresh(t, m)
	v := m.Verification()
	if len(v) != 2 {
		t.Fatalf("test is void: no key published ahead: %s", describe(v))
	}
	ahead := v[1].ID

	signing := mustRetire(t, m, ahead)
	if signing.ID == old || signing.ID == ahead || !signing.NotBefore.Equal(clk.Now()) {
		t.Fatalf("after retiring the key published ahead, %s signs; want a new key signing from now", describe([]Key{signing}))
	}
	want := map[string]KeyState{signing.ID: StateSigning, old: StateRetiring}
	if got := states(m); !maps.Equal(got, want) {
		t.Fatalf("published %v, want %v", got, want)
	}
	// The old key is not compromised: it stays until its tokens expire.
	if k := m.Verification()[1]; k.ID != old || !k.NotAfter.After(clk.Now()) {
		t.Fatalf("the previous key %s, want it retiring after now", describe([]Key{k}))
	}
	rec := storedRecord(t, rdb)
	if got := recordKIDs(rec); !slices.Equal(got, []string{signing.ID, old}) {
		t.Fatalf("record holds %v, want [%s %s]", got, signing.ID, old)
	}
	if !rec.Keys[0].NotAfter.IsZero() {
		t.Fatalf("the new key leaves at %v; it must be open-ended", rec.Keys[0].NotAfter)
	}
}

func TestRetireRetiringKey(t *testing.T) {
	rdb := testredis.Start(t).Client(t)
	box := mustBox(t, "signing keys", secret(1))
	clk := &testClock{t: fixedNow}
	m := mustManager(t, rdb, box, rotating(jose.ES256, clk))
	old := m.Signing().ID
	clk.Set(fixedNow.Add(22 * time.Hour))
	mustRefresh(t, m)
	clk.Set(fixedNow.Add(24 * time.Hour))
	current := m.Signing().ID
	if current == old || states(m)[old] != StateRetiring {
		t.Fatalf("test is void: states %v", states(m))
	}

	// A key that no longer signs is only removed; the signing key stays.
	if signing := mustRetire(t, m, old); signing.ID != current {
		t.Fatalf("after retiring a retiring key %s signs, want still %s", signing.ID, current)
	}
	if got := kids(m.Verification()); !slices.Equal(got, []string{current}) {
		t.Fatalf("published %v, want [%s]", got, current)
	}
	if got := recordKIDs(storedRecord(t, rdb)); !slices.Equal(got, []string{current}) {
		t.Fatalf("record holds %v, want [%s]", got, current)
	}
}

func TestRetireOnlyKey(t *testing.T) {
	rdb := testredis.Start(t).Client(t)
	box := mustBox(t, "signing keys", secret(1))
	m := mustManager(t, rdb, box, testOptions(jose.RS256)) // never rotates
	only := m.Signing().ID
	signing := mustRetire(t, m, only)
	if signing.ID == only || signing.Algorithm != jose.RS256 || !signing.NotBefore.Equal(fixedNow) {
		t.Fatalf("after retiring the only key: %s", describe([]Key{signing}))
	}
	if got := recordKIDs(storedRecord(t, rdb)); !slices.Equal(got, []string{signing.ID}) {
		t.Fatalf("record holds %v, want [%s]", got, signing.ID)
	}
	// A new instance reads the new key and starts.
	if got := mustManager(t, rdb, box, testOptions(jose.RS256)).Signing().ID; got != signing.ID {
		t.Fatalf("a new instance signs with %s, want %s", got, signing.ID)
	}
}

func TestRetireUnknownKey(t *testing.T) {
	rdb := testredis.Start(t).Client(t)
	m := mustManager(t, rdb, mustBox(t, "signing keys", secret(1)), testOptions(jose.ES256))
	before := rdb.Get(context.Background(), DefaultRedisKey).Val()
	for _, kid := range []string{"never-issued", ""} {
		if _, err := m.Retire(context.Background(), kid); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("Retire(%q): %v, want ErrUnknownKey", kid, err)
		}
	}
	if rdb.Get(context.Background(), DefaultRedisKey).Val() != before || m.counts.get("revoked") != 0 {
		t.Fatal("retiring an unknown key changed the record or counted")
	}
	// Retiring twice: the second finds nothing.
	kid := m.Signing().ID
	mustRetire(t, m, kid)
	if _, err := m.Retire(context.Background(), kid); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("retiring %s again: %v, want ErrUnknownKey", kid, err)
	}
}

// TestRetireRacingRotationNeverBringsTheKeyBack has one instance retire the
// signing key while another, which still holds it, writes a scheduled
// rotation: in either order of their writes the loser plans again on the
// winner's record, and the key stays gone.
func TestRetireRacingRotationNeverBringsTheKeyBack(t *testing.T) {
	for _, first := range []string{"rotation plans first", "retire plans first"} {
		t.Run(first, func(t *testing.T) {
			rdb := testredis.Start(t).Client(t)
			box := mustBox(t, "signing keys", secret(1))
			clk := &testClock{t: fixedNow}
			retirer := mustManager(t, rdb, box, rotating(jose.ES256, clk))
			rotator := mustManager(t, rdb, box, rotating(jose.ES256, clk))
			leaked := retirer.Signing().ID
			clk.Set(fixedNow.Add(22 * time.Hour)) // the rotation is due

			// The instance that plans first does the other's whole write
			// between planning and writing its own, so its
			// compare-and-set fails.
			var once sync.Once
			var otherErr error
			if first == "rotation plans first" {
				rotator.beforeWrite = func() {
					once.Do(func() { _, otherErr = retirer.Retire(context.Background(), leaked) })
				}
				mustRefresh(t, rotator)
			} else {
				retirer.beforeWrite = func() { once.Do(func() { otherErr = rotator.Refresh(context.Background()) }) }
				mustRetire(t, retirer, leaked)
			}
			if otherErr != nil {
				t.Fatal(otherErr)
			}

			rec := storedRecord(t, rdb)
			if slices.Contains(recordKIDs(rec), leaked) {
				t.Fatalf("record after the race holds the retired key: %v", recordKIDs(rec))
			}
			if retirer.counts.get("revoked") != 1 {
				t.Fatalf("revoked counted %v times, want 1", retirer.counts.get("revoked"))
			}
			// The loser planned again on the winner's record: a rotation
			// that lost finds none due after the new key; a retirement
			// that lost keeps the key the rotation scheduled.
			if scheduled := rotator.counts.get("scheduled"); first == "rotation plans first" && (scheduled != 0 || len(rec.Keys) != 1) ||
				first == "retire plans first" && (scheduled != 1 || len(rec.Keys) != 2) {
				t.Fatalf("record %v after the race, rotator scheduled %v", recordKIDs(rec), scheduled)
			}
			// Both instances keep following the record, through the
			// switch to the scheduled key and its successor's rotation,
			// and neither writes the key back.
			for _, at := range []time.Duration{22 * time.Hour, 24 * time.Hour, 46 * time.Hour, 48 * time.Hour, 50 * time.Hour} {
				clk.Set(fixedNow.Add(at))
				for _, m := range []*Manager{rotator, retirer} {
					mustRefresh(t, m)
					if m.Published(leaked) || m.Signing().ID == leaked {
						t.Fatalf("at +%s an instance publishes the retired key again: %s", at, describe(m.Verification()))
					}
				}
				if slices.Contains(recordKIDs(storedRecord(t, rdb)), leaked) {
					t.Fatalf("at +%s the record holds the retired key again", at)
				}
			}
		})
	}
}
