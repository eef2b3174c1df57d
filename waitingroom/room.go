// Package waitingroom keeps the queue: rooms, tickets, the tail and serving
// counters, admission and the scheduler that moves the counter. All shared state
// lives in Redis, behind Lua scripts wherever a read-modify-write must be atomic,
// so any number of stateless instances can serve one room.
//
// The package knows nothing of HTTP or OpenID Connect: what a visitor queues for
// is an opaque request key (for Anteroom, a hash of an OIDC auth request), and a
// visitor's place is a Ticket that the caller carries in a cookie.
package waitingroom

import (
	"errors"
	"fmt"
	"reflect"
	"time"
)

// State is what a room currently does with its visitors.
type State string

// Room states.
const (
	// StateOpen queues visitors and admits them by the room's policy.
	StateOpen State = "open"
	// StatePaused keeps everyone's position but admits nobody.
	StatePaused State = "paused"
	// StateClosed takes no new visitors; those already queued keep their place.
	StateClosed State = "closed"
	// StatePassthrough admits everyone at once, still with a ticket and a token,
	// so downstream checks keep working while the queue is switched off.
	StatePassthrough State = "passthrough"
)

// Method is a room's queueing method.
type Method string

// Queueing methods.
const (
	// MethodFIFO admits in arrival order.
	MethodFIFO Method = "fifo"
	// MethodRandom admits by lottery among everyone waiting: arriving
	// early buys nothing, which suits a sale where fairness matters more
	// than order (and pairs well with a pre-queue).
	MethodRandom Method = "random"
)

func (r Room) method() Method {
	if r.Method == "" {
		return MethodFIFO
	}
	return r.Method
}

// Valid reports whether s is one of the four room states.
func (s State) Valid() bool {
	switch s {
	case StateOpen, StatePaused, StateClosed, StatePassthrough:
		return true
	}
	return false
}

// Policy is how a room admits visitors. Zero values mean "not set": a policy
// with neither a rate nor a capacity is manual, and only Advance moves the room.
type Policy struct {
	// RatePerMinute admits this many visitors per minute, smoothly: fractions
	// carry over from one tick to the next.
	RatePerMinute float64 `json:"rate_per_minute,omitempty"`
	// MaxActive bounds the admitted visitors whose session has not ended,
	// counting those the counter has reached who have not continued yet
	// (for ClaimWindow). With a rate as well, both limits apply.
	MaxActive int `json:"max_active,omitempty"`
}

// Manual reports whether only the admin API admits visitors.
func (p Policy) Manual() bool { return p.RatePerMinute <= 0 && p.MaxActive <= 0 }

// Validate reports a policy no room can run.
func (p Policy) Validate() error {
	if p.RatePerMinute < 0 || p.RatePerMinute > 1e6 {
		return fmt.Errorf("rate_per_minute must be between 0 and 1000000, got %v", p.RatePerMinute)
	}
	if p.MaxActive < 0 {
		return fmt.Errorf("max_active must not be negative, got %d", p.MaxActive)
	}
	return nil
}

// Room is a room's configuration as the operator wrote it. What can change at
// run time (state and policy) is seeded into Redis from here and read back from
// there, so an admin's change reaches every instance.
type Room struct {
	ID         string
	Name       string
	Message    string
	State      State
	Policy     Policy
	SessionTTL time.Duration
	MaxWait    time.Duration
	// OpensAt schedules the room's opening: visitors who arrive before it
	// join a pre-queue and are given random positions among themselves at
	// opening. Zero: open from the start.
	OpensAt time.Time
	// ClosesAt stops new joins; visitors already queued are still
	// admitted. Zero: never.
	ClosesAt time.Time
	// Method is how the room chooses whom to admit: MethodFIFO (the
	// default) in arrival order, or MethodRandom, a lottery among everyone
	// waiting at each admission.
	Method Method
	// AbandonAfter is the grace period of abandonment: a waiting visitor
	// whose page shows no sign of life (poll, event stream) for one to two
	// grace periods is passed over when the counter advances, so admissions
	// go to live people; if they come back they are let in at the next
	// tick, keeping their place. Zero turns it off.
	AbandonAfter time.Duration
	// Lanes are the room's priority lanes (lanes.go), the standard lane
	// among them or weight 1; none: one queue.
	Lanes []Lane
}

// WaitStart is when max wait starts counting for a visitor who arrived at
// joined: the room's opening for one who came before it.
func (r Room) WaitStart(joined time.Time) time.Time {
	if r.OpensAt.After(joined) {
		return r.OpensAt
	}
	return joined
}

func (r Room) validate() error {
	if r.ID == "" {
		return errors.New("room id is empty")
	}
	if !r.State.Valid() {
		return fmt.Errorf("room %q: unknown state %q", r.ID, r.State)
	}
	if m := r.method(); m != MethodFIFO && m != MethodRandom {
		return fmt.Errorf("room %q: unknown method %q", r.ID, r.Method)
	}
	if err := r.Policy.Validate(); err != nil {
		return fmt.Errorf("room %q: %w", r.ID, err)
	}
	if err := ValidateLanes(r.Lanes, r.method()); err != nil {
		return fmt.Errorf("room %q: %w", r.ID, err)
	}
	if r.SessionTTL <= 0 || r.MaxWait <= 0 {
		return fmt.Errorf("room %q: session ttl and max wait must be positive", r.ID)
	}
	return nil
}

// Errors callers tell apart.
var (
	// ErrUnknownRoom is returned for a room id that is not configured.
	ErrUnknownRoom = errors.New("unknown room")
	// ErrClosed is returned when a visitor without a ticket tries to join a closed room.
	ErrClosed = errors.New("room is closed")
	// ErrClaimed is returned when the request a visitor queues for is already
	// bound to another ticket: the URL was copied into another browser.
	ErrClaimed = errors.New("request is bound to another ticket")
	// ErrNotAdmitted is returned by Admit while the counter has not reached the ticket.
	ErrNotAdmitted = errors.New("ticket not admitted yet")
	// ErrSkipped is returned by Admit for a ticket the counter passed over
	// while its page was silent. It is now queued to be let in at the next
	// tick; ask Released until then.
	ErrSkipped = errors.New("ticket was skipped while silent")
	// ErrSessionOver is returned for a ticket whose admitted session has ended:
	// it must join again at the back of the queue.
	ErrSessionOver = errors.New("ticket session is over")
	// ErrStale is returned by Admit for a waiting ticket of an earlier
	// epoch: Redis lost the room and no instance remembered it, so the
	// ticket's position means nothing any more. Join again with it: the
	// request moves to a new ticket.
	ErrStale = errors.New("ticket is from before redis lost the room")
	// ErrUnknownRequest is what a resolver of request keys (the OIDC side)
	// returns for a request it never issued or that was tampered with.
	ErrUnknownRequest = errors.New("unknown request")
	// ErrExpired is what a resolver returns for a request older than its
	// room's max wait.
	ErrExpired = errors.New("request expired")
	// ErrAnswered is what a resolver returns for a request that was let
	// through and answered already (a second click on continue): it cannot
	// be answered twice.
	ErrAnswered = errors.New("request already answered")
)

// equal reports whether r and o are the same room definition, lanes
// included (a Room with lanes is not comparable with ==). SetRooms asks
// it once per room and change, never on a request.
func (r Room) equal(o Room) bool { return reflect.DeepEqual(r, o) }
