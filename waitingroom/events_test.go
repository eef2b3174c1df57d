package waitingroom_test

import (
	"errors"
	"time"

	"github.com/anteroom/anteroom/waitingroom"
)

func ptr[T any](v T) *T { return &v }

// testEventOverridesRate: an event created on one instance starts by the
// injected clock, overrides the room's rate (and session length) on both
// instances while it runs, and ends, giving the room its own rate back.
func testEventOverridesRate(e *env) {
	a, b := e.store(rateRoom("season", 60)), e.store(rateRoom("season", 60))
	sa, sb := waitingroom.NewScheduler(a, "a", time.Second), waitingroom.NewScheduler(b, "b", time.Second)
	start := e.clock.Now().Add(time.Minute)
	ev, err := a.CreateEvent(e.ctx, "season", waitingroom.Event{Name: "Winter drop", StartsAt: start, EndsAt: start.Add(time.Minute),
		Admission: waitingroom.EventAdmission{RatePerMinute: ptr(600.0)}, SessionTTL: 5 * time.Minute, Message: "Winter drop today"})
	if err != nil {
		e.t.Fatalf("CreateEvent: %v", err)
	}
	e.fill(a, "season", 2000)
	admitted := func(seconds int) int64 {
		before := e.serving(a, "season")
		for range seconds {
			e.clock.Add(time.Second)
			e.step(sa)
			e.step(sb)
		}
		return e.serving(a, "season") - before
	}
	e.step(sa)
	e.step(sb)
	if n := admitted(59); n < 57 || n > 61 {
		e.t.Fatalf("%d admitted in the minute before the event at 60/min", n)
	}
	if got := e.status(b, "season").Policy.RatePerMinute; got != 60 {
		e.t.Fatalf("rate %v before the event", got)
	}
	if n := admitted(60); n < 590 || n > 610 {
		e.t.Fatalf("%d admitted in the event's minute at 600/min", n)
	}
	if got := e.status(b, "season").Policy.RatePerMinute; got != 600 {
		e.t.Fatalf("rate %v while the event runs, want its 600", got)
	}
	cur, phase, ok := b.CurrentEvent("season", e.clock.Now())
	if !ok || phase != waitingroom.PhaseRunning || cur.ID != ev.ID || cur.Name != "Winter drop" {
		e.t.Fatalf("instance b's current event = %+v %s %v", cur, phase, ok)
	}
	r, _ := b.Room("season")
	if got := b.SessionTTL(r, e.clock.Now()); got != 5*time.Minute {
		e.t.Fatalf("session ttl %v while the event runs", got)
	}
	if err := a.UpdateEvent(e.ctx, "season", cur); !errors.Is(err, waitingroom.ErrEventStarted) {
		e.t.Fatalf("editing a running event = %v, want ErrEventStarted", err)
	}
	if n := admitted(60); n < 57 || n > 62 {
		e.t.Fatalf("%d admitted in the minute after the event at the room's 60/min", n)
	}
	if got := e.status(a, "season").Policy.RatePerMinute; got != 60 {
		e.t.Fatalf("rate %v after the event, want the room's 60", got)
	}
	if got := b.SessionTTL(r, e.clock.Now()); got != r.SessionTTL {
		e.t.Fatalf("session ttl %v after the event", got)
	}
}

// testEventPrequeueHoldsThenCancel: an event's pre-queue admits nobody
// until the start; events never overlap; an event can be edited before it
// starts, and cancelling a running event gives the room its settings back.
func testEventPrequeueHoldsThenCancel(e *env) {
	s := e.store(rateRoom("pq", 60))
	sc := waitingroom.NewScheduler(s, "a", time.Second)
	now := e.clock.Now()
	ev := waitingroom.Event{Name: "Drop", PrequeueFrom: now.Add(time.Minute), StartsAt: now.Add(2 * time.Minute),
		EndsAt: now.Add(time.Hour), Admission: waitingroom.EventAdmission{MaxActive: ptr(50)}}
	ev, err := s.CreateEvent(e.ctx, "pq", ev)
	if err != nil {
		e.t.Fatal(err)
	}
	long := waitingroom.Event{Name: "Long", StartsAt: now.Add(2 * time.Hour), EndsAt: now.Add(3 * time.Hour), SessionTTL: 1000 * time.Hour}
	var spec *waitingroom.SpecError
	if _, err := s.CreateEvent(e.ctx, "pq", long); !errors.As(err, &spec) || spec.Key != "session_ttl" {
		e.t.Fatalf("an event session longer than the room's = %v", err)
	}
	clash := waitingroom.Event{Name: "Clash", StartsAt: now.Add(90 * time.Second), EndsAt: now.Add(100 * time.Second)}
	var overlap *waitingroom.OverlapError
	if _, err := s.CreateEvent(e.ctx, "pq", clash); !errors.As(err, &overlap) || overlap.With != ev.ID {
		e.t.Fatalf("an overlapping event = %v", err)
	}
	// Before it starts the event can be edited: a message now.
	ev.Message = "Starts at two"
	if err := s.UpdateEvent(e.ctx, "pq", ev); err != nil {
		e.t.Fatalf("UpdateEvent before the start: %v", err)
	}
	if got, _ := s.Event(e.ctx, "pq", ev.ID); got.Message != "Starts at two" {
		e.t.Fatalf("the edit was not kept: %+v", got)
	}
	e.clock.Add(time.Minute)
	e.step(sc)
	e.fill(s, "pq", 30)
	before := e.serving(s, "pq")
	for range 59 {
		e.clock.Add(time.Second)
		e.step(sc)
	}
	if got := e.serving(s, "pq"); got != before {
		e.t.Fatalf("the pre-queue admitted %d", got-before)
	}
	if _, phase, _ := s.CurrentEvent("pq", e.clock.Now()); phase != waitingroom.PhasePrequeue {
		e.t.Fatalf("phase %s in the pre-queue", phase)
	}
	for range 5 {
		e.clock.Add(time.Second)
		e.step(sc)
	}
	c := e.status(s, "pq")
	if c.Serving <= before || c.Policy.MaxActive != 50 || c.Policy.RatePerMinute != 60 {
		e.t.Fatalf("after the start: serving %d (was %d), policy %+v; want admissions under max_active 50, the room's rate", c.Serving, before, c.Policy)
	}
	if err := s.DeleteEvent(e.ctx, "pq", ev.ID); err != nil {
		e.t.Fatalf("cancel a running event: %v", err)
	}
	e.step(sc)
	if c := e.status(s, "pq"); c.Policy != (waitingroom.Policy{RatePerMinute: 60}) {
		e.t.Fatalf("policy %+v after the cancel, want the room's", c.Policy)
	}
	if err := s.DeleteEvent(e.ctx, "pq", ev.ID); !errors.Is(err, waitingroom.ErrEventNotFound) {
		e.t.Fatalf("cancel twice = %v", err)
	}
}

// testEventPrequeueDrawnAtStart: visitors who join an event's pre-queue
// are let in at its start in an order drawn by the pre-queue's
// permutation, after those who waited before the pre-queue and before
// anyone who comes after the start; each waiting page's number of people
// ahead is its exact place in the drawn order.
func testEventPrequeueDrawnAtStart(e *env) {
	s := e.store(rateRoom("draw", 60))
	sc := waitingroom.NewScheduler(s, "a", time.Second)
	cache := waitingroom.NewCache(s, time.Second)
	now := e.clock.Now()
	if _, err := s.CreateEvent(e.ctx, "draw", waitingroom.Event{Name: "Drop", PrequeueFrom: now.Add(time.Minute),
		StartsAt: now.Add(2 * time.Minute), EndsAt: now.Add(time.Hour), ShuffleAtStart: true,
		Admission: waitingroom.EventAdmission{RatePerMinute: ptr(600.0)}}); err != nil {
		e.t.Fatal(err)
	}
	e.step(sc)
	early := e.fill(s, "draw", 200)
	for range 60 {
		e.clock.Add(time.Second)
		e.step(sc)
	}
	pre := e.fill(s, "draw", 100)
	for range 60 {
		e.clock.Add(time.Second)
		e.step(sc)
	}
	room, _ := s.Room("draw")
	late := e.fill(s, "draw", 5)
	reachedAt := map[int64]int{}
	for tick := 0; len(reachedAt) < len(pre); tick++ {
		if tick > 120 {
			e.t.Fatalf("after %d ticks %d of the pre-queue were let in", tick, len(reachedAt))
		}
		e.clock.Add(time.Second)
		e.step(sc)
		if err := cache.Refresh(e.ctx); err != nil {
			e.t.Fatal(err)
		}
		c, _ := cache.Get("draw")
		ahead := map[int64]bool{}
		for _, v := range pre {
			if _, done := reachedAt[v.ticket.Position]; done {
				continue
			}
			if c.Reached(v.ticket) {
				reachedAt[v.ticket.Position] = tick
				if early[len(early)-1].ticket.Position > c.Serving {
					e.t.Fatalf("a pre-queue visitor got in while the counter (%d) had not passed those who came before", c.Serving)
				}
				continue
			}
			st := waitingroom.StatusOf(v.ticket, room, c, 600, e.clock.Now())
			if ahead[st.Ahead] {
				e.t.Fatalf("two pre-queue visitors show %d ahead", st.Ahead)
			}
			ahead[st.Ahead] = true
		}
		for _, v := range late {
			if c.Reached(v.ticket) && len(reachedAt) < len(pre) {
				e.t.Fatalf("a visitor who came after the start got in before the pre-queue")
			}
		}
	}
	// Drawn, not arrival order: the first ten in are not the first ten
	// to arrive.
	inOrder := 0
	first := reachedAt[pre[0].ticket.Position]
	for _, v := range pre[:10] {
		if reachedAt[v.ticket.Position] == first {
			inOrder++
		}
	}
	if inOrder == 10 {
		e.t.Fatal("the pre-queue was let in in arrival order")
	}
	for _, v := range pre[:20] {
		if _, err := s.Admit(e.ctx, v.ticket, v.request); err != nil {
			e.t.Fatalf("a drawn visitor at %d: %v", v.ticket.Position, err)
		}
	}
	for range 3 {
		e.clock.Add(time.Second)
		e.step(sc)
	}
	if got := e.serving(s, "draw"); got < pre[len(pre)-1].ticket.Position {
		e.t.Fatalf("the counter is at %d after the drawn pre-queue, want past %d", got, pre[len(pre)-1].ticket.Position)
	}
}
