package waitingroom

import (
	"math"
	"time"
)

// VisitorState is what a visitor's page shows.
type VisitorState string

// Visitor states, as in the status JSON.
const (
	VisitorWaiting  VisitorState = "waiting"
	VisitorAdmitted VisitorState = "admitted"
	VisitorExpired  VisitorState = "expired"
	VisitorClosed   VisitorState = "closed"
	VisitorPaused   VisitorState = "paused"
)

// VisitorStatus is one visitor's view of the queue.
type VisitorStatus struct {
	Room     string       `json:"room"`
	State    VisitorState `json:"state"`
	Position int64        `json:"position"`
	Serving  int64        `json:"serving"`
	Ahead    int64        `json:"ahead"`
	// ETASeconds is nil when no rate is set (manual rooms): an honest
	// "unknown" beats an invented number.
	ETASeconds *int64 `json:"eta_seconds"`
	// OpensAt is the room's opening time (unix seconds) while the visitor
	// is in its pre-queue: position is 0 until the draw at opening.
	OpensAt *int64 `json:"opens_at,omitempty"`
}

// StatusOf computes a ticket's status from the room's counters at now. It
// reads nothing from Redis.
func StatusOf(t Ticket, r Room, c Counters, now time.Time) VisitorStatus {
	t = c.Resolve(t)
	st := VisitorStatus{Room: r.ID, Position: t.Position, Serving: c.Serving}
	if t.Position == 0 && !t.Admitted() && !t.Expired(r, now) {
		// In the pre-queue: the position is drawn at opening.
		st.State = VisitorWaiting
		if !c.OpensAt.IsZero() {
			opens := c.OpensAt.Unix()
			st.OpensAt = &opens
		}
		return st
	}
	switch {
	case t.Expired(r, now):
		st.State = VisitorExpired
	case t.Admitted() || c.Reached(t):
		st.State = VisitorAdmitted
	case c.State == StateClosed:
		st.State = VisitorClosed
	case c.State == StatePaused:
		st.State = VisitorPaused
	default:
		st.State = VisitorWaiting
	}
	if st.State == VisitorAdmitted || st.State == VisitorExpired {
		return st
	}
	st.Ahead = max(0, t.Position-c.Serving-1)
	st.ETASeconds = ETA(t.Position-c.Serving, c)
	return st
}

// ETA estimates the seconds until n more visitors are admitted, or nil when
// the room admits by hand or is not admitting.
func ETA(n int64, c Counters) *int64 {
	if c.Policy.RatePerMinute <= 0 || c.State != StateOpen {
		return nil
	}
	s := int64(math.Ceil(float64(max(n, 0)) * 60 / c.Policy.RatePerMinute))
	return &s
}
