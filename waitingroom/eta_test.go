package waitingroom

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// These tests are inside the package: the rate meter is not exported, and
// its math is what they are about. They need no redis-server.

var etaT0 = time.UnixMilli(1_750_000_000_000)

const tick = 500 * time.Millisecond

// meterRun feeds a rate meter samples as a Cache refreshing every 500 ms
// would, on a clock of its own.
type meterRun struct {
	t *testing.T
	m *rateMeter
	c Counters
	// at is the time of the next sample.
	at time.Time
}

func newMeterRun(t *testing.T, rate float64) *meterRun {
	r := &meterRun{t: t, m: newRateMeter(rateWindow, minRateHistory, tick), at: etaT0,
		c: Counters{State: StateOpen, Policy: Policy{RatePerMinute: rate}, Serving: 0, Tail: 1_000_000}}
	r.sample()
	return r
}

func (r *meterRun) sample() {
	r.at = r.at.Add(tick)
	r.m.add(r.at, r.c)
}

// run advances serving by perTick at every 500 ms sample for d.
func (r *meterRun) run(d time.Duration, perTick int64) {
	for range int(d / tick) {
		r.c.Serving += perTick
		r.sample()
	}
}

func (r *meterRun) want(what string, perMinute float64, known bool) {
	r.t.Helper()
	got, ok := r.m.rate()
	if ok != known || (known && math.Abs(got-perMinute) > 1e-9) {
		r.t.Fatalf("%s: rate %v (known %v), want %v (known %v)", what, got, ok, perMinute, known)
	}
}

func TestRateSteady(t *testing.T) {
	r := newMeterRun(t, 60)
	r.run(9500*time.Millisecond, 5)
	r.want("9.5 s of history", 0, false)
	r.run(tick, 5)
	r.want("10 s of history", 600, true) // 5 per 500 ms
	r.run(10*time.Minute, 5)
	r.want("10 min", 600, true)
	if r.m.n > len(r.m.ring) || r.m.sample(r.m.n-1).at.Sub(r.m.sample(0).at) != rateWindow {
		t.Fatalf("the ring spans %s, want the window %s", r.m.sample(r.m.n-1).at.Sub(r.m.sample(0).at), rateWindow)
	}
}

func TestRateChangeWithinWindow(t *testing.T) {
	r := newMeterRun(t, 600)
	r.run(4*time.Minute, 5) // 600/min
	r.want("4 min at 600", 600, true)
	r.run(time.Minute, 1) // then 120/min
	// The window is the last 5 min: 4 at 600 and 1 at 120.
	r.want("4 min at 600, 1 at 120", (4*600+120)/5.0, true)
	r.run(2*time.Minute, 1)
	r.want("2 min at 600, 3 at 120", (2*600+3*120)/5.0, true)
	r.run(3*time.Minute, 1)
	r.want("5 min at 120", 120, true)
}

func TestRateIdleRoom(t *testing.T) {
	// Visitors wait and the counter does not move (an origin failing, an
	// admin who forgot a manual room).
	r := newMeterRun(t, 60)
	r.run(time.Minute, 0)
	r.want("a still counter for less than a window", 0, false)
	r.run(4*time.Minute-tick, 0)
	r.want("a still counter just short of a window", 0, false)
	r.run(tick, 0)
	r.want("a still counter for a whole window", 0, true)
	// It moves again: one visitor in the last 5 minutes.
	r.run(tick, 1)
	r.want("one admission in the window", 1/rateWindow.Minutes(), true)
}

func TestRateIgnoresTimeNobodyWaits(t *testing.T) {
	r := newMeterRun(t, 60)
	r.c.Tail = 0
	// Nobody waits; the safety net lets each arrival straight in.
	for range 600 {
		r.c.Serving++
		r.c.Tail++
		r.sample()
	}
	r.want("an empty room", 0, false)
	// A queue forms and moves at 120/min.
	r.c.Tail += 1000
	r.run(30*time.Second, 1)
	r.want("30 s of queue after 5 min of empty room", 120, true)
}

func TestRateRestartHasNoHistory(t *testing.T) {
	r := newMeterRun(t, 60)
	r.run(time.Minute, 5)
	r.want("before the restart", 600, true)
	// A new instance (or a restarted one) knows nothing yet.
	r2 := newMeterRun(t, 60)
	r2.c = r.c
	r2.sample()
	r2.want("after a restart", 0, false)
}

func TestRateResetsWhenAdminChangesTheRoom(t *testing.T) {
	r := newMeterRun(t, 600)
	r.run(time.Minute, 5)
	r.c.Policy.RatePerMinute = 60
	r.sample()
	r.want("after a policy change", 0, false)
	r.run(time.Minute, 5)
	r.c.State = StatePaused
	r.run(time.Minute, 0)
	r.want("paused", 0, false)
	r.c.State = StateOpen
	r.run(5*time.Second, 1)
	r.want("5 s after resuming", 0, false)
	// Redis lost the room: the counter starts again from 0.
	r.run(time.Minute, 1)
	r.want("a minute after resuming", 120, true)
	r.c.Serving = 0
	r.sample()
	r.want("after Redis lost the counter", 0, false)
}

func TestRateFrequentRefreshesKeepTheWindow(t *testing.T) {
	m := newRateMeter(rateWindow, minRateHistory, tick)
	c := Counters{State: StateOpen, Tail: 1_000_000}
	at := etaT0
	// Refreshed every 50 ms (admin actions on top of the cache's own),
	// admitting 2 a second, for 10 minutes.
	for i := range 12_000 {
		at = at.Add(50 * time.Millisecond)
		c.Serving = int64(i+1) / 10
		m.add(at, c)
	}
	if span := m.sample(m.n - 1).at.Sub(m.sample(0).at); span < rateWindow {
		t.Fatalf("the ring spans %s, want the whole window %s", span, rateWindow)
	}
	if got, ok := m.rate(); !ok || math.Abs(got-120) > 0.5 {
		t.Fatalf("rate %v (known %v), want 120", got, ok)
	}
	// A refresh that read Redis before the newest sample is dropped.
	n, last := m.n, *m.sample(m.n - 1)
	m.add(at.Add(-time.Second), Counters{State: StateOpen, Serving: c.Serving - 2, Tail: c.Tail})
	if m.n != n || *m.sample(m.n - 1) != last {
		t.Fatal("an out-of-order sample was kept")
	}
}

// clock is a settable clock for the cache tests.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func miniStore(t *testing.T, clk *clock, rooms ...Room) *Store {
	t.Helper()
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { rdb.Close() })
	s, err := NewStore(rdb, rooms, WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Seed(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

func etaRoom(rate float64, maxWait time.Duration) Room {
	return Room{ID: "launch", Name: "launch", State: StateOpen, Policy: Policy{RatePerMinute: rate},
		SessionTTL: 10 * time.Minute, MaxWait: maxWait}
}

func joinN(t *testing.T, s *Store, n int) []Ticket {
	t.Helper()
	out := make([]Ticket, n)
	for i := range out {
		j, err := s.Join(t.Context(), "launch", fmt.Sprintf("request-%d", i), nil)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = j.Ticket
	}
	return out
}

// TestCacheETAUsesTheMeasuredRate runs a room configured at 60/min whose
// scheduler is throttled to half: after enough history the cache's rate and
// every ETA follow the 30/min the counter really moves at.
func TestCacheETAUsesTheMeasuredRate(t *testing.T) {
	ctx := context.Background()
	clk := &clock{now: etaT0}
	room := etaRoom(60, time.Hour)
	s := miniStore(t, clk, room)
	cache := NewCache(s, tick)
	sc := NewScheduler(s, "test", tick)
	sc.Throttle = func(string) float64 { return 0.5 }
	tickets := joinN(t, s, 200)
	last := tickets[len(tickets)-1]

	refresh := func() {
		t.Helper()
		if err := cache.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	refresh()
	if _, ok := cache.MeasuredRate("launch"); ok {
		t.Fatal("a measured rate without history")
	}
	if got := cache.Rate("launch"); got != 60 {
		t.Fatalf("rate without history = %v, want the configured 60", got)
	}
	c, _ := cache.Get("launch")
	st := StatusOf(last, room, c, cache.Rate("launch"), clk.Now())
	if want := etaSeconds(last.Position-c.Serving, 60); st.ETASeconds == nil || *st.ETASeconds != want {
		t.Fatalf("eta before history = %v, want %d (configured rate)", st.ETASeconds, want)
	}
	for range 240 { // two minutes
		clk.Add(tick)
		if err := sc.Step(ctx); err != nil {
			t.Fatal(err)
		}
		refresh()
	}
	got, ok := cache.MeasuredRate("launch")
	if !ok || math.Abs(got-30) > 0.6 {
		t.Fatalf("measured rate %v (known %v), want about 30/min", got, ok)
	}
	if cache.Rate("launch") != got {
		t.Fatalf("Rate = %v, want the measured %v", cache.Rate("launch"), got)
	}
	c, _ = cache.Get("launch")
	st = StatusOf(last, room, c, cache.Rate("launch"), clk.Now())
	if want := etaSeconds(last.Position-c.Serving, got); st.ETASeconds == nil || *st.ETASeconds != want {
		t.Fatalf("eta = %v, want %d (at the measured %v/min)", st.ETASeconds, want, got)
	}
	if unknown := cache.Rate("nowhere"); unknown != 0 {
		t.Fatalf("rate of an unknown room = %v", unknown)
	}
}

// TestCacheStillRoomHasNoETA: the origin fails (throttle 0) and the counter
// stands still while visitors wait; after a whole window the ETA is
// unknown, not infinite, and the room is not called full.
func TestCacheStillRoomHasNoETA(t *testing.T) {
	ctx := context.Background()
	clk := &clock{now: etaT0}
	room := etaRoom(60, time.Hour)
	s := miniStore(t, clk, room)
	cache := NewCache(s, tick)
	sc := NewScheduler(s, "test", tick)
	sc.Throttle = func(string) float64 { return 0 }
	tickets := joinN(t, s, 20)
	for range int(rateWindow/tick) + 1 {
		clk.Add(tick)
		if err := sc.Step(ctx); err != nil {
			t.Fatal(err)
		}
		if err := cache.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got, ok := cache.MeasuredRate("launch"); !ok || got != 0 {
		t.Fatalf("measured rate %v (known %v), want 0", got, ok)
	}
	c, _ := cache.Get("launch")
	st := StatusOf(tickets[len(tickets)-1], room, c, cache.Rate("launch"), clk.Now())
	if st.State != VisitorWaiting || st.ETASeconds != nil || st.QueueFull {
		t.Fatalf("still room: %+v, want waiting with no eta and not full", st)
	}
}

func TestQueueFullFlipsWhenETACrossesMaxWait(t *testing.T) {
	room := etaRoom(60, 10*time.Minute) // 600 s
	c := Counters{State: StateOpen, Policy: room.Policy, Serving: 100, Tail: 100}
	cases := []struct {
		waiting int64
		rate    float64
		full    bool
	}{
		{0, 60, false},
		{598, 60, false}, // a new arrival: 599 s
		{599, 60, false}, // 600 s: exactly the max wait still fits
		{600, 60, true},  // 601 s
		{600, 120, false},
		{5000, 60, true},
		{1199, 120, false}, // 600 s
		{1200, 120, true},  // 600.5 s, rounded up to 601
		{5000, 0, false},   // no rate: no ETA, never full
	}
	for _, tc := range cases {
		c.Tail = c.Serving + tc.waiting
		if got := QueueFull(room, c, tc.rate); got != tc.full {
			t.Errorf("%d waiting at %v/min: full %v, want %v", tc.waiting, tc.rate, got, tc.full)
		}
		tk := Ticket{Room: "launch", Position: c.Serving + 1, JoinedAt: etaT0}
		if st := StatusOf(tk, room, c, tc.rate, etaT0); st.QueueFull != tc.full {
			t.Errorf("%d waiting at %v/min: visitor's queue_full %v, want %v", tc.waiting, tc.rate, st.QueueFull, tc.full)
		}
	}
	// A falling measured rate fills a room whose queue did not grow.
	c.Tail = c.Serving + 300
	if QueueFull(room, c, 60) || !QueueFull(room, c, 29) {
		t.Error("a rate falling from 60 to 29/min with 300 waiting must fill a room of 10 min")
	}
	for _, st := range []State{StatePaused, StateClosed} {
		c.State = st
		if QueueFull(room, c, 1) {
			t.Errorf("a %s room is full", st)
		}
	}
}
