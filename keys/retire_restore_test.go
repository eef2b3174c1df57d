package keys

import (
	"slices"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/anteroom/anteroom/internal/testredis"
)

// A retired key must not come back because Redis lost the retirement:
// instance b had not followed yet, so its refresh puts back the record it
// holds, the leaked key included. The instance that retired the key
// remembers it and retires it again at its next refresh; b follows at its
// own.
func TestRetiredKeyRestoredFromMemoryIsRetiredAgain(t *testing.T) {
	srv := testredis.Start(t)
	rdb := srv.Client(t)
	box := mustBox(t, "signing keys", secret(1))
	clk := &testClock{t: fixedNow}
	a := mustManager(t, rdb, box, rotating(jose.ES256, clk))
	b := mustManager(t, rdb, box, rotating(jose.ES256, clk))
	leaked := a.Signing().ID

	clk.Advance(time.Minute)
	mustRetire(t, a, leaked)
	if err := srv.FlushAll(); err != nil { // Redis restarts without persistence, or is flushed
		t.Fatal(err)
	}
	clk.Advance(30 * time.Second)
	mustRefresh(t, b) // b has not refreshed since the retirement: it restores the record with the key
	if got := recordKIDs(storedRecord(t, rdb)); !slices.Contains(got, leaked) {
		t.Fatalf("test is void: the record b put back lacks the retired key: %v", got)
	}
	mustRefresh(t, a)
	mustRefresh(t, b)

	if got := recordKIDs(storedRecord(t, rdb)); slices.Contains(got, leaked) {
		t.Errorf("the record holds the retired key %s again: %v", leaked, got)
	}
	for name, m := range map[string]*Manager{"retiring instance": a, "other instance": b} {
		if m.Published(leaked) || m.Signing().ID == leaked {
			t.Errorf("%s publishes the retired key again: %s (signing %s)", name, describe(m.Verification()), m.Signing().ID[:6])
		}
	}
	if a.Signing().ID != b.Signing().ID {
		t.Errorf("the instances sign with %s and %s", a.Signing().ID[:6], b.Signing().ID[:6])
	}
}
