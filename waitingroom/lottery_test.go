package waitingroom_test

import (
	"errors"
	"time"

	"github.com/anteroom/anteroom/waitingroom"
)

// testLottery: in a random room each admission goes to a visitor drawn
// among everyone waiting, not to the front of the queue; drawn visitors get
// in wherever they stand, the others keep waiting, and the counter cache
// tells a poll which is which without Redis.
func testLottery(e *env) {
	r := rateRoom("sale", 60)
	r.Method = waitingroom.MethodRandom
	s := e.store(r)
	sc := waitingroom.NewScheduler(s, "a", time.Second)
	e.step(sc)
	vs := e.fill(s, "sale", 200)
	before := e.serving(s, "sale")
	for range 10 {
		e.clock.Add(time.Second)
		e.step(sc)
	}
	cache := waitingroom.NewCache(s, time.Second)
	if err := cache.Refresh(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	c, _ := cache.Get("sale")
	var in, behind int
	for _, v := range vs {
		_, err := s.Admit(e.ctx, v.ticket, v.request)
		reached := c.Reached(v.ticket)
		switch {
		case err == nil:
			in++
			if !reached {
				e.t.Fatalf("position %d got in, but the cache does not show it drawn", v.ticket.Position)
			}
			if v.ticket.Position > c.Serving {
				behind++
			}
		case errors.Is(err, waitingroom.ErrNotAdmitted):
			if reached {
				e.t.Fatalf("position %d shows as drawn but was refused", v.ticket.Position)
			}
		default:
			e.t.Fatal(err)
		}
	}
	if got := in + int(before); got < 9 || got > 12 {
		e.t.Fatalf("%d admitted in 10 s at 60/min", got)
	}
	if behind == 0 {
		e.t.Fatal("every admission went to the front of the queue: not a lottery")
	}
}
