package waitingroom_test

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/anteroom/anteroom/waitingroom"
)

// limitedStore is a seeded store of room launch (manual) with opts, on the
// env's client, clock and prefix.
func (e *env) limitedStore(opts ...waitingroom.Option) *waitingroom.Store {
	e.t.Helper()
	s, err := waitingroom.NewStore(e.rdb, []waitingroom.Room{manualRoom("launch")},
		append([]waitingroom.Option{waitingroom.WithClock(e.clock.Now), waitingroom.WithPrefix(e.prefix)}, opts...)...)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := s.Seed(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	return s
}

// testJoinLimit: a client gets burst new places at once, then one per
// interval, on every instance alike; other clients, unnamed clients and
// visitors coming back with their ticket are not held back, and a refused
// join costs no place.
func testJoinLimit(e *env) {
	// 6 a minute: one every 10 s, after 3 at once. The clock is off the
	// limit's 0.1 s grid, which may make a wait up to 0.1 s shorter.
	e.clock.Add(37 * time.Millisecond)
	about := func(got, want time.Duration) bool { return got > want-100*time.Millisecond && got <= want }
	a := e.limitedStore(waitingroom.WithJoinLimit(6, 3))
	b := e.limitedStore(waitingroom.WithJoinLimit(6, 3)) // another instance
	n := 0
	join := func(s *waitingroom.Store, client string, have *waitingroom.Ticket) (waitingroom.Joined, error) {
		n++
		return s.Join(e.ctx, "launch", fmt.Sprintf("req-%d", n), have, waitingroom.JoinFrom(client))
	}
	var first waitingroom.Ticket
	for i, s := range []*waitingroom.Store{a, b, a} {
		j, err := join(s, "10.0.0.1", nil)
		if err != nil {
			e.t.Fatalf("join %d of the burst: %v", i+1, err)
		}
		if i == 0 {
			first = j.Ticket
		}
	}
	tail := e.status(a, "launch").Tail
	_, err := join(b, "10.0.0.1", nil)
	var rl *waitingroom.RateLimitedError
	if !errors.As(err, &rl) || !errors.Is(err, waitingroom.ErrRateLimited) || !about(rl.RetryAfter, 10*time.Second) {
		e.t.Fatalf("join past the burst: %v", err)
	}
	if got := e.status(a, "launch").Tail; got != tail {
		e.t.Fatalf("a refused join took a place: tail %d -> %d", tail, got)
	}
	if _, err := join(a, "10.0.0.2", nil); err != nil {
		e.t.Fatalf("another client: %v", err)
	}
	if _, err := join(a, "", nil); err != nil {
		e.t.Fatalf("a client without a name: %v", err)
	}
	if j, err := join(a, "10.0.0.1", &first); err != nil || j.New {
		e.t.Fatalf("a visitor coming back with their ticket: %+v %v", j, err)
	}
	e.clock.Add(9 * time.Second)
	if _, err := join(a, "10.0.0.1", nil); !errors.As(err, &rl) || !about(rl.RetryAfter, time.Second) {
		e.t.Fatalf("9 s later: %v", err)
	}
	e.clock.Add(time.Second)
	if _, err := join(a, "10.0.0.1", nil); err != nil {
		e.t.Fatalf("10 s later: %v", err)
	}
	if _, err := join(a, "10.0.0.1", nil); !errors.Is(err, waitingroom.ErrRateLimited) {
		e.t.Fatalf("twice in one interval: %v", err)
	}
	// Two windows on, the client's state has run out and the keys expire:
	// a burst again.
	e.clock.Add(3 * time.Minute)
	for i := range 3 {
		if _, err := join(b, "10.0.0.1", nil); err != nil {
			e.t.Fatalf("join %d of a new burst: %v", i+1, err)
		}
	}
	for _, k := range e.keysOf() {
		if !strings.Contains(k, ":ip:") {
			continue
		}
		if ttl, err := e.rdb.PTTL(e.ctx, k).Result(); err != nil || ttl <= 0 || ttl > 2*time.Minute {
			e.t.Fatalf("limit window %s: ttl %v %v", k, ttl, err)
		}
	}
}

// testLoginsPerTicket: a ticket binds at most so many requests, through a
// join or an admission; binding again a request it holds is free, and a
// visitor with one login keeps no counter at all.
func testLoginsPerTicket(e *env) {
	s := e.limitedStore(waitingroom.WithLoginsPerTicket(3))
	t := e.join(s, "launch", "login-1", nil).Ticket
	for _, k := range e.keysOf() {
		if strings.Contains(k, ":n:") {
			e.t.Fatalf("a visitor with one login has a counter: %s", k)
		}
	}
	for _, req := range []string{"login-2", "login-3", "login-1", "login-2"} {
		if _, err := s.Join(e.ctx, "launch", req, &t); err != nil {
			e.t.Fatalf("%s: %v", req, err)
		}
	}
	if _, err := s.Join(e.ctx, "launch", "login-4", &t); !errors.Is(err, waitingroom.ErrTooManyLogins) {
		e.t.Fatalf("a fourth login: %v", err)
	}
	e.advance(s, "launch", 1)
	if _, err := s.Admit(e.ctx, t, "login-5"); !errors.Is(err, waitingroom.ErrTooManyLogins) {
		e.t.Fatalf("a fifth login straight to admission: %v", err)
	}
	if _, err := s.Admit(e.ctx, t, "login-3"); err != nil {
		e.t.Fatalf("admission for a bound login: %v", err)
	}
	var counters []string
	for _, k := range e.keysOf() {
		if strings.Contains(k, ":n:") {
			counters = append(counters, k)
		}
	}
	if len(counters) != 1 {
		e.t.Fatalf("counters %v, want one for the ticket", counters)
	}
	if ttl, err := e.rdb.PTTL(e.ctx, counters[0]).Result(); err != nil || ttl <= 0 || ttl > 30*time.Minute {
		e.t.Fatalf("counter ttl %v %v: it must die with the ticket (max wait 30m)", ttl, err)
	}
	// Another ticket is not held back by this one's logins.
	u := e.join(s, "launch", "other-1", nil).Ticket
	if _, err := s.Join(e.ctx, "launch", "other-2", &u); err != nil {
		e.t.Fatalf("another ticket: %v", err)
	}
}
