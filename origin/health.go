// Package origin watches the health of the sites that rooms protect. A
// Prober sends each configured room's health URL a GET every interval and
// turns the answers into a state (healthy, slow, failing) with hysteresis,
// and the state into a factor of the room's admission rate, which the
// scheduler applies through waitingroom.Scheduler.Throttle: a struggling
// site gets fewer new visitors, a failing one none, until it recovers.
//
// It is a package of its own, not part of waitingroom, because it speaks
// HTTP (as a client) and waitingroom must not import net/http; and it keeps
// its state in the process, not in Redis: every instance probes for itself.
package origin

// State is a room's origin health as its probes have seen it.
type State string

// Origin states, as in the room status JSON.
const (
	// Unknown is the state before the first probe has answered; it
	// throttles nothing.
	Unknown State = "unknown"
	// Healthy: the origin answered 2xx within the room's max latency.
	Healthy State = "healthy"
	// Slow: the origin answered 2xx, but slower than the max latency.
	Slow State = "slow"
	// Failing: the origin did not answer 2xx within the timeout.
	Failing State = "failing"
)

// Factor is the share of its configured admission rate a room gets in this
// state: 1 healthy (or not probed yet), 0.5 slow, 0 failing.
func (s State) Factor() float64 {
	switch s {
	case Slow:
		return 0.5
	case Failing:
		return 0
	}
	return 1
}

// rank orders the states from worst (failing) to best (healthy).
func (s State) rank() int {
	switch s {
	case Failing:
		return 0
	case Slow:
		return 1
	}
	return 2
}

// RecoverAfter is how many consecutive probes better than the current state
// it takes to move to a better state. Getting worse takes one: a failing
// site should stop receiving visitors at once, but one lucky answer from a
// struggling site should not let a crowd in.
const RecoverAfter = 2

// health is one room's state machine. It is not safe for concurrent use.
type health struct {
	state State
	// streak counts the consecutive probes better than state; pending is
	// the worst of them, which is where a recovery leads.
	streak  int
	pending State
}

func newHealth() health { return health{state: Unknown} }

// observe records one probe's outcome and reports whether the state changed.
// A probe as good as the state or worse sets the state at once (the first
// probe always does); a better one moves the state only as the
// RecoverAfter-th in a row, and then to the worst of that streak.
func (h *health) observe(probe State) bool {
	if h.state == Unknown || probe.rank() <= h.state.rank() {
		h.streak = 0
		changed := probe != h.state
		h.state = probe
		return changed
	}
	if h.streak == 0 || probe.rank() < h.pending.rank() {
		h.pending = probe
	}
	h.streak++
	if h.streak < RecoverAfter {
		return false
	}
	h.state, h.streak = h.pending, 0
	return true
}
