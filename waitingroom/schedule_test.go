package waitingroom_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/anteroom/anteroom/waitingroom"
)

// testPreQueue: visitors who arrive before opening get pre-queue numbers;
// at opening they are drawn into a random order among themselves, stable
// for each visitor; later arrivals queue behind them in arrival order, and
// the scheduler admits in drawn order.
func testPreQueue(e *env) {
	r := rateRoom("launch", 60)
	r.OpensAt = e.clock.Now().Add(time.Hour)
	s := e.store(r)
	sc := waitingroom.NewScheduler(s, "a", time.Second)
	const early = 50
	var tickets []waitingroom.Ticket
	for i := range early {
		j := e.join(s, "launch", fmt.Sprintf("early-%d", i), nil)
		if j.Ticket.Position != 0 || j.Ticket.PreQueue != int64(i+1) {
			e.t.Fatalf("early join %d: %+v, want pre-queue number %d and no position", i, j.Ticket, i+1)
		}
		tickets = append(tickets, j.Ticket)
	}
	// Before opening nobody is admitted, not even by the safety net.
	e.step(sc)
	e.clock.Add(30 * time.Minute)
	e.step(sc)
	if _, err := s.Admit(e.ctx, tickets[0], "early-0"); !errors.Is(err, waitingroom.ErrNotAdmitted) {
		e.t.Fatalf("Admit before opening: %v", err)
	}
	e.clock.Add(30 * time.Minute)
	e.step(sc) // opens the room
	c := e.status(s, "launch")
	if !c.Opened || c.PreQueue != early || c.Tail != early {
		e.t.Fatalf("after opening: %+v", c)
	}
	seen := map[int64]bool{}
	inOrder := true
	for i, t := range tickets {
		p := c.Resolve(t).Position
		if p < 1 || p > early || seen[p] {
			e.t.Fatalf("ticket %d drew %d", i, p)
		}
		seen[p] = true
		inOrder = inOrder && p == int64(i+1)
		if again := e.status(s, "launch").Resolve(t).Position; again != p {
			e.t.Fatalf("ticket %d drew %d, then %d", i, p, again)
		}
	}
	if inOrder {
		e.t.Fatal("the draw kept arrival order")
	}
	late := e.join(s, "launch", "late", nil)
	if late.Ticket.Position != early+1 || late.Ticket.PreQueue != 0 {
		e.t.Fatalf("first join after opening: %+v", late.Ticket)
	}
	// The scheduler admits in drawn order: whoever drew the first
	// positions, not whoever came first.
	e.clock.Add(time.Second)
	e.step(sc)
	served := e.serving(s, "launch")
	if served < 1 || served >= early {
		e.t.Fatalf("serving %d after opening", served)
	}
	for i, t := range tickets {
		p := c.Resolve(t).Position
		_, err := s.Admit(e.ctx, t, fmt.Sprintf("early-%d", i))
		if (p <= served) != (err == nil) {
			e.t.Fatalf("ticket %d drew %d with serving %d: Admit = %v", i, p, served, err)
		}
	}
}

// testClosesAt: after closes_at nobody new joins, but the queue keeps
// being admitted.
func testClosesAt(e *env) {
	r := rateRoom("launch", 60)
	r.ClosesAt = e.clock.Now().Add(time.Minute)
	s := e.store(r)
	sc := waitingroom.NewScheduler(s, "a", time.Second)
	e.step(sc)
	e.join(s, "launch", "a", nil)
	b := e.join(s, "launch", "b", nil)
	e.clock.Add(time.Minute)
	if _, err := s.Join(e.ctx, "launch", "c", nil); !errors.Is(err, waitingroom.ErrClosed) {
		e.t.Fatalf("join after closes_at: %v", err)
	}
	if j, err := s.Join(e.ctx, "launch", "b2", &b.Ticket); err != nil || j.Ticket.Position != b.Ticket.Position {
		e.t.Fatalf("ticket holder after closes_at: %+v %v", j, err)
	}
	e.step(sc)
	if _, err := s.Admit(e.ctx, b.Ticket, "b"); err != nil {
		e.t.Fatalf("queued visitor after closes_at: %v", err)
	}
}

// testPreQueueWithAbandonment: at opening the early visitors' pages have
// been beating with no position; they must not be taken for silent and
// skipped wholesale.
func testPreQueueWithAbandonment(e *env) {
	r := rateRoom("launch", 60)
	r.AbandonAfter = 30 * time.Second
	r.OpensAt = e.clock.Now().Add(time.Hour)
	s := e.store(r)
	sc := waitingroom.NewScheduler(s, "a", time.Second)
	var skips int64
	sc.OnSkip = func(_ string, n int64) { skips += n }
	for i := range 50 {
		e.join(s, "launch", fmt.Sprintf("early-%d", i), nil)
	}
	e.clock.Add(time.Hour)
	e.step(sc)
	e.clock.Add(3 * time.Second)
	e.step(sc)
	if got := e.serving(s, "launch"); skips != 0 || got > 5 {
		e.t.Fatalf("after opening: serving %d, %d skipped; want the pre-queue admitted at the rate, none skipped", got, skips)
	}
}

// testPreQueueOpeningRace: once any script opened the room, a join whose
// clock reads a moment earlier gets a position after the pre-queue, not a
// pre-queue number that would collide with it.
func testPreQueueOpeningRace(e *env) {
	r := rateRoom("launch", 60)
	opens := e.clock.Now().Add(time.Hour)
	r.OpensAt = opens
	s := e.store(r)
	for i := range 10 {
		e.join(s, "launch", fmt.Sprintf("early-%d", i), nil)
	}
	e.clock.Add(time.Hour)
	e.step(waitingroom.NewScheduler(s, "a", time.Second)) // opens
	behind := newClock()
	behind.now = opens.Add(-time.Millisecond)
	lagging, err := waitingroom.NewStore(e.rdb, []waitingroom.Room{r}, waitingroom.WithClock(behind.Now), waitingroom.WithPrefix(e.prefix))
	if err != nil {
		e.t.Fatal(err)
	}
	j, err := lagging.Join(e.ctx, "launch", "late", nil)
	if err != nil || j.Ticket.PreQueue != 0 || j.Ticket.Position != 11 {
		e.t.Fatalf("join with a lagging clock after opening: %+v %v, want position 11", j.Ticket, err)
	}
}

// testPreQueueAfterARoomRan: a room that already has a queue and gains an
// opening later keeps its queue ahead; the pre-queue draws positions
// behind it.
func testPreQueueAfterARoomRan(e *env) {
	r := manualRoom("launch")
	s := e.store(r)
	e.fill(s, "launch", 5)
	r.OpensAt = e.clock.Now().Add(time.Hour)
	s2 := e.store(r)
	var early []waitingroom.Ticket
	for i := range 3 {
		early = append(early, e.join(s2, "launch", fmt.Sprintf("early-%d", i), nil).Ticket)
	}
	e.clock.Add(time.Hour)
	e.step(waitingroom.NewScheduler(s2, "a", time.Second))
	c := e.status(s2, "launch")
	seen := map[int64]bool{}
	for _, t := range early {
		p := c.Resolve(t).Position
		if p < 6 || p > 8 || seen[p] {
			e.t.Fatalf("pre-queue drew %d, want 6..8 behind the five already queued", p)
		}
		seen[p] = true
	}
	if c.Tail != 8 {
		e.t.Fatalf("tail %d after opening, want 8", c.Tail)
	}
}
