package waitingroom_test

import (
	"errors"
	"sync"
	"time"

	"github.com/anteroom/anteroom/waitingroom"
)

// laneRoom is a rate room with a vip lane of weight 3 beside the standard
// lane of weight 1, as issue 16's example has it.
func laneRoom(id string, perMinute float64) waitingroom.Room {
	r := rateRoom(id, perMinute)
	r.Lanes = []waitingroom.Lane{{ID: "vip", Weight: 3}, {ID: waitingroom.StandardLane, Weight: 1}}
	return r
}

func (e *env) codes(s *waitingroom.Store, room string, spec waitingroom.CodeSpec) []string {
	e.t.Helper()
	codes, err := s.IssueCodes(e.ctx, room, spec)
	if err != nil {
		e.t.Fatalf("IssueCodes: %v", err)
	}
	if len(codes) != spec.Count {
		e.t.Fatalf("IssueCodes gave %d codes, want %d", len(codes), spec.Count)
	}
	return codes
}

// testLaneWeights runs a room with a vip lane for ten simulated minutes,
// both lanes full all along: every tick's admissions are shared 3:1, and
// over the ten minutes each lane's count is within one of its weight's
// share (smooth weighted round robin). A standard visitor's number never
// grows, and every vip the lane admitted gets in ahead of the counter.
func testLaneWeights(e *env) {
	const rate = 30
	s := e.store(laneRoom("lanes", rate))
	sc := waitingroom.NewScheduler(s, "a", time.Second)
	var mu sync.Mutex
	per := map[string]int64{}
	sc.OnLaneAdvance = func(room, lane string, n int64) {
		mu.Lock()
		per[lane] += n
		mu.Unlock()
	}
	e.step(sc)
	vs := e.fill(s, "lanes", 600)
	codes := e.codes(s, "lanes", waitingroom.CodeSpec{Count: 300, Lane: "vip", Uses: 1})
	// Every other visitor, from the 11th on, enters a code.
	var vips []visitor
	for i, v := range vs[10:] {
		if i%2 == 1 {
			continue
		}
		lane, err := s.Redeem(e.ctx, v.ticket, codes[len(vips)])
		if err != nil || lane != "vip" {
			e.t.Fatalf("Redeem position %d: %q, %v", v.ticket.Position, lane, err)
		}
		vips = append(vips, v)
	}
	vipSet := map[int64]struct{}{}
	for _, v := range vips {
		vipSet[v.ticket.Position] = struct{}{}
	}
	// A standard visitor near the back: their number never grows.
	watch := vs[len(vs)-1]
	if _, in := vipSet[watch.ticket.Position]; in {
		watch = vs[len(vs)-2]
	}
	room, _ := s.Room("lanes")
	cache := waitingroom.NewCache(s, time.Second)
	lastAhead := int64(-1)
	for range 600 {
		e.clock.Add(time.Second)
		e.step(sc)
		if err := cache.Refresh(e.ctx); err != nil {
			e.t.Fatal(err)
		}
		c, _ := cache.Get("lanes")
		st := waitingroom.StatusOf(watch.ticket, room, c, rate, e.clock.Now())
		if st.Lane != "" || st.Position != watch.ticket.Position {
			e.t.Fatalf("the standard visitor shows lane %q, position %d", st.Lane, st.Position)
		}
		if lastAhead >= 0 && st.Ahead > lastAhead {
			e.t.Fatalf("a standard visitor's people ahead grew from %d to %d", lastAhead, st.Ahead)
		}
		lastAhead = st.Ahead
	}
	total := per["vip"] + per[waitingroom.StandardLane]
	if total < 290 || total > 302 {
		e.t.Fatalf("%d admitted in 10 minutes at %d/min", total, rate)
	}
	for lane, weight := range map[string]int64{"vip": 3, waitingroom.StandardLane: 1} {
		want := float64(total*weight) / 4
		if got := float64(per[lane]); got < want-1 || got > want+1 {
			e.t.Fatalf("lane %s admitted %v of %d, want %v ± 1 (weights 3:1): %v", lane, got, total, want, per)
		}
	}
	e.t.Logf("10 minutes at %d/min: %v", rate, per)
	// The vips the lane let in are admitted by the store, though the
	// counter is far behind them; the cache shows it too.
	if err := cache.Refresh(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	c, _ := cache.Get("lanes")
	in := 0
	for _, v := range vips {
		_, err := s.Admit(e.ctx, v.ticket, v.request)
		switch {
		case err == nil:
			in++
			if !c.Reached(v.ticket) {
				e.t.Fatalf("vip at %d got in, but the cache does not show it", v.ticket.Position)
			}
		case errors.Is(err, waitingroom.ErrNotAdmitted):
			if c.Reached(v.ticket) {
				e.t.Fatalf("vip at %d shows as reached but was refused", v.ticket.Position)
			}
			if st := waitingroom.StatusOf(v.ticket, room, c, rate, e.clock.Now()); st.Lane != "vip" {
				e.t.Fatalf("a waiting vip shows lane %q", st.Lane)
			}
		default:
			e.t.Fatal(err)
		}
	}
	if in < int(per["vip"]) {
		e.t.Fatalf("%d vips got in, the lane admitted %d", in, per["vip"])
	}
	if c.Serving >= vips[len(vips)-1].ticket.Position {
		e.t.Fatalf("the counter reached the last vip (%d): the test shows nothing", c.Serving)
	}
}

// testCodeRedeemedOnceAcrossInstances redeems one single-use code for 20
// visitors at once through two stores (two instances): exactly one moves.
func testCodeRedeemedOnceAcrossInstances(e *env) {
	stores := []*waitingroom.Store{e.store(laneRoom("race", 0)), e.store(laneRoom("race", 0))}
	vs := e.fill(stores[0], "race", 20)
	code := e.codes(stores[1], "race", waitingroom.CodeSpec{Count: 1, Lane: "vip", Uses: 1})[0]
	var wg sync.WaitGroup
	errs := make([]error, len(vs))
	for i, v := range vs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = stores[i%2].Redeem(e.ctx, v.ticket, code)
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case errors.Is(err, waitingroom.ErrCodeUsedUp):
		default:
			e.t.Fatalf("Redeem: %v", err)
		}
	}
	if won != 1 {
		e.t.Fatalf("%d of 20 concurrent redemptions of a single-use code won, want exactly 1", won)
	}
	st, err := stores[0].CodeStats(e.ctx, "race")
	if err != nil || len(st) != 1 || st[0].Issued != 1 || st[0].Used != 1 {
		e.t.Fatalf("CodeStats = %+v, %v; want one issued, one used", st, err)
	}
}

// testCodeErrorsLoseNothing: a wrong, expired or used-up code, or one
// entered by a visitor already in a lane or already let in, fails with its
// own error and spends nothing.
func testCodeErrorsLoseNothing(e *env) {
	s := e.store(laneRoom("codes", 0))
	vs := e.fill(s, "codes", 4)
	two := e.codes(s, "codes", waitingroom.CodeSpec{Count: 1, Lane: "vip", Uses: 2})[0]
	soon := e.codes(s, "codes", waitingroom.CodeSpec{Count: 1, Lane: "vip", Uses: 5, ExpiresAt: e.clock.Now().Add(time.Minute)})[0]
	for _, bad := range []string{"", "nonsense", "0000-0000-0000", two + "X"} {
		if _, err := s.Redeem(e.ctx, vs[1].ticket, bad); !errors.Is(err, waitingroom.ErrCodeUnknown) {
			e.t.Fatalf("Redeem(%q) = %v, want ErrCodeUnknown", bad, err)
		}
	}
	// Crockford's base32: lower case, spaces and look-alikes are the same code.
	if _, err := s.Redeem(e.ctx, vs[1].ticket, " "+lowerLookAlike(two)+" "); err != nil {
		e.t.Fatalf("Redeem of the code as typed by hand: %v", err)
	}
	if lane, err := s.Redeem(e.ctx, vs[1].ticket, two); !errors.Is(err, waitingroom.ErrInLane) || lane != "vip" {
		e.t.Fatalf("second code for a vip = %q, %v; want ErrInLane", lane, err)
	}
	// The refused second use was not spent: another visitor still has it.
	if _, err := s.Redeem(e.ctx, vs[2].ticket, two); err != nil {
		e.t.Fatalf("the code's second use: %v", err)
	}
	if _, err := s.Redeem(e.ctx, vs[3].ticket, two); !errors.Is(err, waitingroom.ErrCodeUsedUp) {
		e.t.Fatalf("a third use of a two-use code = %v, want ErrCodeUsedUp", err)
	}
	e.advance(s, "codes", 1)
	if _, err := s.Redeem(e.ctx, vs[0].ticket, soon); !errors.Is(err, waitingroom.ErrCodeNotNeeded) {
		e.t.Fatalf("a code for a visitor the counter reached = %v, want ErrCodeNotNeeded", err)
	}
	e.clock.Add(time.Minute)
	if _, err := s.Redeem(e.ctx, vs[3].ticket, soon); !errors.Is(err, waitingroom.ErrCodeExpired) {
		e.t.Fatalf("an expired code = %v, want ErrCodeExpired", err)
	}
	st, err := s.CodeStats(e.ctx, "codes")
	if err != nil || st[0].Issued != 2 || st[0].Used != 2 {
		e.t.Fatalf("CodeStats = %+v, %v; want 2 issued, 2 used", st, err)
	}
	if _, err := s.IssueCodes(e.ctx, "codes", waitingroom.CodeSpec{Count: 1, Lane: waitingroom.StandardLane, Uses: 1}); err == nil {
		e.t.Fatal("codes for the standard lane were issued")
	}
}

// lowerLookAlike is a code as a person might type it: lower case, O for
// 0 and l for 1.
func lowerLookAlike(code string) string {
	out := []byte(code)
	for i, c := range out {
		switch {
		case c == '0':
			out[i] = 'o'
		case c == '1':
			out[i] = 'l'
		case c >= 'A' && c <= 'Z':
			out[i] = c + 'a' - 'A'
		}
	}
	return string(out)
}

// testCodeInEventPrequeue: in an event's pre-queue a code is refused
// (its order is the draw's) and not spent; once the pre-queue is over (here
// cancelled) it works.
func testCodeInEventPrequeue(e *env) {
	s := e.store(laneRoom("pqcode", 60))
	sc := waitingroom.NewScheduler(s, "a", time.Second)
	now := e.clock.Now()
	if _, err := s.CreateEvent(e.ctx, "pqcode", waitingroom.Event{Name: "Drop", PrequeueFrom: now.Add(time.Second),
		StartsAt: now.Add(time.Minute), EndsAt: now.Add(time.Hour)}); err != nil {
		e.t.Fatal(err)
	}
	e.clock.Add(2 * time.Second)
	e.step(sc)
	vs := e.fill(s, "pqcode", 20)
	code := e.codes(s, "pqcode", waitingroom.CodeSpec{Count: 1, Lane: "vip", Uses: 1})[0]
	if _, err := s.Redeem(e.ctx, vs[19].ticket, code); !errors.Is(err, waitingroom.ErrCodeTooEarly) {
		e.t.Fatalf("a code in an event's pre-queue = %v, want ErrCodeTooEarly", err)
	}
	// Cancelled during its pre-queue: codes work again at once.
	ev, _, _ := s.CurrentEvent("pqcode", e.clock.Now())
	if err := s.DeleteEvent(e.ctx, "pqcode", ev.ID); err != nil {
		e.t.Fatal(err)
	}
	e.step(sc)
	if lane, err := s.Redeem(e.ctx, vs[19].ticket, code); err != nil || lane != "vip" {
		e.t.Fatalf("the same code once the event runs = %q, %v", lane, err)
	}
}
