package waitingroom_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/anteroom/anteroom/waitingroom"
)

// Joining.

func testJoinPositionsInOrder(e *env) {
	s := e.store(manualRoom("launch"))
	for want := int64(1); want <= 5; want++ {
		j := e.join(s, "launch", fmt.Sprintf("req-%d", want), nil)
		if j.Ticket.Position != want {
			e.t.Fatalf("join %d: position %d", want, j.Ticket.Position)
		}
		if !j.New || j.Ticket.Room != "launch" || !j.Ticket.JoinedAt.Equal(t0) || j.Ticket.Admitted() {
			e.t.Fatalf("join %d: got %+v, want a new waiting ticket of room launch joined at t0", want, j)
		}
		if j.Serving != 0 {
			e.t.Fatalf("join %d: serving %d in a manual room, want 0", want, j.Serving)
		}
	}
	if c := e.status(s, "launch"); c.Tail != 5 || c.Serving != 0 || c.Waiting() != 5 {
		e.t.Fatalf("status = %+v, want tail 5, serving 0, 5 waiting", c)
	}
}

func testJoinWithTicketKeepsPosition(e *env) {
	s := e.store(manualRoom("launch"))
	e.fill(s, "launch", 2)
	a := e.join(s, "launch", "req-a", nil).Ticket
	e.fill(s, "launch", 2)
	e.clock.Add(time.Minute)
	for _, req := range []string{"req-a", "req-a-second-tab", "req-a-third-tab"} {
		j := e.join(s, "launch", req, &a)
		if j.New || !sameTicket(j.Ticket, a) {
			e.t.Fatalf("Join(%s, have) = %+v, want the same ticket %+v and New false", req, j, a)
		}
	}
	if c := e.status(s, "launch"); c.Tail != 5 {
		e.t.Fatalf("tail = %d after joins with a ticket, want 5 (unchanged)", c.Tail)
	}
	// The other request is bound to a now: nobody else can take it.
	if _, err := s.Join(e.ctx, "launch", "req-a-second-tab", nil); !errors.Is(err, waitingroom.ErrClaimed) {
		e.t.Fatalf("Join without ticket of a request bound via have: %v, want ErrClaimed", err)
	}
}

func testJoinWithExpiredTicketNewRequest(e *env) {
	r := manualRoom("launch")
	s := e.store(r)
	a := e.join(s, "launch", "req-1", nil).Ticket
	e.join(s, "launch", "req-2", nil)

	// One millisecond before max wait the ticket is still usable.
	e.clock.Add(r.MaxWait - time.Millisecond)
	if j := e.join(s, "launch", "req-3", &a); j.New || j.Ticket.Position != 1 {
		e.t.Fatalf("join just before max wait: %+v, want the old ticket", j)
	}
	e.clock.Add(time.Millisecond)
	j := e.join(s, "launch", "req-4", &a)
	if !j.New || j.Ticket.ID == a.ID || j.Ticket.Position != 3 {
		e.t.Fatalf("join with expired ticket: %+v, want a new ticket at position 3", j)
	}
	if !j.Ticket.JoinedAt.Equal(e.clock.Now()) {
		e.t.Fatalf("new ticket joined at %v, want %v", j.Ticket.JoinedAt, e.clock.Now())
	}
}

// A visitor whose ticket expired while it waited reloads the same /wait page
// (the same request, bound to the expired ticket). Ticket.Expired says
// "expired tickets join again at the back", and Join says it returns
// ErrClaimed only for a request bound to *another* ticket.
func testJoinWithExpiredTicketSameRequest(e *env) {
	r := manualRoom("launch")
	s := e.store(r)
	a := e.join(s, "launch", "req-1", nil).Ticket
	// A second tab of the same visitor, opened later: its request is bound
	// to a by the have path, with a binding TTL counted from now.
	e.clock.Add(r.MaxWait / 2)
	e.join(s, "launch", "req-2", &a)
	e.clock.Add(r.MaxWait / 2) // a has expired; req-2 is still young
	if !a.Expired(r, e.clock.Now()) {
		e.t.Fatal("test setup: ticket should be expired")
	}
	j, err := s.Join(e.ctx, "launch", "req-2", &a)
	if err != nil {
		e.t.Fatalf("Join of a request bound to the visitor's own expired ticket: %v, want a new ticket at the back", err)
	}
	if !j.New || j.Ticket.ID == a.ID || j.Ticket.Position != 2 {
		e.t.Fatalf("Join with own expired ticket = %+v, want a new ticket at position 2", j)
	}
}

func testJoinWithTicketOfAnotherRoom(e *env) {
	s := e.store(manualRoom("one"), manualRoom("two"))
	e.fill(s, "one", 3)
	other := e.join(s, "two", "req-two", nil).Ticket
	j := e.join(s, "one", "req-one", &other)
	if !j.New || j.Ticket.ID == other.ID || j.Ticket.Room != "one" || j.Ticket.Position != 4 {
		e.t.Fatalf("join of room one with a ticket of room two = %+v, want a new ticket of room one at 4", j)
	}
	if c := e.status(s, "two"); c.Tail != 1 {
		e.t.Fatalf("room two tail = %d, want 1", c.Tail)
	}
}

func testJoinConcurrent(e *env) {
	s := e.store(manualRoom("launch"))
	const workers, per = 50, 20
	positions := make(chan int64, workers*per)
	errs := make(chan error, workers*per)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				j, err := s.Join(e.ctx, "launch", fmt.Sprintf("w%d-r%d", w, i), nil)
				if err != nil {
					errs <- err
					continue
				}
				positions <- j.Ticket.Position
			}
		})
	}
	wg.Wait()
	close(positions)
	close(errs)
	for err := range errs {
		e.t.Fatalf("concurrent join: %v", err)
	}
	seen := make(map[int64]int, workers*per)
	for p := range positions {
		seen[p]++
	}
	for p := int64(1); p <= workers*per; p++ {
		if seen[p] != 1 {
			e.t.Fatalf("position %d handed out %d times, want once", p, seen[p])
		}
	}
	if len(seen) != workers*per {
		e.t.Fatalf("%d distinct positions, want %d", len(seen), workers*per)
	}
	if c := e.status(s, "launch"); c.Tail != workers*per {
		e.t.Fatalf("tail = %d, want %d", c.Tail, workers*per)
	}
}

func testUnknownRoom(e *env) {
	s := e.store(manualRoom("launch"))
	t := waitingroom.Ticket{ID: waitingroom.NewTicketID(), Room: "nope", Position: 1, JoinedAt: t0}
	checks := map[string]error{}
	_, checks["Join"] = s.Join(e.ctx, "nope", "r", nil)
	_, checks["Admit"] = s.Admit(e.ctx, t, "r")
	_, checks["Advance"] = s.Advance(e.ctx, "nope", 1)
	_, checks["Status"] = s.Status(e.ctx, "nope")
	_, checks["EndSession"] = s.EndSession(e.ctx, "nope", t.ID)
	_, _, checks["SessionEnd"] = s.SessionEnd(e.ctx, "nope", t.ID)
	checks["SetState"] = s.SetState(e.ctx, "nope", waitingroom.StatePaused)
	checks["SetPolicy"] = s.SetPolicy(e.ctx, "nope", waitingroom.Policy{RatePerMinute: 1})
	for name, err := range checks {
		if !errors.Is(err, waitingroom.ErrUnknownRoom) {
			e.t.Errorf("%s on an unknown room: %v, want ErrUnknownRoom", name, err)
		}
	}
}

// Binding.

func testBindingCopiedURL(e *env) {
	s := e.store(manualRoom("launch"))
	e.join(s, "launch", "req", nil)
	before := e.status(s, "launch").Tail
	for range 3 {
		if _, err := s.Join(e.ctx, "launch", "req", nil); !errors.Is(err, waitingroom.ErrClaimed) {
			e.t.Fatalf("Join of a bound request without a ticket: %v, want ErrClaimed", err)
		}
	}
	if after := e.status(s, "launch").Tail; after != before {
		e.t.Fatalf("tail moved from %d to %d: a copied URL cost positions", before, after)
	}
}

func testBindingOtherTicket(e *env) {
	s := e.store(manualRoom("launch"))
	e.join(s, "launch", "req-a", nil)
	b := e.join(s, "launch", "req-b", nil).Ticket
	if _, err := s.Join(e.ctx, "launch", "req-a", &b); !errors.Is(err, waitingroom.ErrClaimed) {
		e.t.Fatalf("Join of A's request with ticket B: %v, want ErrClaimed", err)
	}
	if c := e.status(s, "launch"); c.Tail != 2 {
		e.t.Fatalf("tail = %d, want 2", c.Tail)
	}
}

func testBindingAdmitOtherTicket(e *env) {
	s := e.store(manualRoom("launch"))
	a := e.join(s, "launch", "req-a", nil).Ticket
	b := e.join(s, "launch", "req-b", nil).Ticket
	e.advance(s, "launch", 2) // both positions reached
	if _, err := s.Admit(e.ctx, b, "req-a"); !errors.Is(err, waitingroom.ErrClaimed) {
		e.t.Fatalf("Admit of ticket B for A's request: %v, want ErrClaimed", err)
	}
	if _, found, err := s.SessionEnd(e.ctx, "launch", b.ID); err != nil || found {
		e.t.Fatalf("SessionEnd of B after the refused admit = %v, %v; want no session", found, err)
	}
	if _, err := s.Admit(e.ctx, a, "req-a"); err != nil {
		e.t.Fatalf("Admit of A for its own request: %v", err)
	}
	if _, err := s.Admit(e.ctx, b, "req-b"); err != nil {
		e.t.Fatalf("Admit of B for its own request: %v", err)
	}
}

// Admission.

func testAdmitWaitsForCounter(e *env) {
	s := e.store(manualRoom("launch"))
	e.fill(s, "launch", 2)
	a := e.join(s, "launch", "req", nil).Ticket // position 3
	for _, n := range []int64{0, 1, 1} {
		e.advance(s, "launch", n)
		if _, err := s.Admit(e.ctx, a, "req"); !errors.Is(err, waitingroom.ErrNotAdmitted) {
			e.t.Fatalf("Admit at position 3 with serving %d: %v, want ErrNotAdmitted", e.status(s, "launch").Serving, err)
		}
	}
	if _, found, _ := s.SessionEnd(e.ctx, "launch", a.ID); found {
		e.t.Fatal("a ticket refused admission has a session")
	}
	e.advance(s, "launch", 1)
	admitAt := e.clock.Add(7 * time.Second)
	got, err := s.Admit(e.ctx, a, "req")
	if err != nil {
		e.t.Fatalf("Admit once serving reached the position: %v", err)
	}
	if !got.Admitted() || !got.AdmittedAt.Equal(admitAt) {
		e.t.Fatalf("AdmittedAt = %v, want the clock %v", got.AdmittedAt, admitAt)
	}
	if got.ID != a.ID || got.Position != a.Position || !got.JoinedAt.Equal(a.JoinedAt) || got.Room != a.Room {
		e.t.Fatalf("Admit changed the ticket: %+v from %+v", got, a)
	}
	// Asking again, with the old or the admitted ticket, is the same admission.
	e.clock.Add(time.Minute)
	for _, tk := range []waitingroom.Ticket{a, got} {
		again, err := s.Admit(e.ctx, tk, "req")
		if err != nil || !again.AdmittedAt.Equal(admitAt) {
			e.t.Fatalf("second Admit = %v, %v; want the same AdmittedAt %v", again.AdmittedAt, err, admitAt)
		}
	}
	end, found, err := s.SessionEnd(e.ctx, "launch", a.ID)
	if err != nil || !found || !end.Equal(admitAt.Add(10*time.Minute)) {
		e.t.Fatalf("SessionEnd = %v, %v, %v; want %v", end, found, err, admitAt.Add(10*time.Minute))
	}
}

func testAdmitSessionTTL(e *env) {
	r := manualRoom("launch")
	s := e.store(r)
	a := e.join(s, "launch", "req", nil).Ticket
	e.advance(s, "launch", 1)
	got, err := s.Admit(e.ctx, a, "req")
	if err != nil {
		e.t.Fatalf("Admit: %v", err)
	}
	e.clock.Add(r.SessionTTL - time.Millisecond)
	if _, err := s.Admit(e.ctx, got, "req"); err != nil {
		e.t.Fatalf("Admit 1 ms before the session ends: %v", err)
	}
	e.clock.Add(time.Millisecond)
	if _, err := s.Admit(e.ctx, got, "req"); !errors.Is(err, waitingroom.ErrSessionOver) {
		e.t.Fatalf("Admit once the session TTL passed: %v, want ErrSessionOver", err)
	}
	// The cookie's copy from before admission cannot buy a second session.
	if _, err := s.Admit(e.ctx, a, "req"); !errors.Is(err, waitingroom.ErrSessionOver) {
		e.t.Fatalf("Admit of the pre-admission copy after the session: %v, want ErrSessionOver", err)
	}
	if c := e.status(s, "launch"); c.Active != 0 {
		e.t.Fatalf("active = %d after the session TTL, want 0", c.Active)
	}
}

func testEndSession(e *env) {
	s := e.store(manualRoom("launch"))
	a := e.join(s, "launch", "req-a", nil).Ticket
	b := e.join(s, "launch", "req-b", nil).Ticket
	e.advance(s, "launch", 2)
	if _, err := s.Admit(e.ctx, a, "req-a"); err != nil {
		e.t.Fatal(err)
	}
	if _, err := s.Admit(e.ctx, b, "req-b"); err != nil {
		e.t.Fatal(err)
	}
	if c := e.status(s, "launch"); c.Active != 2 {
		e.t.Fatalf("active = %d, want 2", c.Active)
	}
	endAt := e.clock.Add(time.Minute)
	ended, err := s.EndSession(e.ctx, "launch", a.ID)
	if err != nil || !ended {
		e.t.Fatalf("EndSession = %v, %v; want true", ended, err)
	}
	if c := e.status(s, "launch"); c.Active != 1 {
		e.t.Fatalf("active = %d right after EndSession, want 1", c.Active)
	}
	if _, err := s.Admit(e.ctx, a, "req-a"); !errors.Is(err, waitingroom.ErrSessionOver) {
		e.t.Fatalf("Admit after EndSession: %v, want ErrSessionOver", err)
	}
	end, found, err := s.SessionEnd(e.ctx, "launch", a.ID)
	if err != nil || !found || !end.Equal(endAt) {
		e.t.Fatalf("SessionEnd = %v, %v, %v; want %v", end, found, err, endAt)
	}
	// b is untouched.
	if _, err := s.Admit(e.ctx, b, "req-b"); err != nil {
		e.t.Fatalf("Admit of the other ticket: %v", err)
	}
	// A ticket never admitted has no session to end.
	ended, err = s.EndSession(e.ctx, "launch", waitingroom.NewTicketID())
	if err != nil || ended {
		e.t.Fatalf("EndSession of an unknown ticket = %v, %v; want false", ended, err)
	}
}

// EndSession "reports whether there was a session to end", and SessionEnd
// says when the session ended: a session that ended by itself has nothing to
// end, and its end must not move.
func testEndSessionAfterEnded(e *env) {
	r := manualRoom("launch")
	s := e.store(r)
	a := e.join(s, "launch", "req", nil).Ticket
	e.advance(s, "launch", 1)
	got, err := s.Admit(e.ctx, a, "req")
	if err != nil {
		e.t.Fatal(err)
	}
	naturalEnd := got.SessionEnd(r)
	e.clock.Add(r.SessionTTL + time.Minute)
	ended, err := s.EndSession(e.ctx, "launch", a.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	end, _, _ := s.SessionEnd(e.ctx, "launch", a.ID)
	if ended || !end.Equal(naturalEnd) {
		e.t.Fatalf("EndSession after the session ended by itself = %v and moved its end to %v; want false and end %v", ended, end, naturalEnd)
	}
}

// ErrSessionOver means "it must join again at the back of the queue", and
// the web layer does exactly that with the same request after clearing the
// cookie. The request is still bound to the ticket whose session is over.
func testSessionOverJoinsAgain(e *env) {
	for _, how := range []string{"end_session", "ttl"} {
		e.t.Run(how, func(t *testing.T) {
			r := manualRoom("room-" + how)
			sub := *e
			sub.t, sub.clock = t, newClock()
			s := sub.store(r)
			a := sub.join(s, r.ID, "req", nil).Ticket
			sub.fill(s, r.ID, 2)
			sub.advance(s, r.ID, 1)
			if _, err := s.Admit(sub.ctx, a, "req"); err != nil {
				t.Fatal(err)
			}
			if how == "end_session" {
				sub.clock.Add(time.Minute)
				if _, err := s.EndSession(sub.ctx, r.ID, a.ID); err != nil {
					t.Fatal(err)
				}
			} else {
				sub.clock.Add(r.SessionTTL)
			}
			if _, err := s.Admit(sub.ctx, a, "req"); !errors.Is(err, waitingroom.ErrSessionOver) {
				t.Fatalf("Admit: %v, want ErrSessionOver", err)
			}
			j, err := s.Join(sub.ctx, r.ID, "req", nil)
			if err != nil {
				t.Fatalf("Join of the same request after ErrSessionOver: %v, want a new ticket at the back", err)
			}
			if !j.New || j.Ticket.Position != 4 {
				t.Fatalf("Join after ErrSessionOver = %+v, want a new ticket at position 4", j)
			}
		})
	}
}

func testAdmitBindsUnboundRequest(e *env) {
	s := e.store(manualRoom("launch"))
	c := e.join(s, "launch", "req-c", nil).Ticket
	d := e.join(s, "launch", "req-d", nil).Ticket
	e.advance(s, "launch", 2)
	// req-x never joined (an app that only polled the status JSON): the
	// first ticket to admit for it wins it.
	if _, err := s.Admit(e.ctx, c, "req-x"); err != nil {
		e.t.Fatalf("Admit for an unbound request: %v", err)
	}
	if _, err := s.Admit(e.ctx, d, "req-x"); !errors.Is(err, waitingroom.ErrClaimed) {
		e.t.Fatalf("Admit of another ticket for the request now bound: %v, want ErrClaimed", err)
	}
	if _, err := s.Join(e.ctx, "launch", "req-x", nil); !errors.Is(err, waitingroom.ErrClaimed) {
		e.t.Fatalf("Join for the request now bound: %v, want ErrClaimed", err)
	}
	if j, err := s.Join(e.ctx, "launch", "req-x", &c); err != nil || j.Ticket.ID != c.ID {
		e.t.Fatalf("Join of the winner for its request = %+v, %v", j, err)
	}
}

func testAdvanceNeverPassesTail(e *env) {
	s := e.store(manualRoom("launch"))
	if c := e.advance(s, "launch", 1<<40); c.Serving != 0 || c.Tail != 0 {
		e.t.Fatalf("huge Advance on an empty room = %+v, want serving = tail = 0", c)
	}
	e.fill(s, "launch", 3)
	if c := e.advance(s, "launch", 0); c.Serving != 0 || c.Tail != 3 {
		e.t.Fatalf("Advance(0) = %+v, want serving 0, tail 3", c)
	}
	if c := e.advance(s, "launch", 2); c.Serving != 2 {
		e.t.Fatalf("Advance(2) = %+v, want serving 2", c)
	}
	if c := e.advance(s, "launch", 1<<40); c.Serving != 3 || c.Tail != 3 {
		e.t.Fatalf("huge Advance = %+v, want serving = tail = 3", c)
	}
	if _, err := s.Advance(e.ctx, "launch", -1); err == nil {
		e.t.Fatal("Advance(-1) succeeded, want an error")
	}
	if c := e.status(s, "launch"); c.Serving != 3 || c.Tail != 3 {
		e.t.Fatalf("status = %+v after Advance(-1), want serving = tail = 3", c)
	}
	// An idle room banks nothing: the next joiner waits.
	e.advance(s, "launch", 100)
	j := e.join(s, "launch", "late", nil)
	if j.Ticket.Position != 4 || admittedByCounter(j) {
		e.t.Fatalf("join after advances on an idle room = %+v, want waiting at 4", j)
	}
	if c := e.advance(s, "launch", 1); c.Serving != 4 {
		e.t.Fatalf("Advance(1) = %+v, want serving 4", c)
	}
}
