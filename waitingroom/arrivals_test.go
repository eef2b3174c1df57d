package waitingroom_test

import (
	"time"

	"github.com/anteroom/anteroom/challenge"
	"github.com/anteroom/anteroom/waitingroom"
)

// testArrivalsUnderLoad: two instances share one Redis and one (injected)
// clock; under_load's difficulty rises on both when their arrivals
// together pass the threshold, with each alone below it, and falls on both
// when the flood ends.
func testArrivalsUnderLoad(e *env) {
	a, b := e.store(manualRoom("launch")), e.store(manualRoom("launch"))
	ma, mb := waitingroom.NewArrivals(a), waitingroom.NewArrivals(b)
	p := challenge.Policy{Mode: challenge.UnderLoad, MaxNumber: 1000, JoinsPerSecond: 10}
	sync := func() {
		e.t.Helper()
		for _, m := range []*waitingroom.Arrivals{ma, mb} {
			if err := m.Sync(e.ctx); err != nil {
				e.t.Fatal(err)
			}
		}
	}
	difficulty := func() (int64, int64) { return p.Difficulty(ma.Rate("launch")), p.Difficulty(mb.Rate("launch")) }

	for range 6 {
		ma.Arrive("launch")
		mb.Arrive("launch")
	}
	sync() // the second is not over: nothing to read yet
	if da, db := difficulty(); da != 0 || db != 0 {
		e.t.Fatalf("during the first second: difficulty %d, %d", da, db)
	}
	e.clock.Add(time.Second)
	sync()
	if da, db := difficulty(); da != 1200 || db != 1200 {
		e.t.Fatalf("12 arrivals a second over a threshold of 10: difficulty %d, %d, want 1200 on both", da, db)
	}
	// One quiet second does not drop it (a count may still be on its way).
	e.clock.Add(time.Second)
	sync()
	if da, _ := difficulty(); da != 1200 {
		e.t.Fatalf("after one quiet second: %d", da)
	}
	e.clock.Add(time.Second)
	sync()
	if da, db := difficulty(); da != 0 || db != 0 {
		e.t.Fatalf("after the flood: difficulty %d, %d, want none", da, db)
	}
	// Below the threshold together: 9 a second.
	for range 9 {
		mb.Arrive("launch")
	}
	e.clock.Add(time.Second)
	sync()
	if da, db := difficulty(); da != 0 || db != 0 {
		e.t.Fatalf("9 a second: difficulty %d, %d", da, db)
	}

	// The operator's live mode reaches the other instance at its Sync,
	// and gives way once the configuration file changes the mode.
	if err := a.SetChallengeMode(e.ctx, "launch", "always", "under_load"); err != nil {
		e.t.Fatal(err)
	}
	if _, ok := mb.Mode("launch", "under_load"); ok {
		e.t.Fatal("live mode seen before a sync")
	}
	sync()
	if m, ok := mb.Mode("launch", "under_load"); !ok || m != "always" {
		e.t.Fatalf("live mode on the other instance: %q %v", m, ok)
	}
	if _, ok := mb.Mode("launch", "off"); ok {
		e.t.Fatal("a live mode applied over a changed configuration")
	}
	if err := a.SetChallengeMode(e.ctx, "nope", "always", "off"); err == nil {
		e.t.Fatal("unknown room accepted")
	}
}
