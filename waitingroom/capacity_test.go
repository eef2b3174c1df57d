package waitingroom_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/anteroom/anteroom/waitingroom"
)

func capacityRoom(id string, rate float64, maxActive int) waitingroom.Room {
	r := rateRoom(id, rate)
	r.Policy = waitingroom.Policy{RatePerMinute: rate, MaxActive: maxActive}
	return r
}

// testCapacityOnly: a room with only max_active keeps at most that many
// visitors admitted or about to continue; a slot frees when a session ends
// or when a reached visitor does not continue within the claim window.
func testCapacityOnly(e *env) {
	s := e.store(capacityRoom("cap", 0, 2))
	sc := waitingroom.NewScheduler(s, "a", time.Second)
	var js []waitingroom.Joined
	for i := range 5 {
		js = append(js, e.join(s, "cap", fmt.Sprintf("r%d", i), nil))
	}
	for i, j := range js {
		if admittedByCounter(j) != (i < 2) {
			e.t.Fatalf("join %d: %+v, want only the first two let in by the safety net", i, j)
		}
	}
	e.step(sc)
	e.wantServing(s, "cap", 2, "capacity full: a tick admits nobody")

	// The first continues (reached → active): still full.
	t0, err := s.Admit(e.ctx, js[0].Ticket, "r0")
	if err != nil {
		e.t.Fatal(err)
	}
	e.clock.Add(time.Second)
	e.step(sc)
	e.wantServing(s, "cap", 2, "one active, one reached")

	// Ending the first session frees its slot at once.
	if ok, err := s.EndSession(e.ctx, "cap", t0.ID); err != nil || !ok {
		e.t.Fatalf("EndSession: %v %v", ok, err)
	}
	e.clock.Add(time.Second)
	e.step(sc)
	e.wantServing(s, "cap", 3, "a session ended")

	// Visitors 2 and 3 never continue: their slots come back after the
	// claim window, and the last two are let in.
	e.clock.Add(waitingroom.ClaimWindow + time.Second)
	e.step(sc)
	e.wantServing(s, "cap", 5, "reached visitors who never continued")
	if st := e.status(s, "cap"); st.Active != 0 {
		e.t.Fatalf("active = %d, want 0", st.Active)
	}
	// A late visitor keeps their place but not their slot: the room is
	// full (4 and 5 hold the slots), so they get in at the next tick with
	// a free slot, ahead of anyone new.
	if _, err := s.Admit(e.ctx, js[1].Ticket, "r1"); !errors.Is(err, waitingroom.ErrSkipped) {
		e.t.Fatalf("late Admit into a full room: %v, want ErrSkipped", err)
	}
	late := e.join(s, "cap", "late", nil)
	e.clock.Add(waitingroom.ClaimWindow + time.Second) // 4 and 5 never continue either
	e.step(sc)
	if ok, _ := s.Released(e.ctx, "cap", js[1].Ticket.Position); !ok {
		e.t.Fatal("the late visitor was not let in when slots freed")
	}
	if _, err := s.Admit(e.ctx, js[1].Ticket, "r1"); err != nil {
		e.t.Fatalf("late Admit after release: %v", err)
	}
	if c := e.status(s, "cap"); c.Active > 2 {
		e.t.Fatalf("active %d, max 2", c.Active)
	}
	_ = late
}

// testRateAndCapacity: with both limits, the tighter one decides.
func testRateAndCapacity(e *env) {
	s := e.store(capacityRoom("both", 600, 3))
	sc := waitingroom.NewScheduler(s, "a", time.Second)
	e.step(sc)
	for i := range 20 {
		e.join(s, "both", fmt.Sprintf("r%d", i), nil)
	}
	base := e.serving(s, "both")
	e.clock.Add(time.Second) // 10 visitors' worth of rate, 3 slots
	e.step(sc)
	if got := e.serving(s, "both"); got > 3 {
		e.t.Fatalf("serving %d (from %d): capacity 3 exceeded", got, base)
	}
	e.clock.Add(waitingroom.ClaimWindow + time.Second)
	e.step(sc) // the three reached never continued; at most 3 more
	if got := e.serving(s, "both"); got > 6 || got < 4 {
		e.t.Fatalf("serving %d after the claim window, want 4..6", got)
	}
	// Capacity off again: the rate alone decides (5 s cap on catch-up).
	if err := s.SetPolicy(e.ctx, "both", waitingroom.Policy{RatePerMinute: 600}); err != nil {
		e.t.Fatal(err)
	}
	before := e.serving(s, "both")
	e.clock.Add(time.Second)
	e.step(sc)
	if got := e.serving(s, "both"); got-before != 10 {
		e.t.Fatalf("without capacity a second at 600/min admitted %d, want 10", got-before)
	}
}
