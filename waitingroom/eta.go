package waitingroom

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// The measured admission rate: how fast a room's serving counter has really
// moved, throttling, abandonment and admin advances included, rather than
// what the policy says. Each instance measures it on its own from the
// counters its Cache reads anyway, so it costs Redis nothing and survives
// nothing: a restarted instance falls back to the configured rate until it
// has seen enough.
const (
	// rateWindow is how far back the measured rate looks.
	rateWindow = 5 * time.Minute
	// minRateHistory is how long visitors must have been seen waiting
	// within the window before the measured rate replaces the configured
	// one: over less, a room admitting a few a minute would swing wildly.
	minRateHistory = 10 * time.Second
	// maxETASeconds bounds an ETA (about 34,000 years), so that a tiny
	// rate cannot overflow it.
	maxETASeconds = 1 << 40
)

// rateSample is a room's counters as one refresh saw them, with running
// totals since the meter's first sample.
type rateSample struct {
	at            time.Time
	serving, tail int64
	// busy is the time during which visitors were waiting; advanced is how
	// far serving moved during that time.
	busy     time.Duration
	advanced int64
}

// rateMeter measures how fast one room's serving counter advances while
// visitors wait, over a sliding window. Only intervals that begin with
// someone waiting count, time and advance alike: an empty room's counter
// cannot move, and admissions by the safety net are no queue moving.
// It is not safe for concurrent use.
type rateMeter struct {
	window, minHistory time.Duration
	// minGap is the least time between two kept samples: the newest
	// sample is replaced, not kept, while it is closer than that to the
	// one before it, so refreshes called more often than the cache's
	// interval (admin actions) cannot fill the ring.
	minGap time.Duration
	ring   []rateSample
	head   int // index of the oldest sample
	n      int
	// state and policy are what the samples were taken under: the past
	// says nothing about the future once an admin changed either.
	state  State
	policy Policy
}

func newRateMeter(window, minHistory, interval time.Duration) *rateMeter {
	gap := interval / 2
	size := int(window/max(gap, time.Millisecond)) + 3
	return &rateMeter{window: window, minHistory: minHistory, minGap: gap, ring: make([]rateSample, size)}
}

func (m *rateMeter) sample(i int) *rateSample { return &m.ring[(m.head+i)%len(m.ring)] }

func (m *rateMeter) reset() { m.head, m.n = 0, 0 }

// add records the counters c as read at time at.
func (m *rateMeter) add(at time.Time, c Counters) {
	if c.State != m.state || c.Policy != m.policy {
		m.reset()
		m.state, m.policy = c.State, c.Policy
	}
	if m.n > 0 {
		last := m.sample(m.n - 1)
		switch {
		case at.Before(last.at):
			// A refresh that read Redis before the last one but got here
			// after it: it has nothing newer to say.
			return
		case c.Serving < last.serving:
			// The counter went back: Redis lost the room. The history
			// no longer compares.
			m.reset()
		}
	}
	if m.n >= 2 && m.sample(m.n-1).at.Sub(m.sample(m.n-2).at) < m.minGap {
		// The newest sample came too soon after the one before it:
		// this one replaces it.
		m.n--
	}
	s := rateSample{at: at, serving: c.Serving, tail: c.Tail}
	if m.n > 0 {
		prev := m.sample(m.n - 1)
		s.busy, s.advanced = prev.busy, prev.advanced
		if prev.tail > prev.serving {
			s.busy += at.Sub(prev.at)
			s.advanced += max(0, c.Serving-prev.serving)
		}
	}
	if m.n == len(m.ring) {
		m.head = (m.head + 1) % len(m.ring)
		m.n--
	}
	*m.sample(m.n) = s
	m.n++
	// Keep one sample at or before the window's start, so that a room
	// busy all along has a whole window of history.
	for m.n >= 2 && !m.sample(1).at.After(at.Add(-m.window)) {
		m.head = (m.head + 1) % len(m.ring)
		m.n--
	}
}

// rate returns the visitors admitted per minute while visitors waited over
// the window, and false when it does not know yet: less than minHistory
// of waiting seen, or a counter that has not moved but has not stood still
// for a whole window either. A counter that stood still for the whole
// window while visitors waited has rate 0.
func (m *rateMeter) rate() (float64, bool) {
	if m.n < 2 {
		return 0, false
	}
	first, last := m.sample(0), m.sample(m.n-1)
	busy := last.busy - first.busy
	advanced := last.advanced - first.advanced
	switch {
	case busy < m.minHistory:
		return 0, false
	case advanced == 0 && busy < m.window:
		return 0, false
	}
	return float64(advanced) / busy.Minutes(), true
}

// roomRate is one room's meter in a Cache and its last result, which
// status polls read without taking the lock.
type roomRate struct {
	mu    sync.Mutex
	meter *rateMeter
	last  atomic.Pointer[measuredRate]
}

type measuredRate struct {
	perMinute float64
	known     bool
}

func (r *roomRate) add(at time.Time, c Counters) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.meter.add(at, c)
	perMinute, known := r.meter.rate()
	r.last.Store(&measuredRate{perMinute, known})
}

// etaSeconds is n visitors' wait at rate per minute, rounded up.
func etaSeconds(n int64, rate float64) int64 {
	s := math.Ceil(float64(max(n, 0)) * 60 / rate)
	return int64(min(s, maxETASeconds))
}
