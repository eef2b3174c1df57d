package waitingroom

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
)

// Scheduled events. A room runs a season of sales from one configuration:
// each event has a time span, and while it runs its settings (admission,
// session length, message) replace the room's; when it ends, or is
// cancelled, the room's own come back. Before an event with a pre-queue
// starts (from prequeue_from), the room holds its admissions, so that the
// crowd that gathers waits for the start; at the start they are let in
// in their drawn order (shuffle_at_start, the pre-queue's draw of
// prequeue.go) or in arrival order.
//
// Events live in Redis, one hash per room (field: event id, value: the
// event as JSON), so that every instance sees a change at its next
// scheduler step (every half second). Each instance applies them by its
// own clock; the switch is one script (eventApplyScript) that saves the
// room's settings at an event's start and puts them back at its end, so
// however many instances switch at once, the room's settings are saved
// once and restored once.

// Event is one scheduled event of a room.
type Event struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// PrequeueFrom starts the event's pre-queue (zero: none): from then
	// until StartsAt the room admits nobody.
	PrequeueFrom time.Time `json:"prequeue_from"`
	StartsAt     time.Time `json:"starts_at"`
	EndsAt       time.Time `json:"ends_at"`
	// Admission replaces the room's policy while the event runs; a field
	// left nil keeps the room's.
	Admission EventAdmission `json:"admission"`
	// SessionTTL replaces the room's session length for visitors admitted
	// while the event runs (0: the room's).
	SessionTTL time.Duration `json:"session_ttl"`
	// Message replaces the room's message on the waiting page from the
	// pre-queue's start to the event's end ("": the room's).
	Message string `json:"message"`
	// ShuffleAtStart draws the pre-queue's order at the start (the
	// pre-queue's draw); false keeps arrival order.
	ShuffleAtStart bool `json:"shuffle_at_start"`
}

// EventAdmission is an event's admission policy; nil fields keep the
// room's.
type EventAdmission struct {
	RatePerMinute *float64 `json:"rate_per_minute,omitempty"`
	MaxActive     *int     `json:"max_active,omitempty"`
}

// from is when the event starts to matter: its pre-queue, or its start.
func (e Event) from() time.Time {
	if !e.PrequeueFrom.IsZero() {
		return e.PrequeueFrom
	}
	return e.StartsAt
}

// EventPhase is where an event stands at an instant.
type EventPhase string

// Event phases.
const (
	PhaseScheduled EventPhase = "scheduled"
	PhasePrequeue  EventPhase = "prequeue"
	PhaseRunning   EventPhase = "running"
	PhaseEnded     EventPhase = "ended"
)

// Phase is the event's phase at now.
func (e Event) Phase(now time.Time) EventPhase {
	switch {
	case !now.Before(e.EndsAt):
		return PhaseEnded
	case !now.Before(e.StartsAt):
		return PhaseRunning
	case !now.Before(e.from()):
		return PhasePrequeue
	}
	return PhaseScheduled
}

// Validate reports an event no room can run, naming the field.
func (e Event) Validate() error {
	switch {
	case e.Name == "" || utf8.RuneCountInString(e.Name) > 100 || !utf8.ValidString(e.Name):
		return specErrorf("name", "required, at most 100 characters")
	case e.StartsAt.IsZero():
		return specErrorf("starts_at", "required")
	case e.EndsAt.IsZero() || !e.EndsAt.After(e.StartsAt):
		return specErrorf("ends_at", "required, after starts_at")
	case !e.PrequeueFrom.IsZero() && !e.PrequeueFrom.Before(e.StartsAt):
		return specErrorf("prequeue_from", "must be before starts_at")
	case e.SessionTTL != 0 && e.SessionTTL < time.Minute:
		return specErrorf("session_ttl", "must be at least 1m, got %s", e.SessionTTL)
	case utf8.RuneCountInString(e.Message) > 1000 || !utf8.ValidString(e.Message):
		return specErrorf("message", "at most 1000 characters")
	case e.ShuffleAtStart && e.PrequeueFrom.IsZero():
		return specErrorf("shuffle_at_start", "needs prequeue_from: only a pre-queue is drawn")
	}
	if a := e.Admission.RatePerMinute; a != nil && (*a < 0 || *a > 1e6) {
		return specErrorf("admission.rate_per_minute", "must be between 0 and 1000000, got %v", *a)
	}
	if m := e.Admission.MaxActive; m != nil && *m < 0 {
		return specErrorf("admission.max_active", "must not be negative, got %d", *m)
	}
	return nil
}

// Errors of the event API.
var (
	// ErrEventNotFound is returned for an event id the room does not have.
	ErrEventNotFound = errors.New("no such event")
	// ErrEventStarted is returned for an edit of an event that has
	// started (cancelling it is still allowed).
	ErrEventStarted = errors.New("the event has started: it can only be cancelled")
)

// OverlapError is returned for an event whose span (pre-queue included)
// meets another event's of the room.
type OverlapError struct{ With string }

func (e *OverlapError) Error() string {
	return "the event overlaps event " + e.With + " (pre-queues count): events in one room never overlap"
}

// storedEvent is an event as Redis keeps it: times in unix ms, which the
// put script compares.
type storedEvent struct {
	ID             string         `json:"id"`
	Name           string         `json:"name"`
	From           int64          `json:"from"`
	PrequeueFrom   int64          `json:"prequeue_from"`
	StartsAt       int64          `json:"starts_at"`
	EndsAt         int64          `json:"ends_at"`
	Admission      EventAdmission `json:"admission"`
	SessionTTLMS   int64          `json:"session_ttl_ms"`
	Message        string         `json:"message"`
	ShuffleAtStart bool           `json:"shuffle_at_start"`
}

func storeEvent(e Event) storedEvent {
	return storedEvent{ID: e.ID, Name: e.Name, From: e.from().UnixMilli(), PrequeueFrom: unixMilli(e.PrequeueFrom),
		StartsAt: e.StartsAt.UnixMilli(), EndsAt: e.EndsAt.UnixMilli(), Admission: e.Admission,
		SessionTTLMS: e.SessionTTL.Milliseconds(), Message: e.Message, ShuffleAtStart: e.ShuffleAtStart}
}

func (se storedEvent) event() Event {
	e := Event{ID: se.ID, Name: se.Name, StartsAt: time.UnixMilli(se.StartsAt), EndsAt: time.UnixMilli(se.EndsAt),
		Admission: se.Admission, SessionTTL: time.Duration(se.SessionTTLMS) * time.Millisecond, Message: se.Message,
		ShuffleAtStart: se.ShuffleAtStart}
	if se.PrequeueFrom > 0 {
		e.PrequeueFrom = time.UnixMilli(se.PrequeueFrom)
	}
	return e
}

func (k roomKeys) events() string { return k.tag + "events" }

// eventPutScript creates or edits an event, refusing an overlap and an
// edit of an event that has started; events ended a week ago are dropped.
// KEYS: events hash. ARGV: id, JSON, from ms, ends ms, now ms, "create" or
// "update".
// Returns {1}, {-1, other id} overlap, {-2} no such event, {-3} started.
var eventPutScript = redis.NewScript(`
local id, from, ends, now = ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local all = redis.call('HGETALL', KEYS[1])
local mine = nil
for i = 1, #all, 2 do
  local e = cjson.decode(all[i + 1])
  if all[i] == id then
    mine = e
  elseif e.ends_at < now - 604800000 then
    redis.call('HDEL', KEYS[1], all[i])
  elseif from < e.ends_at and e.from < ends then
    return {-1, all[i]}
  end
end
if ARGV[6] == 'update' then
  if not mine then return {-2} end
  if mine.starts_at <= now then return {-3} end
end
redis.call('HSET', KEYS[1], id, ARGV[2])
return {1}
`)

// newEventID draws an event's id: "ev-" and 10 hex digits.
func newEventID() string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return "ev-" + hex.EncodeToString(b[:])
}

// CreateEvent schedules e (its ID is drawn) in room and returns it.
func (s *Store) CreateEvent(ctx context.Context, room string, e Event) (Event, error) {
	e.ID = newEventID()
	return e, s.putEvent(ctx, room, e, "create")
}

// UpdateEvent replaces event e.ID of room, until the event starts.
func (s *Store) UpdateEvent(ctx context.Context, room string, e Event) error {
	return s.putEvent(ctx, room, e, "update")
}

func (s *Store) putEvent(ctx context.Context, room string, e Event, mode string) error {
	r, err := s.room(room)
	if err != nil {
		return err
	}
	if err := e.Validate(); err != nil {
		return err
	}
	if !e.EndsAt.After(s.now()) {
		return specErrorf("ends_at", "must be in the future")
	}
	if e.SessionTTL > r.SessionTTL {
		// The visitor's cookie and the tokens of a login in another
		// request count the room's session length: an event may shorten
		// a session, not lengthen it.
		return specErrorf("session_ttl", "must not exceed the room's session_ttl (%s), got %s", r.SessionTTL, e.SessionTTL)
	}
	doc, err := json.Marshal(storeEvent(e))
	if err != nil {
		return err
	}
	res, err := eventPutScript.Run(ctx, s.rdb, []string{s.keys(room).events()},
		e.ID, doc, e.from().UnixMilli(), e.EndsAt.UnixMilli(), s.now().UnixMilli(), mode).Slice()
	if err != nil {
		return fmt.Errorf("save event in room %q: %w", room, err)
	}
	switch res[0].(int64) {
	case -1:
		other, _ := res[1].(string)
		return &OverlapError{With: other}
	case -2:
		return ErrEventNotFound
	case -3:
		return ErrEventStarted
	}
	s.events.forget(room)
	return nil
}

// DeleteEvent cancels an event at any time: a running event's settings
// give way to the room's at every instance's next scheduler step.
func (s *Store) DeleteEvent(ctx context.Context, room, id string) error {
	if _, err := s.room(room); err != nil {
		return err
	}
	n, err := s.rdb.HDel(ctx, s.keys(room).events(), id).Result()
	if err != nil {
		return fmt.Errorf("cancel event in room %q: %w", room, err)
	}
	if n == 0 {
		return ErrEventNotFound
	}
	s.events.forget(room)
	return nil
}

// Events reads room's events from Redis, by start.
func (s *Store) Events(ctx context.Context, room string) ([]Event, error) {
	if _, err := s.room(room); err != nil {
		return nil, err
	}
	m, err := s.rdb.HGetAll(ctx, s.keys(room).events()).Result()
	if err != nil {
		return nil, fmt.Errorf("read events of room %q: %w", room, err)
	}
	out := parseEvents(m)
	s.events.set(room, out)
	return out, nil
}

func parseEvents(m map[string]string) []Event {
	out := make([]Event, 0, len(m))
	for _, v := range m {
		var se storedEvent
		if json.Unmarshal([]byte(v), &se) == nil {
			out = append(out, se.event())
		}
	}
	slices.SortFunc(out, func(a, b Event) int { return a.StartsAt.Compare(b.StartsAt) })
	return out
}

// Event returns room's event id as Redis has it.
func (s *Store) Event(ctx context.Context, room, id string) (Event, error) {
	all, err := s.Events(ctx, room)
	if err != nil {
		return Event{}, err
	}
	for _, e := range all {
		if e.ID == id {
			return e, nil
		}
	}
	return Event{}, ErrEventNotFound
}

// eventBook is an instance's copy of every room's events, refreshed at
// each scheduler step, which the waiting page and admissions read
// without Redis.
type eventBook struct {
	mu    sync.RWMutex
	rooms map[string][]Event
}

func (b *eventBook) set(room string, events []Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rooms == nil {
		b.rooms = map[string][]Event{}
	}
	b.rooms[room] = events
}

// forget drops room's copy after a change of this instance, so nothing
// reads the old one; the next step reads the new.
func (b *eventBook) forget(room string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.rooms, room)
}

func (b *eventBook) get(room string) []Event {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.rooms[room]
}

// CurrentEvent returns the event of room that matters at now: the one
// running, or the one whose pre-queue has begun, or else the next one to
// come; false when there is none. It reads this instance's copy, at most a
// scheduler step old.
func (s *Store) CurrentEvent(room string, now time.Time) (Event, EventPhase, bool) {
	var next *Event
	for _, e := range s.events.get(room) {
		switch p := e.Phase(now); p {
		case PhaseRunning, PhasePrequeue:
			return e, p, true
		case PhaseScheduled:
			if next == nil || e.StartsAt.Before(next.StartsAt) {
				next = &e
			}
		}
	}
	if next != nil {
		return *next, PhaseScheduled, true
	}
	return Event{}, "", false
}

// SessionTTL is how long a visitor admitted into room at now stays: the
// running event's session length, else the room's.
func (s *Store) SessionTTL(r Room, now time.Time) time.Duration {
	if e, p, ok := s.CurrentEvent(r.ID, now); ok && p == PhaseRunning && e.SessionTTL > 0 {
		return e.SessionTTL
	}
	return r.SessionTTL
}

// eventApplyScript switches a room's settings to what its events say
// now. The room's own rate and max_active are saved (fields ev_rate,
// ev_max) when the first event takes over and put back when none is left;
// field event names the event in force, with ":pre" while its pre-queue
// holds admissions.
// At a pre-queue's start it records the tail (pq_lo); at the event's
// start, for shuffle_at_start, the positions that joined in between are
// to be let in in a drawn order (fields sh_*, see shuffle.go).
// KEYS: room hash, tail. ARGV: the event in force ("" none), its rate,
// its max_active ("" keeps the room's own), "1" to shuffle its pre-queue
// at the start, a draw key, the marker of the event's pre-queue ("" for
// none), "1" while the pre-queue is what is in force (so that the script
// builds no string: see internal/testredis's Cluster rules).
// Returns 0 when nothing changed, 1 when an event took over, 2 when the
// room's settings came back, 3 when an event started drawing its
// pre-queue's order.
var eventApplyScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local cur = redis.call('HGET', KEYS[1], 'event')
if cur == (ARGV[1] ~= '' and ARGV[1] or false) then return 0 end
local started = 1
local pq = redis.call('HGET', KEYS[1], 'pq_event')
if pq and pq ~= ARGV[1] and pq ~= ARGV[6] then
  -- A pre-queue that ends without its event starting (cancelled).
  redis.call('HDEL', KEYS[1], 'pq_lo', 'pq_event')
end
if ARGV[7] == '1' then
  -- The pre-queue begins behind whoever waits now.
  redis.call('HSET', KEYS[1], 'pq_lo', tonumber(redis.call('GET', KEYS[2]) or '0'), 'pq_event', ARGV[1])
elseif ARGV[1] ~= '' and redis.call('HGET', KEYS[1], 'pq_event') == ARGV[6] then
  -- The start of an event whose pre-queue ran: draw its order.
  local lo = tonumber(redis.call('HGET', KEYS[1], 'pq_lo') or '0')
  local hi = tonumber(redis.call('GET', KEYS[2]) or '0')
  redis.call('HDEL', KEYS[1], 'pq_lo', 'pq_event')
  if ARGV[4] == '1' and hi - lo > 1 and not redis.call('HGET', KEYS[1], 'sh_n') then
    redis.call('HSET', KEYS[1], 'sh_lo', lo, 'sh_hi', hi, 'sh_n', hi - lo, 'sh_done', 0, 'sh_key', ARGV[5])
    started = 3
  end
end
if ARGV[1] == '' then
  local saved = redis.call('HMGET', KEYS[1], 'ev_rate', 'ev_max')
  redis.call('HSET', KEYS[1], 'rate', saved[1] or '0', 'max_active', saved[2] or '0')
  redis.call('HDEL', KEYS[1], 'event', 'ev_rate', 'ev_max')
  return 2
end
if not cur then
  local own = redis.call('HMGET', KEYS[1], 'rate', 'max_active')
  redis.call('HSET', KEYS[1], 'ev_rate', own[1] or '0', 'ev_max', own[2] or '0')
end
local saved = redis.call('HMGET', KEYS[1], 'ev_rate', 'ev_max')
local rate, maxActive = ARGV[2], ARGV[3]
if rate == '' then rate = saved[1] end
if maxActive == '' then maxActive = saved[2] end
redis.call('HSET', KEYS[1], 'event', ARGV[1], 'rate', rate, 'max_active', maxActive)
return started
`)

// applyEvents reads room's events and switches its settings to the event
// in force at the store's now (see eventApplyScript). It returns the
// script's answer.
func (s *Store) applyEvents(ctx context.Context, r Room) (int64, error) {
	m, err := s.rdb.HGetAll(ctx, s.keys(r.ID).events()).Result()
	if err != nil {
		return 0, fmt.Errorf("read events of room %q: %w", r.ID, err)
	}
	events := parseEvents(m)
	s.events.set(r.ID, events)
	now := s.now()
	in, rate, maxActive, shuffle, pre, inPre := "", "", "", "0", "", "0"
	if e, p, ok := s.CurrentEvent(r.ID, now); ok {
		pre = e.ID + ":pre"
		switch p {
		case PhasePrequeue:
			// The pre-queue holds admissions until the start: a manual
			// policy admits nobody by itself.
			in, rate, maxActive, inPre = pre, "0", "0", "1"
		case PhaseRunning:
			in = e.ID
			if e.ShuffleAtStart {
				shuffle = "1"
			}
			if a := e.Admission.RatePerMinute; a != nil {
				rate = formatFloat(*a)
			}
			if m := e.Admission.MaxActive; m != nil {
				maxActive = strconv.Itoa(*m)
			}
		}
	}
	k := s.keys(r.ID)
	n, err := eventApplyScript.Run(ctx, s.rdb, []string{k.hash, k.tail}, in, rate, maxActive, shuffle, newDrawKey(), pre, inPre).Int64()
	if err != nil {
		return 0, fmt.Errorf("apply events of room %q: %w", r.ID, err)
	}
	return n, nil
}
