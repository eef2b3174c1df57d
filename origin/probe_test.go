package origin_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anteroom/anteroom/origin"
)

// fakeClock is the prober's clock: a probe's latency is what the test
// advanced it by while the origin was answering.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Behaviours of the test origin.
const (
	fast   = "200 fast"
	slow   = "200 slow"
	broken = "500"
	hang   = "no answer"
)

// testOrigin is an origin whose behaviour the test switches between probes.
// A slow answer blocks until the test has moved the prober's clock past
// the latency budget: no sleeping, and the latency is exactly known.
type testOrigin struct {
	*httptest.Server
	mode    atomic.Pointer[string]
	clock   *fakeClock
	advance time.Duration
	hits    atomic.Int64
}

func newTestOrigin(t *testing.T, clock *fakeClock, slowBy time.Duration) *testOrigin {
	o := &testOrigin{clock: clock, advance: slowBy}
	o.set(fast)
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.hits.Add(1)
		if got := r.Header.Get("User-Agent"); got != "anteroom-origin-probe" {
			t.Errorf("User-Agent %q", got)
		}
		switch *o.mode.Load() {
		case slow:
			// The answer takes longer than the budget: the clock moves
			// on while the request is in flight.
			o.clock.Add(o.advance)
			w.WriteHeader(http.StatusOK)
		case broken:
			http.Error(w, "down", http.StatusInternalServerError)
		case hang:
			<-r.Context().Done()
		default:
			_, _ = w.Write([]byte("ok"))
		}
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *testOrigin) set(mode string) { o.mode.Store(&mode) }

// logCount counts the prober's log lines.
type logCount struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logCount) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logCount) lines() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.buf.String(), "origin health changed")
}

func target(u string) origin.Target {
	return origin.Target{Room: "launch", URL: u, Interval: 5 * time.Second, Timeout: 2 * time.Second, MaxLatency: time.Second}
}

func newProber(t *testing.T, clock *fakeClock, logs *logCount, targets ...origin.Target) *origin.Prober {
	t.Helper()
	p, err := origin.New(targets, origin.WithClock(clock.Now), origin.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestProberStatesAndHysteresis(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_750_000_000, 0)}
	srv := newTestOrigin(t, clock, 1500*time.Millisecond)
	logs := &logCount{}
	p := newProber(t, clock, logs, target(srv.URL))

	if st, ok := p.Status("launch"); !ok || st.State != origin.Unknown || !st.CheckedAt.IsZero() {
		t.Fatalf("before the first probe: %+v %v", st, ok)
	}
	if f := p.Factor("launch"); f != 1 {
		t.Fatalf("factor before the first probe = %v, want 1", f)
	}
	steps := []struct {
		origin  string
		state   origin.State
		factor  float64
		latency time.Duration
		err     string
	}{
		{fast, origin.Healthy, 1, 0, ""},
		{slow, origin.Slow, 0.5, 1500 * time.Millisecond, ""}, // worse: at once
		{fast, origin.Slow, 0.5, 0, ""},                       // better: 1 of 2
		{slow, origin.Slow, 0.5, 1500 * time.Millisecond, ""}, // the streak is broken
		{broken, origin.Failing, 0, 0, "status 500"},          // worse: at once
		{fast, origin.Failing, 0, 0, ""},                      // 1 of 2
		{broken, origin.Failing, 0, 0, "status 500"},          // broken streak
		{fast, origin.Failing, 0, 0, ""},                      // 1 of 2
		{fast, origin.Healthy, 1, 0, ""},                      // 2 of 2: recovered
		{broken, origin.Failing, 0, 0, "status 500"},          // worse: at once
		{fast, origin.Failing, 0, 0, ""},                      // 1 of 2
		{slow, origin.Slow, 0.5, 1500 * time.Millisecond, ""}, // 2 of 2: the worse of the two
		{fast, origin.Slow, 0.5, 0, ""},                       // 1 of 2
		{fast, origin.Healthy, 1, 0, ""},                      // 2 of 2
		{fast, origin.Healthy, 1, 0, ""},                      // no change
	}
	changes := 0
	prev := origin.Unknown
	for i, s := range steps {
		srv.set(s.origin)
		before := clock.Now()
		p.Check(t.Context())
		st, _ := p.Status("launch")
		if st.State != s.state || st.Latency != s.latency || st.Err != s.err {
			t.Fatalf("step %d (%s): state %s latency %s err %q, want %s %s %q",
				i, s.origin, st.State, st.Latency, st.Err, s.state, s.latency, s.err)
		}
		if f := p.Factor("launch"); f != s.factor {
			t.Fatalf("step %d (%s): factor %v, want %v", i, s.origin, f, s.factor)
		}
		if want := before.Add(s.latency); !st.CheckedAt.Equal(want) {
			t.Fatalf("step %d: checked at %s, want %s", i, st.CheckedAt, want)
		}
		if st.State != prev {
			changes++
		}
		prev = st.State
	}
	if got := logs.lines(); got != changes {
		t.Fatalf("%d log lines for %d state changes; each probe must be logged only on a change:\n%s", got, changes, logs.buf.String())
	}
	if n := srv.hits.Load(); n != int64(len(steps)) {
		t.Fatalf("origin got %d probes, want %d", n, len(steps))
	}
}

func TestProberTimeout(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_750_000_000, 0)}
	srv := newTestOrigin(t, clock, 0)
	srv.set(hang) // never answers: the probe's own timeout ends it
	tg := target(srv.URL)
	tg.Timeout = 20 * time.Millisecond
	p := newProber(t, clock, &logCount{}, tg)
	p.Check(t.Context())
	st, _ := p.Status("launch")
	if st.State != origin.Failing || p.Factor("launch") != 0 || st.Err != "no answer within 20ms" {
		t.Fatalf("origin that never answers: %+v", st)
	}
}

func TestProberConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	clock := &fakeClock{now: time.Unix(1_750_000_000, 0)}
	p := newProber(t, clock, &logCount{}, target("http://"+addr+"/health"))
	p.Check(t.Context())
	st, _ := p.Status("launch")
	if st.State != origin.Failing || p.Factor("launch") != 0 || !strings.Contains(st.Err, "refused") {
		t.Fatalf("refused connection: %+v", st)
	}
}

func TestProberOtherStatusesFail(t *testing.T) {
	for _, code := range []int{http.StatusNotFound, http.StatusServiceUnavailable, http.StatusNotModified} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }))
		p := newProber(t, &fakeClock{}, &logCount{}, target(srv.URL))
		p.Check(t.Context())
		if st, _ := p.Status("launch"); st.State != origin.Failing {
			t.Errorf("status %d: %s, want failing", code, st.State)
		}
		srv.Close()
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer srv.Close()
	p := newProber(t, &fakeClock{}, &logCount{}, target(srv.URL))
	p.Check(t.Context())
	if st, _ := p.Status("launch"); st.State != origin.Healthy {
		t.Errorf("status 204: %s, want healthy", st.State)
	}
}

func TestProberRoomsWithoutTarget(t *testing.T) {
	p, err := origin.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Status("launch"); ok {
		t.Fatal("status of a room without a target")
	}
	if f := p.Factor("launch"); f != 1 {
		t.Fatalf("factor of a room without a target = %v, want 1", f)
	}
	p.Check(t.Context()) // nothing to do
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	p.Run(ctx) // returns at once
}

func TestProberRunProbesUntilCancelled(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_750_000_000, 0)}
	srv := newTestOrigin(t, clock, 0)
	srv.set(broken)
	tg := target(srv.URL)
	tg.Interval, tg.Timeout = 10*time.Millisecond, 10*time.Millisecond
	p := newProber(t, clock, &logCount{}, tg)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for srv.hits.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d probes in 10s", srv.hits.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st, _ := p.Status("launch"); st.State != origin.Failing {
		t.Fatalf("state %s, want failing", st.State)
	}
	cancel()
	<-done
	// After Run returned nothing probes any more (a probe cut short by the
	// cancellation is not recorded as the origin failing).
	n := srv.hits.Load()
	p.Check(t.Context())
	if srv.hits.Load() != n+1 {
		t.Fatalf("hits %d after one Check, want %d", srv.hits.Load(), n+1)
	}
}

func TestNewRejectsBadTargets(t *testing.T) {
	good := target("https://shop.example.com/health")
	cases := map[string]func(*origin.Target){
		"relative url":       func(t *origin.Target) { t.URL = "/health" },
		"other scheme":       func(t *origin.Target) { t.URL = "ftp://shop.example.com/" },
		"no room":            func(t *origin.Target) { t.Room = "" },
		"zero interval":      func(t *origin.Target) { t.Interval = 0 },
		"zero max latency":   func(t *origin.Target) { t.MaxLatency = 0 },
		"timeout > interval": func(t *origin.Target) { t.Timeout = 2 * t.Interval },
	}
	for name, mutate := range cases {
		tg := good
		mutate(&tg)
		if _, err := origin.New([]origin.Target{tg}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := origin.New([]origin.Target{good, good}); err == nil {
		t.Error("two targets for one room: no error")
	}
	if _, err := origin.New([]origin.Target{good}); err != nil {
		t.Errorf("good target: %v", err)
	}
}
