package origin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Target is one room's origin check, as rooms[].origin_health configures it.
type Target struct {
	// Room is the id of the room whose admission the origin's health throttles.
	Room string
	// URL is fetched with GET; any 2xx answer within MaxLatency is healthy.
	URL string
	// Interval is the time between two probes.
	Interval time.Duration
	// Timeout bounds one probe; a probe that has not had its response
	// headers by then is failing. It is at most Interval.
	Timeout time.Duration
	// MaxLatency is the slowest 2xx answer that still counts as healthy;
	// a slower one is slow.
	MaxLatency time.Duration
}

func (t Target) validate() error {
	u, err := url.Parse(t.URL)
	switch {
	case t.Room == "":
		return errors.New("origin target without a room")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("room %q: origin url %q is not an absolute http(s) URL", t.Room, t.URL)
	case t.Interval <= 0 || t.Timeout <= 0 || t.MaxLatency <= 0:
		return fmt.Errorf("room %q: origin interval, timeout and max latency must be positive", t.Room)
	case t.Timeout > t.Interval:
		return fmt.Errorf("room %q: origin timeout %s is longer than the interval %s", t.Room, t.Timeout, t.Interval)
	}
	return nil
}

// Status is what a room's probes have found.
type Status struct {
	// State is the room's state after hysteresis, not necessarily the last
	// probe's outcome: a failing origin stays failing until RecoverAfter
	// good probes in a row.
	State State
	// Latency is the last probe's time to its response headers, or to its
	// failure. Zero before the first probe.
	Latency time.Duration
	// CheckedAt is when the last probe ended; zero before the first.
	CheckedAt time.Time
	// Err says why the last probe failed ("status 503", a timeout), or is
	// empty.
	Err string
}

// Prober probes every target on its own interval. Its methods are safe for
// concurrent use; Factor is what waitingroom.Scheduler.Throttle calls.
type Prober struct {
	targets []Target
	client  *http.Client
	now     func() time.Time
	log     *slog.Logger

	mu    sync.Mutex
	rooms map[string]*room
}

type room struct {
	health health
	status Status
}

// Option changes a Prober's defaults.
type Option func(*Prober)

// WithClock makes the prober read time from now: the latency of a probe is
// the difference of two readings, so a test decides how slow an answer was.
func WithClock(now func() time.Time) Option { return func(p *Prober) { p.now = now } }

// WithClient makes the prober send its requests with c. Timeouts come from
// each target, through the request's context.
func WithClient(c *http.Client) Option { return func(p *Prober) { p.client = c } }

// WithLogger makes the prober log state changes to l (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(p *Prober) { p.log = l } }

// New returns a prober of targets, at most one per room. Every room starts
// Unknown, which throttles nothing, until its first probe.
func New(targets []Target, opts ...Option) (*Prober, error) {
	p := &Prober{now: time.Now, rooms: make(map[string]*room, len(targets))}
	for _, o := range opts {
		o(p)
	}
	if p.client == nil {
		p.client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	for _, t := range targets {
		if err := t.validate(); err != nil {
			return nil, err
		}
		if _, dup := p.rooms[t.Room]; dup {
			return nil, fmt.Errorf("room %q: more than one origin target", t.Room)
		}
		p.rooms[t.Room] = &room{health: newHealth(), status: Status{State: Unknown}}
		p.targets = append(p.targets, t)
	}
	return p, nil
}

// Status returns what room's probes have found; false for a room without
// a target.
func (p *Prober) Status(room string) (Status, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.rooms[room]
	if !ok {
		return Status{}, false
	}
	return r.status, true
}

// Factor is the share of its configured admission rate room may use now:
// its state's Factor, and 1 for a room without a target.
func (p *Prober) Factor(room string) float64 {
	st, ok := p.Status(room)
	if !ok {
		return 1
	}
	return st.State.Factor()
}

// Check probes every target once, concurrently, and returns when all have
// answered or timed out.
func (p *Prober) Check(ctx context.Context) {
	var wg sync.WaitGroup
	for _, t := range p.targets {
		wg.Go(func() { p.check(ctx, t) })
	}
	wg.Wait()
}

// Run probes every target at once and then every its interval, until ctx
// is done.
func (p *Prober) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, t := range p.targets {
		wg.Go(func() {
			tick := time.NewTicker(t.Interval)
			defer tick.Stop()
			for {
				p.check(ctx, t)
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		})
	}
	wg.Wait()
}

// check probes t once and records the outcome, unless ctx ended first
// (shutting down says nothing about the origin).
func (p *Prober) check(ctx context.Context, t Target) {
	probe, latency, why := p.probe(ctx, t)
	if ctx.Err() != nil {
		return
	}
	p.mu.Lock()
	r := p.rooms[t.Room]
	from := r.health.state
	changed := r.health.observe(probe)
	r.status = Status{State: r.health.state, Latency: latency, CheckedAt: p.now(), Err: why}
	to := r.status.State
	p.mu.Unlock()
	if !changed {
		return
	}
	attrs := []any{"room", t.Room, "url", t.URL, "from", string(from), "to", string(to), "latency", latency}
	if why != "" {
		attrs = append(attrs, "err", why)
	}
	if to == Healthy {
		p.log.Info("origin health changed", attrs...)
	} else {
		p.log.Warn("origin health changed", attrs...)
	}
}

// probe sends one GET and classifies the answer. The latency is measured
// to the response headers; the body is drained (a little of it) so the
// connection can be reused.
func (p *Prober) probe(ctx context.Context, t Target) (State, time.Duration, string) {
	ctx, cancel := context.WithTimeout(ctx, t.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.URL, nil)
	if err != nil {
		return Failing, 0, err.Error()
	}
	req.Header.Set("User-Agent", "anteroom-origin-probe")
	start := p.now()
	resp, err := p.client.Do(req)
	latency := p.now().Sub(start)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return Failing, latency, fmt.Sprintf("no answer within %s", t.Timeout)
		}
		return Failing, latency, err.Error()
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return Failing, latency, fmt.Sprintf("status %d", resp.StatusCode)
	case latency > t.MaxLatency:
		return Slow, latency, ""
	}
	return Healthy, latency, ""
}
