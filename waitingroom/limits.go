package waitingroom

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Limits on what one client can make the store do. Both are enforced inside
// the scripts that join and bind, so they hold across instances and cost
// no extra round trip.

var (
	// ErrRateLimited is what Join's error wraps (a *RateLimitedError) when
	// the client already took as many new places as the join limit allows
	// (WithJoinLimit, JoinFrom).
	ErrRateLimited = errors.New("too many joins from this client")
	// ErrTooManyLogins is returned when a ticket is already bound to as many
	// requests as WithLoginsPerTicket allows.
	ErrTooManyLogins = errors.New("too many logins with this ticket")
)

// RateLimitedError is Join's error for a client over the join limit.
type RateLimitedError struct {
	// RetryAfter is when the client may take a new place again.
	RetryAfter time.Duration
}

// Error says when to retry.
func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("%v: retry in %s", ErrRateLimited, e.RetryAfter)
}

// Is makes errors.Is(err, ErrRateLimited) true.
func (e *RateLimitedError) Is(target error) bool { return target == ErrRateLimited }

// joinLimit is a generic cell rate limit (GCRA) per client and room: a
// client may take burst places at once, then one per interval. Its state
// is one hash field per client (its theoretical arrival time) in
// a hash per window; a window is long enough that a client's state from
// two windows back has always run out, so each join reads the current and
// the previous window and both expire on their own: the cost is a field
// per client that joined in the last one or two windows, not per visitor.
type joinLimit struct {
	interval time.Duration
	burst    int64
	window   time.Duration
}

// WithJoinLimit limits every client (JoinFrom) to perMinute new places per
// minute in each room, after a burst of burst at once. perMinute <= 0 (the
// default) turns the limit off.
func WithJoinLimit(perMinute float64, burst int) Option {
	return func(s *Store) {
		if perMinute <= 0 {
			s.joinLimit = nil
			return
		}
		l := &joinLimit{interval: time.Duration(float64(time.Minute) / perMinute), burst: int64(max(1, burst))}
		l.window = max(time.Minute, time.Duration(l.burst+1)*l.interval)
		s.joinLimit = l
	}
}

// WithLoginsPerTicket bounds how many requests one ticket may be bound to
// (0, the default: no bound). The first, bound as the ticket is created,
// costs nothing extra; from the second on a counter per ticket is kept
// until the ticket expires, so a visitor with one login costs no more.
func WithLoginsPerTicket(n int) Option { return func(s *Store) { s.loginsPerTicket = max(0, n) } }

// JoinOption qualifies one Join or Admit.
type JoinOption func(*joinOptions)

type joinOptions struct {
	client  string
	created time.Time
}

// RequestCreatedAt dates the request for its binding's bucket. The caller
// that has opened the request already knows when it was created; without
// this option the store asks WithRequestTime's function, which opens it
// again.
func RequestCreatedAt(t time.Time) JoinOption { return func(o *joinOptions) { o.created = t } }

// JoinFrom names the client asking (an address, in a compact form of the
// caller's choosing), for the join limit. Without it, or with "", the join
// is not limited.
func JoinFrom(client string) JoinOption { return func(o *joinOptions) { o.client = client } }

// limiterArgs returns the join limit's keys and arguments for client at now:
// the current and previous window's hashes, then the client, interval ms,
// burst, the current window's ttl ms, its start ms and its length ms (none
// at all: no limit).
func (s *Store) limiterArgs(k roomKeys, client string, now time.Time) ([]string, []any) {
	l := s.joinLimit
	if l == nil || client == "" {
		return nil, nil // an unlimited join passes neither keys nor arguments
	}
	size := l.window.Milliseconds()
	w := now.UnixMilli() / size
	end := (w + 2) * size
	return []string{k.tag + "ip:" + strconv.FormatInt(w, 36), k.tag + "ip:" + strconv.FormatInt(w-1, 36)},
		[]any{client, l.interval.Milliseconds(), l.burst, max(1, end-now.UnixMilli()), w * size, size}
}

// loginCounter names the counter of a ticket's extra bindings, and how long
// it must live from now: as long as the ticket may still log in.
func (s *Store) loginCounter(r Room, k roomKeys, t Ticket, now time.Time) (string, int64) {
	ttl := t.ExpiresAt(r).Sub(now)
	if t.Admitted() {
		// An admitted ticket's record (and so its logins) outlives the
		// session until the ticket's max wait has passed too.
		ttl = max(ttl, r.WaitStart(t.JoinedAt).Add(r.MaxWait).Sub(now))
	}
	return k.tag + "n:" + t.ID.String(), max(1, ttl.Milliseconds())
}
