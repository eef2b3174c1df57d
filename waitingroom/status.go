package waitingroom

import "time"

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
	// ETASeconds is nil when no rate is known (a manual room before its
	// counter has been seen moving, a room that stood still): an honest
	// "unknown" beats an invented number.
	ETASeconds *int64 `json:"eta_seconds"`
	// QueueFull reports whether the room is full (see QueueFull), so that
	// a page or an app can warn that the back of the queue may not get in.
	QueueFull bool `json:"queue_full"`
	// Progress is how far the visitor has come since their own join, in
	// percent: the share of those ahead of them then who have gone in
	// since (0 just after joining, 100 once admitted). The waiting page's
	// bar shows it; serving ÷ position, progress since the room began,
	// said 99 % to number 100,000 with 1,000 still ahead.
	Progress int `json:"progress"`
	// OpensAt is the room's opening time (unix seconds) while the visitor
	// is in its pre-queue: position is 0 until the draw at opening.
	OpensAt *int64 `json:"opens_at,omitempty"`
	// Lane names the priority lane the visitor waits in (absent: the
	// standard queue); Ahead then counts that lane's visitors ahead.
	Lane string `json:"lane,omitempty"`
	// Event names the room's scheduled event a page names (see
	// Store.CurrentEvent), and EventStartsAt is its opening (unix
	// seconds) for a countdown; the caller fills them.
	Event         string `json:"event,omitempty"`
	EventStartsAt *int64 `json:"event_starts_at,omitempty"`
}

// StatusOf computes a ticket's status from the room's counters at now, with
// ETAs at rate visitors per minute (Cache.Rate: the measured rate when
// known). It reads nothing from Redis.
func StatusOf(t Ticket, r Room, c Counters, rate float64, now time.Time) VisitorStatus {
	t = c.Resolve(t)
	st := VisitorStatus{Room: r.ID, Position: t.Position, Serving: c.Serving, QueueFull: QueueFull(r, c, rate)}
	if t.Position == 0 && !t.Admitted() && !t.Expired(r, now) && !t.Stale(c) {
		// In the pre-queue: the position is drawn at opening.
		st.State = VisitorWaiting
		if !c.OpensAt.IsZero() {
			opens := c.OpensAt.Unix()
			st.OpensAt = &opens
		}
		return st
	}
	switch {
	case t.Expired(r, now), t.Stale(c):
		// A stale ticket reloads the page, which joins again.
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
	if st.State == VisitorAdmitted {
		st.Progress = 100
	}
	if st.State == VisitorAdmitted || st.State == VisitorExpired {
		return st
	}
	if c.Method == MethodRandom {
		// A lottery has nobody ahead of anyone: the ETA is the expected
		// wait, halfway through those waiting now.
		st.ETASeconds = ETA((c.Waiting()+1)/2, c, rate)
		return st
	}
	st.Ahead = c.between(c.Serving, t.Position)
	// With lanes, a visitor's queue moves at its lane's share of the
	// rate while the other lanes have visitors too.
	lane, laneAhead := c.laneOf(t.Position)
	st.ETASeconds = ETA(st.Ahead+1, c, rate*c.laneShare(lane))
	// Those ahead at the join, counted like those ahead now (the gap a
	// loss of writes left holds nobody); the visitor's own step is the
	// last, so the bar reaches 100 only when they are in.
	if joined := c.between(min(t.ServingAtJoin, c.Serving), t.Position); joined > 0 {
		st.Progress = int(100 * max(0, joined-st.Ahead) / (joined + 1))
	}
	if rank, ok := c.drawnRank(t.Position); ok && lane < 0 {
		// In an event's pre-queue being let in in its drawn order: those
		// who waited before it, then those drawn before the visitor.
		st.Ahead = c.between(c.Serving, c.shLo+1) + rank
		st.ETASeconds = ETA(st.Ahead+1, c, rate)
	}
	if lane >= 0 {
		// In a lane, only the lane's visitors are ahead (the counter may
		// still reach the visitor first, which only helps).
		st.Lane = c.lanes.lanes[lane].ID
		st.Ahead = min(st.Ahead, laneAhead)
		st.ETASeconds = ETA(st.Ahead+1, c, rate*c.laneShare(lane))
	}
	return st
}

// ETA estimates the seconds until the counter has moved n more positions at
// rate visitors per minute, or nil when the room is not admitting or the
// rate is not positive (unknown, or a room that stands still).
func ETA(n int64, c Counters, rate float64) *int64 {
	if !(rate > 0) || c.State != StateOpen {
		return nil
	}
	s := etaSeconds(n, rate)
	return &s
}

// QueueFull reports whether a visitor arriving now would, at rate, wait
// longer than the room keeps a place (its max wait): the back of the queue
// would expire before the counter reached it. A room without an ETA is
// never full.
func QueueFull(r Room, c Counters, rate float64) bool {
	eta := ETA(c.Waiting()+1, c, rate)
	return eta != nil && *eta > int64(r.MaxWait/time.Second)
}
