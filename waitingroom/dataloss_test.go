package waitingroom_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/anteroom/anteroom/waitingroom"
)

// Redis lost data (counterfloor.go): the cases below simulate the loss with
// FLUSHALL (env.flushAll), so they run on every backend of the suite;
// crash_test.go kills a real redis-server instead.

// Two instances survive Redis losing everything: what either handed out is
// never handed out again, the counter they saw does not go back, waiting
// tickets keep their places and an admitted visitor stays admitted.
func testDataLossInstancesRestore(e *env) {
	a := e.store(manualRoom("launch"))
	b := e.store(manualRoom("launch"))
	var vs []visitor
	for i := range 6 {
		s := a
		if i%2 == 1 {
			s = b
		}
		vs = append(vs, e.fill(s, "launch", 1)...)
	}
	e.advance(a, "launch", 2)
	admitted, err := a.Admit(e.ctx, vs[0].ticket, vs[0].request)
	if err != nil {
		e.t.Fatal(err)
	}
	epoch := e.status(a, "launch").Epoch

	e.flushAll()
	// b handed out position 6, a saw the counter at 2: each puts back
	// what it saw, the first time it touches the room.
	if j := e.join(b, "launch", "after-1", nil); j.Ticket.Position != 7 || j.Ticket.Epoch != epoch {
		e.t.Fatalf("first join after the loss = %+v, want position 7 in epoch %d", j.Ticket, epoch)
	}
	if j := e.join(a, "launch", "after-2", nil); j.Ticket.Position != 8 {
		e.t.Fatalf("second join after the loss = position %d, want 8", j.Ticket.Position)
	}
	if _, err := a.Admit(e.ctx, vs[1].ticket, vs[1].request); err != nil {
		e.t.Fatalf("a visitor the counter had reached before the loss: %v", err)
	}
	if c := e.status(b, "launch"); c.Serving != 2 || c.Tail != 8 || c.Epoch != epoch {
		e.t.Fatalf("counters after the loss = serving %d, tail %d, epoch %d; want 2, 8, %d", c.Serving, c.Tail, c.Epoch, epoch)
	}
	// A waiting ticket keeps its place.
	if j := e.join(b, "launch", vs[4].request, &vs[4].ticket); j.New || j.Ticket.Position != 5 {
		e.t.Fatalf("waiting ticket after the loss = %+v, want its own position 5", j)
	}
	if _, err := b.Admit(e.ctx, vs[4].ticket, vs[4].request); !errors.Is(err, waitingroom.ErrNotAdmitted) {
		e.t.Fatalf("Admit of a waiting ticket after the loss: %v, want ErrNotAdmitted", err)
	}
	// The admitted visitor's record was lost with everything else; the
	// cookie proves the admission, and its slot counts again.
	got, err := b.Admit(e.ctx, admitted, vs[0].request)
	if err != nil || !got.AdmittedAt.Equal(admitted.AdmittedAt) {
		e.t.Fatalf("admitted ticket after the loss: %+v, %v; want admitted at %v", got, err, admitted.AdmittedAt)
	}
	if c := e.status(b, "launch"); c.Active != 2 {
		e.t.Fatalf("active = %d after both admitted visitors came back, want 2", c.Active)
	}
}

// Redis lost everything and so did every instance: the room starts a new
// epoch. A waiting ticket of the old one joins again at the back, since its
// position may now be someone else's; an admitted one is still honoured.
func testDataLossNobodyRemembers(e *env) {
	a := e.store(manualRoom("launch"))
	vs := e.fill(a, "launch", 3)
	e.advance(a, "launch", 1)
	admitted, err := a.Admit(e.ctx, vs[0].ticket, vs[0].request)
	if err != nil {
		e.t.Fatal(err)
	}
	old := e.status(a, "launch").Epoch

	e.flushAll()
	b := e.store(manualRoom("launch")) // a new instance: it remembers nothing
	epoch := e.status(b, "launch").Epoch
	if epoch == 0 || epoch == old {
		e.t.Fatalf("epoch after a loss nobody remembered = %d, want a new one (was %d)", epoch, old)
	}
	st := waitingroom.StatusOf(vs[2].ticket, manualRoom("launch"), e.status(b, "launch"), 0, e.clock.Now())
	if st.State != waitingroom.VisitorExpired {
		e.t.Fatalf("status of an old waiting ticket = %q, want expired (its page reloads and joins again)", st.State)
	}
	if _, err := b.Admit(e.ctx, vs[1].ticket, vs[1].request); !errors.Is(err, waitingroom.ErrStale) {
		e.t.Fatalf("Admit of an old waiting ticket: %v, want ErrStale", err)
	}
	j := e.join(b, "launch", vs[2].request, &vs[2].ticket)
	if !j.New || j.Ticket.Position != 1 || j.Ticket.Epoch != epoch {
		e.t.Fatalf("old waiting ticket joining again = %+v, want a new ticket at 1 in epoch %d", j, epoch)
	}
	got, err := b.Admit(e.ctx, admitted, vs[0].request)
	if err != nil || !got.AdmittedAt.Equal(admitted.AdmittedAt) {
		e.t.Fatalf("admitted ticket of the old epoch: %+v, %v; want still admitted", got, err)
	}
	// The instance that remembered the old epoch follows the new one and
	// does not push its old counters onto it.
	if j := e.join(a, "launch", "a-after", nil); j.Ticket.Position != 2 || j.Ticket.Epoch != epoch {
		e.t.Fatalf("join on the instance that remembered the old epoch = %+v, want position 2 in epoch %d", j.Ticket, epoch)
	}
}

// An instance refreshes every half second, so it has not seen what the
// others handed out just before Redis lost it. The first join after the
// loss leaves a gap of about two seconds of joins for them; in a room
// without abandonment the gap costs no admissions, and a visitor inside it
// is let in when they come back.
func testDataLossGapCoversOtherInstances(e *env) {
	r := rateRoom("launch", 60)
	a := e.store(r)
	b := e.store(r)
	for i := range 20 {
		e.clock.Add(100 * time.Millisecond)
		e.join(a, "launch", fmt.Sprintf("a-%d", i), nil)
		e.join(b, "launch", fmt.Sprintf("b-%d", i), nil)
	}
	c := e.advance(a, "launch", 1000) // everyone in: serving = tail = 40
	unseen := e.fill(b, "launch", 5)  // 41..45: a never saw them

	e.flushAll()
	v := e.fill(a, "launch", 1)[0]
	if v.ticket.Position <= unseen[4].ticket.Position {
		e.t.Fatalf("first join after the loss got position %d: b had handed out up to %d", v.ticket.Position, unseen[4].ticket.Position)
	}
	w := e.fill(b, "launch", 1)[0]
	if w.ticket.Position != v.ticket.Position+1 {
		e.t.Fatalf("next join = position %d, want %d (one gap, not one per instance)", w.ticket.Position, v.ticket.Position+1)
	}
	// The gap holds nobody as far as anyone can tell: it is not counted as
	// waiting, nor as ahead of anyone.
	if c := e.status(a, "launch"); c.Waiting() != 2 {
		e.t.Fatalf("waiting = %d with only v and w after the gap, want 2", c.Waiting())
	}
	if st := waitingroom.StatusOf(w.ticket, r, e.status(a, "launch"), 60, e.clock.Now()); st.Ahead != 1 {
		e.t.Fatalf("ahead of w = %d, want 1 (v)", st.Ahead)
	}
	// The budget is two: the second a room that lost its budget starts
	// with, and one second's worth. Both go to v and w, past the gap.
	sc := waitingroom.NewScheduler(a, "a", time.Second)
	e.clock.Add(time.Second)
	e.step(sc)
	if got := e.serving(a, "launch"); got != w.ticket.Position {
		e.t.Fatalf("after two admissions from %d: serving %d, want %d (the gap up to them costs nothing)", c.Serving, got, w.ticket.Position)
	}
	lost := unseen[2]
	if _, err := b.Admit(e.ctx, lost.ticket, lost.request); !errors.Is(err, waitingroom.ErrSkipped) {
		e.t.Fatalf("visitor in the gap: %v, want ErrSkipped (let in at the next tick)", err)
	}
	e.clock.Add(time.Second)
	e.step(sc)
	if _, err := b.Admit(e.ctx, lost.ticket, lost.request); err != nil {
		e.t.Fatalf("visitor in the gap, back: %v", err)
	}
}

// A pre-queue that has opened keeps its draw: the opening is put back with
// the counters, so every early visitor keeps the position drawn for them.
func testDataLossPreQueue(e *env) {
	r := rateRoom("launch", 60)
	r.OpensAt = e.clock.Now().Add(time.Minute)
	a := e.store(r)
	early := e.fill(a, "launch", 4)
	// Before the opening, the pre-queue's numbers are what must not repeat.
	e.flushAll()
	early = append(early, e.fill(a, "launch", 1)...)
	if n := early[4].ticket.PreQueue; n != 5 {
		e.t.Fatalf("pre-queue number after the loss = %d, want 5", n)
	}
	e.clock.Add(2 * time.Minute)
	late := e.fill(a, "launch", 1)[0] // opens the room
	before := e.status(a, "launch")
	var drawn []int64
	for _, v := range early {
		drawn = append(drawn, before.Resolve(v.ticket).Position)
	}

	e.flushAll()
	next := e.fill(a, "launch", 1)[0]
	if next.ticket.Position <= late.ticket.Position {
		e.t.Fatalf("join after the loss got position %d, the pre-queue and a late visitor hold up to %d", next.ticket.Position, late.ticket.Position)
	}
	after := e.status(a, "launch")
	for i, v := range early {
		if got := after.Resolve(v.ticket).Position; got != drawn[i] {
			e.t.Fatalf("early visitor %d: position %d after the loss, drawn %d before", i, got, drawn[i])
		}
	}
}

// An advance counts people, not positions: after a loss of writes left a
// gap, `admin advance 2` lets in the two visitors after it, not two empty
// places of the gap. A visitor whose join was lost inside the gap is
// passed over like the tick passes them (skipped, let in when back).
func testDataLossAdvanceCountsPeopleNotTheGap(e *env) {
	r := rateRoom("launch", 60)
	a := e.store(r)
	b := e.store(r)
	for i := range 5 {
		e.clock.Add(100 * time.Millisecond)
		e.join(a, "launch", fmt.Sprintf("a-%d", i), nil)
		e.join(b, "launch", fmt.Sprintf("b-%d", i), nil)
	}
	e.advance(a, "launch", 1000)     // serving = tail = 10
	unseen := e.fill(b, "launch", 3) // 11..13: a never saw them
	e.flushAll()
	vs := e.fill(a, "launch", 3) // the first of these leaves the gap
	if vs[0].ticket.Position <= unseen[2].ticket.Position+1 {
		e.t.Fatalf("first join after the loss got position %d: no gap after %d", vs[0].ticket.Position, unseen[2].ticket.Position)
	}
	before := e.serving(a, "launch")
	if vs[1].ticket.ServingAtJoin != before {
		e.t.Fatalf("ticket's serving at join = %d, want %d (the counter when it joined)", vs[1].ticket.ServingAtJoin, before)
	}
	c := e.advance(a, "launch", 2)
	if c.Serving != vs[1].ticket.Position {
		e.t.Fatalf("advance 2 from %d: serving %d, want %d (the two waiting after the gap)", before, c.Serving, vs[1].ticket.Position)
	}
	if _, err := a.Admit(e.ctx, vs[1].ticket, vs[1].request); err != nil {
		e.t.Fatalf("second visitor after the gap: %v, want let in", err)
	}
	if _, err := a.Admit(e.ctx, vs[2].ticket, vs[2].request); !errors.Is(err, waitingroom.ErrNotAdmitted) {
		e.t.Fatalf("third visitor after the gap: %v, want still waiting", err)
	}
	lost := unseen[1]
	if _, err := b.Admit(e.ctx, lost.ticket, lost.request); !errors.Is(err, waitingroom.ErrSkipped) {
		e.t.Fatalf("visitor in the gap after the advance: %v, want ErrSkipped (let in at the next tick)", err)
	}
	// Advancing again counts on from there, one person.
	if c := e.advance(a, "launch", 1); c.Serving != vs[2].ticket.Position {
		e.t.Fatalf("advance 1 more: serving %d, want %d", c.Serving, vs[2].ticket.Position)
	}
}
