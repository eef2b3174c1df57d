package waitingroom_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/anteroom/anteroom/waitingroom"
)

// testAbandonment: a visitor whose page falls silent past the grace period
// is passed over when the counter advances, the next live one is admitted
// in their stead, and a skipped visitor who comes back gets in at the next
// tick without losing their place.
func testAbandonment(e *env) {
	r := rateRoom("launch", 60)
	r.AbandonAfter = 30 * time.Second
	s := e.store(r)
	sc := waitingroom.NewScheduler(s, "a", time.Second)
	hb := waitingroom.NewHeartbeats(s)
	var skips int64
	sc.OnSkip = func(_ string, n int64) { skips += n }
	var v []waitingroom.Joined
	for i := range 5 {
		v = append(v, e.join(s, "launch", fmt.Sprintf("r%d", i), nil))
	}
	e.step(sc) // position 1 (idle budget)
	beat := func(positions ...int64) {
		for _, p := range positions {
			hb.Beat("launch", p)
		}
		if err := hb.Flush(e.ctx); err != nil {
			e.t.Fatal(err)
		}
	}
	// 3 and 5 keep their pages open; 2 and 4 closed their tabs.
	e.clock.Add(31 * time.Second)
	beat(3, 5)
	e.clock.Add(31 * time.Second)
	beat(3, 5)
	e.step(sc)
	e.wantServing(s, "launch", 5, "silent visitors passed over, live ones admitted")
	if skips != 2 {
		e.t.Fatalf("skipped %d, want 2", skips)
	}
	for _, i := range []int{2, 4} {
		if _, err := s.Admit(e.ctx, v[i].Ticket, fmt.Sprintf("r%d", i)); err != nil {
			e.t.Fatalf("live visitor %d: %v", i+1, err)
		}
	}
	// Visitor 2 comes back: not in at once, but at the next tick.
	if _, err := s.Admit(e.ctx, v[1].Ticket, "r1"); !errors.Is(err, waitingroom.ErrSkipped) {
		e.t.Fatalf("returning skipped visitor: %v, want ErrSkipped", err)
	}
	if ok, err := s.Released(e.ctx, "launch", 2); err != nil || ok {
		e.t.Fatalf("released before the tick: %v %v", ok, err)
	}
	e.clock.Add(time.Second)
	e.step(sc)
	if ok, err := s.Released(e.ctx, "launch", 2); err != nil || !ok {
		e.t.Fatalf("released after the tick: %v %v", ok, err)
	}
	if _, err := s.Admit(e.ctx, v[1].Ticket, "r1"); err != nil {
		e.t.Fatalf("returned visitor at the next tick: %v", err)
	}
	// Visitor 4 never came back and stays out.
	if _, err := s.Admit(e.ctx, v[3].Ticket, "r3"); !errors.Is(err, waitingroom.ErrSkipped) {
		e.t.Fatalf("visitor who never came back: %v", err)
	}
}

// testAbandonmentReturnTakesBudget: a heartbeat from a skipped visitor
// queues them for the next tick too, and they use the tick's budget before
// anyone new is reached.
func testAbandonmentReturnTakesBudget(e *env) {
	r := rateRoom("launch", 60)
	r.AbandonAfter = 30 * time.Second
	s := e.store(r)
	sc := waitingroom.NewScheduler(s, "a", time.Second)
	hb := waitingroom.NewHeartbeats(s)
	for i := range 4 {
		e.join(s, "launch", fmt.Sprintf("r%d", i), nil)
	}
	e.step(sc) // 1 in
	e.clock.Add(61 * time.Second)
	hb.Beat("launch", 4)
	_ = hb.Flush(e.ctx)
	e.clock.Add(time.Second)
	e.step(sc) // 2 and 3 silent: skipped; 4 admitted
	e.wantServing(s, "launch", 4, "after skipping")
	hb.Beat("launch", 2) // 2 is back
	_ = hb.Flush(e.ctx)
	late1 := e.join(s, "launch", "late1", nil)
	late2 := e.join(s, "launch", "late2", nil)
	if admittedByCounter(late1) {
		e.t.Fatal("the safety net let a newcomer pass a returning visitor")
	}
	e.clock.Add(time.Second) // two admissions' budget: the idle second banked, and this one
	e.step(sc)
	if ok, _ := s.Released(e.ctx, "launch", 2); !ok {
		e.t.Fatal("the returning visitor did not get the tick's first admission")
	}
	if got := e.serving(s, "launch"); got != late1.Ticket.Position || got >= late2.Ticket.Position {
		e.t.Fatalf("serving %d: want the returning visitor and then only the first newcomer (%d)", got, late1.Ticket.Position)
	}
}

// testHeartbeatsInBatches: a flush of more beats than one script call takes
// records every one of them, the last partial batch included.
func testHeartbeatsInBatches(e *env) {
	r := rateRoom("launch", 60)
	r.AbandonAfter = 30 * time.Second
	s := e.store(r)
	hb := waitingroom.NewHeartbeats(s)
	const n = 2500 // three batches
	for p := int64(1); p <= n; p++ {
		hb.Beat("launch", p)
	}
	if err := hb.Flush(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	live := fmt.Sprintf("%s:{r:launch}:live:%d", e.prefix, e.clock.Now().UnixMilli()/r.AbandonAfter.Milliseconds())
	if got, err := e.rdb.BitCount(e.ctx, live, nil).Result(); err != nil || got != n {
		e.t.Fatalf("live positions after the flush: %d (%v), want %d", got, err, n)
	}
}
