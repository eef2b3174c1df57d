package waitingroom_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/anteroom/anteroom/waitingroom"
)

// Rate scheduler, with the injected clock: every admission below is decided
// by Step at a clock the test sets, never by wall time.

func testSchedulerRate(e *env) {
	s := e.store(rateRoom("launch", 60))
	e.fill(s, "launch", 10)
	sc := waitingroom.NewScheduler(s, "a", time.Second)
	e.step(sc)
	base := e.base(s, "launch", 60)
	for n := int64(1); n <= 3; n++ {
		e.clock.Add(time.Second)
		e.step(sc)
		e.wantServing(s, "launch", base+n, fmt.Sprintf("tick at t0+%ds", n))
	}
	// A tick at the same instant admits nobody more.
	e.step(sc)
	e.wantServing(s, "launch", base+3, "second tick at the same instant")
	// Never past tail.
	for range 20 {
		e.clock.Add(time.Second)
		e.step(sc)
	}
	if c := e.status(s, "launch"); c.Serving != 10 || c.Tail != 10 {
		e.t.Fatalf("after 23 s at 1/s with 10 waiting: %+v, want serving = tail = 10", c)
	}
}

func testSchedulerFractionalCarry(e *env) {
	s := e.store(rateRoom("launch", 30))
	e.fill(s, "launch", 20)
	sc := waitingroom.NewScheduler(s, "a", time.Second)
	e.step(sc)
	base := e.base(s, "launch", 30)
	for k := int64(1); k <= 12; k++ {
		e.clock.Add(time.Second)
		e.step(sc)
		e.wantServing(s, "launch", base+k/2, fmt.Sprintf("30/min, tick %d s", k))
	}
}

// A rate that is not a whole number per tick still admits its rate per
// minute over whole minutes (fractions carry, never lost to rounding).
func testSchedulerFractionalCarryMinute(e *env) {
	s := e.store(rateRoom("launch", 7))
	e.fill(s, "launch", 100)
	sc := waitingroom.NewScheduler(s, "a", time.Second)
	e.step(sc)
	base := e.base(s, "launch", 7)
	for minute := int64(1); minute <= 3; minute++ {
		for range 60 {
			e.clock.Add(time.Second)
			e.step(sc)
		}
		e.wantServing(s, "launch", base+7*minute, fmt.Sprintf("7/min after %d min of 1 s ticks", minute))
	}
}

func testSchedulerElapsedCapped(e *env) {
	s := e.store(rateRoom("launch", 60))
	e.fill(s, "launch", 100)
	sc := waitingroom.NewScheduler(s, "a", time.Second)
	e.step(sc)
	base := e.base(s, "launch", 60)
	e.clock.Add(time.Minute)
	e.step(sc)
	e.wantServing(s, "launch", base+5, "one tick 60 s after the last (elapsed capped at 5 s)")
	e.clock.Add(time.Second)
	e.step(sc)
	e.wantServing(s, "launch", base+6, "next tick 1 s later")

	// The cap also holds when a join, not a tick, is the first to see the gap.
	e.clock.Add(time.Minute)
	e.join(s, "launch", "late", nil)
	e.step(sc)
	e.wantServing(s, "launch", base+11, "tick after a join that came 60 s after the last tick")
}

func testSchedulerIdleNoBank(e *env) {
	for _, rate := range []float64{30, 60, 600} {
		e.t.Run(fmt.Sprintf("rate%v", rate), func(t *testing.T) {
			sub := *e
			sub.t, sub.clock = t, newClock()
			room := fmt.Sprintf("idle-%v", rate)
			s := sub.store(rateRoom(room, rate))
			sc := waitingroom.NewScheduler(s, "a", time.Second)
			for range 200 { // ten minutes of ticks every 3 s, nobody waiting
				sub.step(sc)
				sub.clock.Add(3 * time.Second)
			}
			sub.step(sc)
			// The crowd comes between two ticks: the joins, not a tick, are
			// the first to see the seconds since the last one.
			sub.clock.Add(1500 * time.Millisecond)
			limit := max(1, int64(rate/60))
			admitted := int64(0)
			for i := range 100 {
				if j := sub.join(s, room, fmt.Sprintf("crowd-%d", i), nil); admittedByCounter(j) {
					admitted++
				}
			}
			sub.step(sc) // same instant: no more budget
			c := sub.status(s, room)
			if c.Serving > limit || admitted > limit {
				t.Fatalf("after 10 idle minutes at %v/min, 100 joins got %d admitted by the safety net and serving %d; want at most %d", rate, admitted, c.Serving, limit)
			}
			if c.Serving < 1 {
				t.Fatalf("after 10 idle minutes at %v/min nobody of 100 joins was admitted; the safety net should admit the first", rate)
			}
			if c.Tail != 100 || c.Waiting() < 100-limit {
				t.Fatalf("status %+v, want 100 joined and the rest waiting", c)
			}
		})
	}
}

func testSchedulerOnAdvance(e *env) {
	s := e.store(rateRoom("launch", 120), manualRoom("manual"))
	e.fill(s, "launch", 10)
	e.fill(s, "manual", 10)
	sc := waitingroom.NewScheduler(s, "a", time.Second)
	var calls []string
	sc.OnAdvance = func(room string, n int64) { calls = append(calls, fmt.Sprintf("%s+%d", room, n)) }
	e.step(sc)
	if len(calls) != 0 {
		e.t.Fatalf("OnAdvance called for a tick that admitted nobody: %v", calls)
	}
	e.clock.Add(time.Second)
	e.step(sc)
	if len(calls) != 1 || calls[0] != "launch+2" {
		e.t.Fatalf("OnAdvance calls = %v, want [launch+2]", calls)
	}
}

// Safety net.

func testSafetyNet(e *env) {
	s := e.store(rateRoom("launch", 60), rateRoom("fresh", 60), rateRoom("fresh-fast", 300))
	// A room that never ran starts as an idle room does: the first visitor
	// (at 300/min, the first five) goes straight through, no tick needed.
	for room, limit := range map[string]int{"fresh": 1, "fresh-fast": 5} {
		for i := range limit + 2 {
			j := e.join(s, room, fmt.Sprintf("%s-%d", room, i), nil)
			if admittedByCounter(j) != (i < limit) {
				e.t.Fatalf("join %d into never-run room %s: %+v, want admitted at once only for the first %d", i, room, j, limit)
			}
		}
	}
	sc := waitingroom.NewScheduler(s, "a", time.Second)
	e.step(sc)
	e.clock.Add(time.Second)
	e.step(sc) // a second's budget, nobody waiting
	j := e.join(s, "launch", "first", nil)
	if !admittedByCounter(j) || j.Ticket.Position != 1 {
		e.t.Fatalf("join into an idle room with budget = %+v, want admitted at once at position 1", j)
	}
	if _, err := s.Admit(e.ctx, j.Ticket, "first"); err != nil {
		e.t.Fatalf("Admit of the safety-net ticket: %v", err)
	}
	j2 := e.join(s, "launch", "second", nil)
	if admittedByCounter(j2) {
		e.t.Fatalf("second join in the same instant = %+v, want waiting (budget spent)", j2)
	}
	if _, err := s.Admit(e.ctx, j2.Ticket, "second"); !errors.Is(err, waitingroom.ErrNotAdmitted) {
		e.t.Fatalf("Admit of the second: %v, want ErrNotAdmitted", err)
	}
	e.clock.Add(time.Second)
	e.step(sc)
	e.wantServing(s, "launch", 2, "the tick after")
	// Idle again for a while: the next visitor goes straight through.
	for range 5 {
		e.clock.Add(time.Second)
		e.step(sc)
	}
	if j := e.join(s, "launch", "third", nil); !admittedByCounter(j) {
		e.t.Fatalf("join into the idle room again = %+v, want admitted at once", j)
	}
}

func testManualNeverAuto(e *env) {
	s := e.store(manualRoom("launch"))
	sc := waitingroom.NewScheduler(s, "a", time.Second)
	for range 120 {
		e.step(sc)
		e.clock.Add(5 * time.Second)
	}
	for i := range 3 {
		if j := e.join(s, "launch", fmt.Sprintf("r%d", i), nil); admittedByCounter(j) {
			e.t.Fatalf("join into a manual room admitted at once: %+v", j)
		}
		e.clock.Add(time.Minute)
		e.step(sc)
	}
	e.wantServing(s, "launch", 0, "manual room after ticks")
}

// Room states.

func testStatePaused(e *env) {
	s := e.store(rateRoom("launch", 60))
	e.fill(s, "launch", 10)
	sc := waitingroom.NewScheduler(s, "a", time.Second)
	e.step(sc)
	base := e.base(s, "launch", 60)
	if err := s.SetState(e.ctx, "launch", waitingroom.StatePaused); err != nil {
		e.t.Fatal(err)
	}
	for range 60 {
		e.clock.Add(time.Second)
		e.step(sc)
	}
	e.wantServing(s, "launch", base, "a minute of ticks while paused")
	if j := e.join(s, "launch", "while-paused", nil); j.Ticket.Position != 11 || admittedByCounter(j) {
		e.t.Fatalf("join while paused = %+v, want waiting at 11", j)
	}
	if c := e.status(s, "launch"); c.State != waitingroom.StatePaused {
		e.t.Fatalf("state = %q, want paused", c.State)
	}
	if err := s.SetState(e.ctx, "launch", waitingroom.StateOpen); err != nil {
		e.t.Fatal(err)
	}
	e.step(sc)
	e.wantServing(s, "launch", base, "tick at the instant of reopening (nothing banked while paused)")
	e.clock.Add(time.Second)
	e.step(sc)
	e.wantServing(s, "launch", base+1, "1 s after reopening")
}

func testStateClosed(e *env) {
	s := e.store(manualRoom("launch"))
	a := e.join(s, "launch", "req-a", nil).Ticket
	if err := s.SetState(e.ctx, "launch", waitingroom.StateClosed); err != nil {
		e.t.Fatal(err)
	}
	if _, err := s.Join(e.ctx, "launch", "req-new", nil); !errors.Is(err, waitingroom.ErrClosed) {
		e.t.Fatalf("Join without ticket into a closed room: %v, want ErrClosed", err)
	}
	if c := e.status(s, "launch"); c.Tail != 1 || c.State != waitingroom.StateClosed {
		e.t.Fatalf("status = %+v, want tail 1 and closed", c)
	}
	for _, req := range []string{"req-a", "req-a-other-tab"} {
		if j, err := s.Join(e.ctx, "launch", req, &a); err != nil || j.New || !sameTicket(j.Ticket, a) {
			e.t.Fatalf("Join(%s) of a ticket holder into a closed room = %+v, %v; want the same ticket", req, j, err)
		}
	}
	// Those already queued keep their place and can still be let through.
	e.advance(s, "launch", 1)
	if _, err := s.Admit(e.ctx, a, "req-a"); err != nil {
		e.t.Fatalf("Admit in a closed room: %v", err)
	}
	// A request that failed on a closed room is not bound: after reopening it joins.
	if err := s.SetState(e.ctx, "launch", waitingroom.StateOpen); err != nil {
		e.t.Fatal(err)
	}
	if j := e.join(s, "launch", "req-new", nil); j.Ticket.Position != 2 {
		e.t.Fatalf("join after reopening = %+v, want position 2", j)
	}
}

func testStatePassthrough(e *env) {
	s := e.store(rateRoom("launch", 60))
	e.fill(s, "launch", 5)
	sc := waitingroom.NewScheduler(s, "a", time.Second)
	e.step(sc)
	if base := e.base(s, "launch", 60); base == 5 {
		e.t.Fatal("test setup: nobody waits before passthrough")
	}
	if err := s.SetState(e.ctx, "launch", waitingroom.StatePassthrough); err != nil {
		e.t.Fatal(err)
	}
	e.step(sc) // same instant: no rate budget, yet everyone is let through
	if c := e.status(s, "launch"); c.Serving != c.Tail || c.Tail != 5 {
		e.t.Fatalf("tick in passthrough: %+v, want serving = tail = 5", c)
	}
	for i := range 10 {
		req := fmt.Sprintf("pt-%d", i)
		j := e.join(s, "launch", req, nil)
		if !admittedByCounter(j) {
			e.t.Fatalf("join %d in passthrough = %+v, want admitted at once", i, j)
		}
		if _, err := s.Admit(e.ctx, j.Ticket, req); err != nil {
			e.t.Fatalf("Admit in passthrough: %v", err)
		}
	}
	if c := e.status(s, "launch"); c.Serving != 15 || c.Tail != 15 {
		e.t.Fatalf("status %+v, want serving = tail = 15", c)
	}
}

// Leases.

func testLeaseOneLeader(e *env) {
	s := e.store(rateRoom("one", 60), manualRoom("two"))
	a := waitingroom.NewScheduler(s, "a", time.Second)
	b := waitingroom.NewScheduler(s, "b", time.Second)
	if a.Leading("one") || b.Leading("one") {
		e.t.Fatal("a scheduler leads before any step")
	}
	e.step(a)
	e.step(b)
	for _, room := range []string{"one", "two"} {
		if a.Leading(room) == b.Leading(room) {
			e.t.Fatalf("room %s: a leading %v, b leading %v; want exactly one", room, a.Leading(room), b.Leading(room))
		}
	}
	leader := a.Leading("one")
	for range 5 {
		e.clock.Add(time.Second)
		e.step(b)
		e.step(a)
		if a.Leading("one") == b.Leading("one") || a.Leading("one") != leader {
			e.t.Fatalf("leadership changed or split while the leader kept stepping: a %v, b %v", a.Leading("one"), b.Leading("one"))
		}
	}
	if a.Leading("nope") {
		e.t.Fatal("Leading of an unknown room is true")
	}
}

func testLeaseNoDoubleAdvance(e *env) {
	s := e.store(rateRoom("launch", 60))
	e.fill(s, "launch", 100)
	a := waitingroom.NewScheduler(s, "a", time.Second)
	b := waitingroom.NewScheduler(s, "b", time.Second)
	e.step(a)
	e.step(b)
	base := e.base(s, "launch", 60)
	for i := 1; i <= 60; i++ { // 30 s: each instance ticks every second, half a second apart
		e.clock.Add(500 * time.Millisecond)
		if i%2 == 0 {
			e.step(a)
		} else {
			e.step(b)
		}
	}
	e.step(a)
	e.step(b)
	e.wantServing(s, "launch", base+30, "two schedulers over 30 s at 60/min")
}

func testLeaseTakeover(e *env) {
	s := e.store(rateRoom("launch", 60))
	e.fill(s, "launch", 100)
	const interval = 50 * time.Millisecond // lease: 150 ms of wall time
	a := waitingroom.NewScheduler(s, "a", interval)
	b := waitingroom.NewScheduler(s, "b", interval)
	e.step(a)
	e.step(b)
	if !a.Leading("launch") || b.Leading("launch") {
		e.t.Fatalf("a leading %v, b leading %v right after a's first step; want a", a.Leading("launch"), b.Leading("launch"))
	}
	base := e.base(s, "launch", 60)
	for range 10 {
		e.clock.Add(time.Second)
		e.step(a)
		e.step(b)
	}
	e.wantServing(s, "launch", base+10, "10 s at 60/min")

	// a stops. The injected clock stands still while b waits for the lease,
	// so the takeover itself admits nobody.
	e.expireLeases(3*interval, func() bool {
		e.step(b)
		return b.Leading("launch")
	})
	e.wantServing(s, "launch", base+10, "takeover at the same instant")
	e.clock.Add(time.Second)
	e.step(b)
	e.wantServing(s, "launch", base+11, "b's tick 1 s later")
	// a comes back from a pause: fenced, it cannot advance.
	e.clock.Add(time.Second)
	e.step(a)
	if a.Leading("launch") {
		e.t.Fatal("a leads again while b holds a live lease")
	}
	e.wantServing(s, "launch", base+11, "a's tick without the lease")
}

func testLeaseRelease(e *env) {
	s := e.store(rateRoom("launch", 60))
	a := waitingroom.NewScheduler(s, "a", time.Hour) // lease: three hours
	b := waitingroom.NewScheduler(s, "b", time.Hour)
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Run(ctx)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for !a.Leading("launch") {
		if time.Now().After(deadline) {
			e.t.Fatal("Run did not take the lease within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.step(b)
	if b.Leading("launch") {
		e.t.Fatal("b leads while a runs")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		e.t.Fatal("Run did not return within 5 s of cancel")
	}
	if a.Leading("launch") {
		e.t.Fatal("a still reports leading after Run returned")
	}
	e.step(b)
	if !b.Leading("launch") {
		e.t.Fatal("b does not lead at its first step after a's Run was cancelled: the lease was not released")
	}
}
