package waitingroom

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/anteroom/anteroom/internal/rediskey"
)

// Store is the queue in Redis. It is safe for concurrent use; every instance
// of Anteroom has one, and they share everything through Redis.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
	now    func() time.Time
	// cur is the set of rooms now served (roomset.go): replaced whole when
	// rooms are added, changed or removed at run time, read without a
	// lock on every request.
	cur atomic.Pointer[roomSet]
	// setMu serialises SetRooms.
	setMu sync.Mutex
	// embedded is set by WithEmbeddedRedis.
	embedded bool
	// restarts notices that Redis lost its scripts (see noticeRestart).
	restarts restartWatch
	// requestTime dates requests for their binding's bucket (optional).
	requestTime func(request string) (time.Time, bool)
	// joinLimit limits new places per client (nil: none), and
	// loginsPerTicket the requests one ticket may be bound to (0: any).
	joinLimit       *joinLimit
	loginsPerTicket int
	// events is this instance's copy of the rooms' scheduled events
	// (events.go).
	events eventBook
}

// Option changes a Store's defaults.
type Option func(*Store)

// WithClock makes the store read time from now, so tests of admission and
// expiry are deterministic.
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// WithRequestTime tells the store when a request was created (for an OIDC
// auth request, the time sealed in its id), which decides the bucket its
// binding is kept in. Without it, or for a request it cannot date, all
// bindings share one bucket that expires only when writes stop.
func WithRequestTime(f func(request string) (time.Time, bool)) Option {
	return func(s *Store) { s.requestTime = f }
}

// WithPrefix changes the prefix of the rooms' Redis keys from
// rediskey.Prefix (tests give each case its own).
func WithPrefix(p string) Option { return func(s *Store) { s.prefix = p } }

// WithEmbeddedRedis says the Redis is embedded in this process (miniredis,
// for the demo): it cannot restart without the process, and has no run id
// to read, so a script it does not know yet is no sign of a restart.
func WithEmbeddedRedis() Option { return func(s *Store) { s.embedded = true } }

// NewStore returns a store for the configured rooms. Call Seed before use.
func NewStore(rdb redis.UniversalClient, rooms []Room, opts ...Option) (*Store, error) {
	s := &Store{rdb: rdb, prefix: rediskey.Prefix, now: time.Now}
	s.restarts.unknown = "unknown-" + newDrawKey()
	for _, o := range opts {
		o(s)
	}
	set, err := s.newRoomSet(nil, rooms)
	if err != nil {
		return nil, err
	}
	s.cur.Store(set)
	return s, nil
}

// Room returns a room's configuration.
func (s *Store) Room(id string) (Room, bool) {
	r, ok := s.cur.Load().rooms[id]
	return r, ok
}

// Rooms lists the served room ids: the configured ones in configuration
// order, then those added at run time (SetRooms) in the order given.
func (s *Store) Rooms() []string { return append([]string(nil), s.cur.Load().order...) }

// Now is the store's clock.
func (s *Store) Now() time.Time { return s.now() }

type roomKeys struct {
	hash, tail, serving, lease, active, reached string
	skipped, returned, drawn                    string
	tag                                         string
}

func (s *Store) keys(room string) roomKeys {
	if k, ok := s.cur.Load().keys[room]; ok {
		return k
	}
	return s.buildKeys(room)
}

func (s *Store) buildKeys(room string) roomKeys {
	tag := rediskey.Room(s.prefix, room)
	return roomKeys{
		tag:      tag,
		hash:     tag + "room",
		tail:     tag + "tail",
		serving:  tag + "serving",
		lease:    tag + "lease",
		active:   tag + "active",
		reached:  tag + "reached",
		skipped:  tag + "skipped",
		returned: tag + "returned",
		drawn:    tag + "drawn",
	}
}

// bindingBucket is the span of creation times whose requests' bindings
// share one Redis hash. A waiting visitor's Redis cost is their binding, so
// it must be small: a field in a hash costs about a third of a key with its
// own TTL, and the bucket as a whole expires when its youngest request no
// longer can wait.
const bindingBucket = 10 * time.Minute

// binding locates the binding of request: its bucket's key, its field (a
// 96-bit hash: requests may be long, like a sealed OIDC auth request) and
// how long, from now, the bucket must live.
type binding struct {
	key, field string
	ttl        int64
}

func (s *Store) binding(r Room, k roomKeys, request string, created time.Time) binding {
	sum := sha256.Sum256([]byte(request))
	b := binding{field: string(sum[:12])}
	ok := !created.IsZero()
	if !ok && s.requestTime != nil {
		created, ok = s.requestTime(request)
	}
	if !ok {
		// A request of unknown age: one bucket, kept alive by its writes.
		b.key = k.tag + "b:-"
		b.ttl = r.WaitStart(s.now()).Add(r.MaxWait).Sub(s.now()).Milliseconds()
		return b
	}
	n := created.UnixMilli() / bindingBucket.Milliseconds()
	b.key = k.tag + "b:" + strconv.FormatInt(n, 36)
	end := time.UnixMilli((n + 1) * bindingBucket.Milliseconds())
	b.ttl = max(1, r.WaitStart(end).Add(r.MaxWait).Sub(s.now()).Milliseconds())
	return b
}
func (k roomKeys) ticket(id TicketID) string { return k.tag + "t:" + id.String() }

// live names the liveness bitmap of the heartbeat window containing now:
// bit p is set when the visitor at position p showed a sign of life in it.
// A visitor counts as live while its bit is set in this window or the one
// before, so silence is noticed after one to two grace periods.
func (k roomKeys) live(r Room, now time.Time, windowsBack int64) string {
	if r.AbandonAfter <= 0 {
		return k.tag + "live:off"
	}
	w := now.UnixMilli()/r.AbandonAfter.Milliseconds() - windowsBack
	return k.tag + "live:" + strconv.FormatInt(w, 10)
}

// liveTTL keeps a window's bitmap as long as it can still be read.
func liveTTL(r Room) int64 {
	if r.AbandonAfter <= 0 {
		return 0
	}
	return 3 * r.AbandonAfter.Milliseconds()
}

// Seed writes every room's configured state and policy to Redis unless that
// same configuration was seeded before: a change made through the admin API
// survives a restart, a change to the configuration file wins over it.
func (s *Store) Seed(ctx context.Context) error {
	set := s.cur.Load()
	for _, id := range set.order {
		if err := s.seed(ctx, set.rooms[id]); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) seed(ctx context.Context, r Room) error { return s.seedIn(ctx, s.cur.Load(), r) }

// seedIn is seed for a room of set, which need not be published yet.
func (s *Store) seedIn(ctx context.Context, set *roomSet, r Room) error {
	k := set.keys[r.ID]
	opens, closes := unixMilli(r.OpensAt), unixMilli(r.ClosesAt)
	digest := sha256.Sum256(fmt.Appendf(nil, "%s|%v|%d|%d|%d|%s", r.State, r.Policy.RatePerMinute, r.Policy.MaxActive, opens, closes, r.method()))
	m := set.floors[r.ID]
	epoch, remembered := m.seedEpoch()
	got, err := seedScript.Run(ctx, s.rdb, []string{k.hash, k.tail, k.serving},
		hex.EncodeToString(digest[:8]), string(r.State), formatFloat(r.Policy.RatePerMinute), r.Policy.MaxActive,
		opens, closes, string(r.method()), epoch, remembered).Int64()
	if err != nil {
		return fmt.Errorf("seed room %q: %w", r.ID, err)
	}
	m.seen(r.ID, s.now(), got, 0, 0)
	return nil
}

// run runs a script that needs the room seeded and ends its ARGV with the
// restore block (restoreLua), seeding once and retrying when Redis lost the
// room (restarted empty, flushed). A script Redis no longer knows (NOSCRIPT:
// it restarted, failed over, or never ran it) is sent in full, with the
// server's run id, by which the script tells a restart from a first use.
func (s *Store) run(ctx context.Context, r Room, script *redis.Script, keys []string, args ...any) *redis.Cmd {
	return s.runVia(ctx, nil, r, script, keys, args, nil)
}

// runVia is run with the first attempt sent in batch b (see batcher; nil:
// alone) and after appended behind the restore block.
func (s *Store) runVia(ctx context.Context, b *batcher, r Room, script *redis.Script, keys []string, args, after []any) *redis.Cmd {
	m := s.floor(r.ID)
	run := ""
	call := func() *redis.Cmd {
		a := append(append(args[:len(args):len(args)], m.restoreArgs(run)...), after...)
		var cmd *redis.Cmd
		if b != nil && run == "" {
			cmd = b.evalSha(ctx, script, keys, a...)
		} else {
			cmd = script.EvalSha(ctx, s.rdb, keys, a...)
		}
		if err := cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			run = s.noticeRestart(ctx, r.ID)
			a = append(append(args[:len(args):len(args)], m.restoreArgs(run)...), after...)
			cmd = script.Eval(ctx, s.rdb, keys, a...)
		}
		return cmd
	}
	cmd := call()
	if err := cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSEED") {
		if err := s.seed(ctx, r); err != nil {
			return redis.NewCmdResult(nil, err)
		}
		cmd = call()
	}
	return cmd
}

func (s *Store) room(id string) (Room, error) {
	r, ok := s.cur.Load().rooms[id]
	if !ok {
		return Room{}, fmt.Errorf("%w %q", ErrUnknownRoom, id)
	}
	return r, nil
}

// Joined is the outcome of a join: the visitor's ticket and the counter as
// the join left it.
type Joined struct {
	Ticket  Ticket
	Serving int64
	// New reports whether the ticket was created by this join.
	New bool
}

// ClaimWindow is how long a visitor the counter has reached holds a slot of
// a capacity-bound room (max_active) before continuing. The waiting page
// continues within seconds; a visitor who closed the tab gives the slot
// back when the window ends, and can still continue later.
const ClaimWindow = 90 * time.Second

// Join places a visitor in room for request (an opaque key of what the
// visitor queues for) and binds the request to the visitor's ticket, so only
// that ticket can ever be admitted for it.
//
// A visitor who already holds a usable ticket for the room (have) keeps it:
// joining again never moves anyone forward or back. Without one, the visitor
// gets the next position; when nobody is waiting and the room has admission to
// spare, the ticket is admitted by the counter at once (the safety net).
//
// Join returns ErrClaimed when the request is bound to another ticket,
// ErrClosed when the room takes no new visitors, ErrTooManyLogins when the
// visitor's ticket is bound to as many requests as it may be, and a
// *RateLimitedError (ErrRateLimited) when a new place would exceed the
// client's join limit; a visitor with a usable ticket is never limited.
func (s *Store) Join(ctx context.Context, room, request string, have *Ticket, opts ...JoinOption) (Joined, error) {
	r, err := s.room(room)
	if err != nil {
		return Joined{}, err
	}
	var o joinOptions
	for _, opt := range opts {
		opt(&o)
	}
	now := s.now()
	k := s.keys(room)
	// A binding lives as long as its request can wait (from opening, for
	// the pre-queue).
	bd := s.binding(r, k, request, o.created)
	if have != nil && have.Room == room && !have.Expired(r, now) {
		epoch := have.Epoch
		if have.Admitted() {
			// The cookie proves the admission, whatever Redis lost.
			epoch = 0
		}
		counter, counterTTL := s.loginCounter(r, k, *have, now)
		ok, err := s.run(ctx, r, bindScript, []string{bd.key, counter, k.hash, k.tail, k.serving},
			have.ID.String(), bd.ttl, bd.field, s.loginsPerTicket, counterTTL, epoch).Int()
		if err != nil {
			return Joined{}, fmt.Errorf("join room %q: %w", room, err)
		}
		switch ok {
		case 1:
			return Joined{Ticket: *have}, nil
		case 0:
			return Joined{}, ErrClaimed
		case 2:
			return Joined{}, ErrTooManyLogins
		}
		// Stale: Redis lost the room and nobody remembered it. A new
		// place, and the request moves over to it.
	}
	var previous string
	if have != nil && have.Room == room {
		previous = have.ID.String()
	}
	return s.joinAs(ctx, r, Ticket{ID: NewTicketID(), Room: room, JoinedAt: time.UnixMilli(now.UnixMilli())}, request, previous, o)
}

// joinAs gives the new ticket t a place in r for request (moving the
// request over from the visitor's previous ticket, if any), for client
// (its join limit; "": none).
func (s *Store) joinAs(ctx context.Context, r Room, t Ticket, request, previous string, o joinOptions) (Joined, error) {
	room, now, k := r.ID, t.JoinedAt, s.keys(r.ID)
	bd := s.binding(r, k, request, o.created)
	limitKeys, limitArgs := s.limiterArgs(k, o.client, now)
	res, err := s.runVia(ctx, s.cur.Load().batches[r.ID], r, joinScript,
		append([]string{k.hash, k.tail, k.serving, bd.key, k.active, k.reached, k.live(r, now, 0), k.returned}, limitKeys...),
		[]any{now.UnixMilli(), t.ID.String(), bd.ttl, previous, ClaimWindow.Milliseconds(), newDrawKey(),
			liveTTL(r), bd.field}, limitArgs).Int64Slice()
	if err != nil {
		return Joined{}, fmt.Errorf("join room %q: %w", room, err)
	}
	switch res[0] {
	case -1:
		return Joined{}, ErrClaimed
	case -2:
		return Joined{}, ErrClosed
	case -4:
		return Joined{}, &RateLimitedError{RetryAfter: time.Duration(res[1]) * time.Millisecond}
	case -3:
		t.PreQueue, t.Epoch = res[1], res[2]
		s.floor(room).seenPreQueue(room, now, t.Epoch, t.PreQueue)
		return Joined{Ticket: t, New: true}, nil
	}
	t.Position, t.Epoch = res[0], res[2]
	t.ServingAtJoin = min(max(0, res[1]), t.Position-1)
	s.floor(room).seen(room, now, t.Epoch, t.Position, res[1])
	return Joined{Ticket: t, Serving: res[1], New: true}, nil
}

// Admit lets a ticket through the queue for request: it succeeds only if the
// request is bound to this ticket and the room's counter has reached the
// ticket's position, and it marks the ticket admitted (active until its
// session ends) atomically. Admitting an admitted ticket again returns the
// same admission while its session lasts.
//
// Errors: ErrClaimed (bound to another ticket), ErrNotAdmitted (still
// waiting), ErrSkipped (passed over while silent; let in at the next tick),
// ErrSessionOver, ErrTooManyLogins (binding one more request would exceed
// WithLoginsPerTicket).
func (s *Store) Admit(ctx context.Context, t Ticket, request string, opts ...JoinOption) (Ticket, error) {
	r, err := s.room(t.Room)
	if err != nil {
		return Ticket{}, err
	}
	var o joinOptions
	for _, opt := range opts {
		opt(&o)
	}
	now := s.now()
	k := s.keys(t.Room)
	if t.Position == 0 {
		// A pre-queue ticket: its position is drawn when the room opens.
		c, err := s.Status(ctx, t.Room)
		if err != nil {
			return Ticket{}, err
		}
		if t = c.Resolve(t); t.Position == 0 {
			return Ticket{}, ErrNotAdmitted
		}
	}
	// The admitted record outlives the session until the ticket's max wait
	// has passed too, so a copy of the cookie from before admission cannot
	// be admitted a second time.
	sessionTTL := s.SessionTTL(r, now)
	recordTTL := max(sessionTTL, r.WaitStart(t.JoinedAt).Add(r.MaxWait).Sub(now))
	bd := s.binding(r, k, request, o.created)
	var admitted int64
	if t.Admitted() {
		admitted = t.AdmittedAt.UnixMilli()
	}
	counter, counterTTL := s.loginCounter(r, k, t, now)
	res, err := s.run(ctx, r, admitScript,
		[]string{k.hash, k.serving, bd.key, k.ticket(t.ID), k.active, k.tail, k.reached, k.skipped, k.returned, k.drawn, counter},
		t.ID.String(), t.Position, t.JoinedAt.UnixMilli(), now.UnixMilli(),
		sessionTTL.Milliseconds(), recordTTL.Milliseconds(), bd.ttl, bd.field,
		s.loginsPerTicket, counterTTL, t.Epoch, admitted).Int64Slice()
	if err != nil {
		return Ticket{}, fmt.Errorf("admit to room %q: %w", t.Room, err)
	}
	switch res[0] {
	case -1:
		return Ticket{}, ErrClaimed
	case -2:
		return Ticket{}, ErrNotAdmitted
	case -4:
		return Ticket{}, ErrSessionOver
	case -5:
		return Ticket{}, ErrSkipped
	case -6:
		return Ticket{}, ErrTooManyLogins
	case -7:
		return Ticket{}, ErrStale
	}
	t.AdmittedAt = time.UnixMilli(res[1])
	if len(res) > 2 {
		t.sessionEnds = time.UnixMilli(res[2])
	}
	return t, nil
}

// EndSession ends an admitted ticket's session now (the relying party logged
// the visitor out), which frees its slot at once. It reports whether there was
// a session to end.
func (s *Store) EndSession(ctx context.Context, room string, id TicketID) (bool, error) {
	if _, err := s.room(room); err != nil {
		return false, err
	}
	k := s.keys(room)
	n, err := endSessionScript.Run(ctx, s.rdb, []string{k.ticket(id), k.active}, id.String(), s.now().UnixMilli()).Int()
	if err != nil {
		return false, fmt.Errorf("end session in room %q: %w", room, err)
	}
	return n == 1, nil
}

// Advance lets the next n people of room in: it moves the serving counter
// forward by n, never past the last position handed out, and over the gap
// a loss of writes left without counting it (see advanceScript). It
// returns the counters.
func (s *Store) Advance(ctx context.Context, room string, n int64) (Counters, error) {
	r, err := s.room(room)
	if err != nil {
		return Counters{}, err
	}
	if n < 0 {
		return Counters{}, errors.New("advance: count must not be negative")
	}
	k := s.keys(room)
	res, err := s.run(ctx, r, advanceScript, []string{k.serving, k.tail, k.hash, k.skipped}, n).Int64Slice()
	if err != nil {
		return Counters{}, fmt.Errorf("advance room %q: %w", room, err)
	}
	s.floor(room).seen(room, s.now(), res[2], res[1], res[0])
	return Counters{Serving: res[0], Tail: res[1], Epoch: res[2]}, nil
}

// SetState changes a room's state for every instance.
func (s *Store) SetState(ctx context.Context, room string, st State) error {
	if !st.Valid() {
		return fmt.Errorf("unknown state %q", st)
	}
	return s.setRoom(ctx, room, "state", string(st))
}

// SetPolicy changes a room's admission policy for every instance; the
// scheduler applies it from its next tick.
func (s *Store) SetPolicy(ctx context.Context, room string, p Policy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	return s.setRoom(ctx, room, "rate", formatFloat(p.RatePerMinute), "max_active", strconv.Itoa(p.MaxActive))
}

func (s *Store) setRoom(ctx context.Context, room string, fieldValues ...any) error {
	r, err := s.room(room)
	if err != nil {
		return err
	}
	k := s.keys(room)
	if err := s.run(ctx, r, setRoomScript, []string{k.hash, k.tail, k.serving}, fieldValues...).Err(); err != nil {
		return fmt.Errorf("update room %q: %w", room, err)
	}
	return nil
}

// Counters is what a room's shared state says now.
type Counters struct {
	State   State  `json:"state"`
	Policy  Policy `json:"policy"`
	Serving int64  `json:"serving"`
	Tail    int64  `json:"tail"`
	// Active counts admitted visitors whose session has not ended; only
	// Status fills it.
	Active int64 `json:"active"`
	// OpensAt is the room's scheduled opening (zero: none); PreQueue is
	// how many joined before it; Opened tells whether it has happened.
	OpensAt  time.Time `json:"opens_at"`
	ClosesAt time.Time `json:"closes_at"`
	PreQueue int64     `json:"pre_queue"`
	Opened   bool      `json:"opened"`
	// Epoch identifies the room's life in Redis: it changes only when
	// Redis lost the room and no instance remembered it (counterfloor.go).
	// Tickets carry it; a waiting ticket of another epoch joins again.
	Epoch    int64 `json:"-"`
	openedAt int64
	// gapFrom < p <= gapTo is the gap the first join after a loss left.
	gapFrom, gapTo int64
	drawKey        string
	// preQueueBase is tail at the opening: the pre-queue's positions follow it.
	preQueueBase int64
	// Method is the room's queueing method; for a lottery, drawn holds the
	// drawn bitmap from bit drawnFrom on, as far as tail (Cache fills it).
	Method    Method `json:"method"`
	drawn     string
	drawnFrom int64
	// lanes is what the read saw of the room's priority lanes (nil: the
	// room has none).
	lanes *laneView
	// shLo, shN, shDone and shKey are an event pre-queue being let in in
	// its drawn order (shuffle.go; shN 0: none).
	shLo, shN, shDone int64
	shKey             string
}

// isDrawn reports whether a lottery drew position, as far as the cached
// bitmap tells.
func (c Counters) isDrawn(position int64) bool {
	i := position - c.drawnFrom
	if (c.Method != MethodRandom && c.lanes == nil && c.shN == 0) || i < 0 || i/8 >= int64(len(c.drawn)) {
		return false
	}
	return c.drawn[i/8]&(0x80>>(i%8)) != 0
}

// Resolve gives a pre-queue ticket its drawn position once the room has
// opened; other tickets are returned as they are.
func (c Counters) Resolve(t Ticket) Ticket {
	if t.Position == 0 && t.PreQueue > 0 && c.Opened {
		t.Position = c.preQueueBase + drawPosition(t.PreQueue, c.PreQueue, []byte(c.drawKey))
	}
	return t
}

// Reached reports whether the counter has reached the ticket (a pre-queue
// ticket not drawn yet is never reached).
func (c Counters) Reached(t Ticket) bool {
	t = c.Resolve(t)
	return t.Position > 0 && (t.Position <= c.Serving || c.isDrawn(t.Position))
}

// Waiting is how many visitors hold a position the counter has not reached.
// A gap left after Redis lost data (restoreLua) holds nobody and is not
// counted.
func (c Counters) Waiting() int64 { return c.between(c.Serving, c.Tail+1) }

// between counts the positions strictly between from and to that are not in
// the gap, and so may hold a visitor.
func (c Counters) between(from, to int64) int64 {
	n := max(0, to-from-1)
	if lo, hi := max(from, c.gapFrom), min(to-1, c.gapTo); hi > lo {
		n -= hi - lo
	}
	return n
}

// Status reads a room's counters from Redis.
func (s *Store) Status(ctx context.Context, room string) (Counters, error) {
	if _, err := s.room(room); err != nil {
		return Counters{}, err
	}
	k := s.keys(room)
	pipe := s.rdb.Pipeline()
	read := s.queueCounters(ctx, pipe, k)
	readLanes := s.queueLanes(ctx, pipe, room)
	active := pipe.ZCount(ctx, k.active, strconv.FormatInt(s.now().UnixMilli()+1, 10), "+inf")
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return Counters{}, fmt.Errorf("status of room %q: %w", room, err)
	}
	c := read()
	c.lanes = readLanes()
	c.Active = active.Val()
	m := s.floor(room)
	m.seenCounters(room, s.now(), c)
	return m.raise(c), nil
}

// queueCounters queues the reads of a room's counters on pipe and returns a
// function that assembles them once the pipeline has run.
func (s *Store) queueCounters(ctx context.Context, pipe redis.Pipeliner, k roomKeys) func() Counters {
	h := pipe.HMGet(ctx, k.hash, "state", "rate", "max_active", "opens_at", "closes_at", "prequeue", "opened", "draw_key", "method", "base", "epoch", "gap_from", "gap_to", "sh_lo", "sh_n", "sh_done", "sh_key")
	serving := pipe.Get(ctx, k.serving)
	tail := pipe.Get(ctx, k.tail)
	return func() Counters {
		var c Counters
		vals := h.Val()
		str := func(i int) string {
			if i < len(vals) {
				if v, ok := vals[i].(string); ok {
					return v
				}
			}
			return ""
		}
		num := func(i int) int64 { n, _ := strconv.ParseInt(str(i), 10, 64); return n }
		c.State = State(str(0))
		c.Policy.RatePerMinute, _ = strconv.ParseFloat(str(1), 64)
		c.Policy.MaxActive = int(num(2))
		if ms := num(3); ms > 0 {
			c.OpensAt = time.UnixMilli(ms)
		}
		if ms := num(4); ms > 0 {
			c.ClosesAt = time.UnixMilli(ms)
		}
		c.PreQueue = num(5)
		c.Opened = str(6) != ""
		c.openedAt = num(6)
		c.drawKey = str(7)
		c.Method = Method(str(8))
		c.preQueueBase = num(9)
		c.Epoch = num(10)
		c.gapFrom, c.gapTo = num(11), num(12)
		c.shLo, c.shN, c.shDone, c.shKey = num(13), num(14), num(15), str(16)
		c.Serving, _ = serving.Int64()
		c.Tail, _ = tail.Int64()
		return c
	}
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// unixMilli is t in unix milliseconds, 0 for the zero time.
func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// newDrawKey is the random key a room draws its pre-queue's positions with,
// offered to every script that might open the room.
func newDrawKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// serverRun returns the run id of the Redis server that holds key, "" when
// it cannot tell (miniredis has none; an ACL without @dangerous refuses
// INFO).
func (s *Store) serverRun(ctx context.Context, key string) string {
	info, err := infoScript.Run(ctx, s.rdb, []string{key}).Text()
	if err != nil {
		return ""
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "run_id:"); ok {
			return v
		}
	}
	return ""
}

// restartWatch is a Store's view of Redis restarts.
type restartWatch struct {
	mu sync.Mutex
	// at is when the rooms were last marked, and runs what each was
	// marked with.
	at   time.Time
	runs map[string]string
	// unknown stands in for a run id the server would not tell: a value
	// no earlier call recorded, so a restart is assumed.
	unknown string
	warned  bool
}

// noticeRestart is called when Redis no longer knew a script (NOSCRIPT):
// it restarted, failed over, or never ran the script. Redis's script cache
// is the server's, not a room's, so the first script call after a restart
// that loads the join script again hides the restart from every other room
// on that server. So before any script is sent in full, every room is
// marked with its server's run id; a room whose run id changed is marked
// lost, which its next join turns into a gap (restoreLua). It returns
// room's run id. Marks at most once a second: a restart makes every
// concurrent call see NOSCRIPT.
func (s *Store) noticeRestart(ctx context.Context, room string) string {
	w := &s.restarts
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.runs != nil && s.now().Sub(w.at) < time.Second && s.now().Sub(w.at) >= 0 {
		if run, ok := w.runs[room]; ok {
			return run
		}
	}
	order := s.cur.Load().order
	runs := make(map[string]string, len(order))
	for _, id := range order {
		k := s.keys(id)
		run := "embedded"
		if !s.embedded {
			run = s.serverRun(ctx, k.hash)
		}
		if run == "" {
			if !w.warned {
				w.warned = true
				slog.WarnContext(ctx, "cannot read Redis's run id (INFO refused or unsupported): every reload of the scripts is taken for a restart, which leaves a gap in the queue")
			}
			run = w.unknown
		}
		if err := markRunScript.Run(ctx, s.rdb, []string{k.hash}, run).Err(); err != nil {
			slog.WarnContext(ctx, "mark room after redis lost its scripts", "room", id, "err", err)
		}
		runs[id] = run
	}
	w.at, w.runs = s.now(), runs
	return runs[room]
}

// restore raises room's counters in Redis back to what this instance
// remembers, re-seeding the room if Redis lost it.
func (s *Store) restore(ctx context.Context, room string) error {
	k := s.keys(room)
	epoch, err := s.run(ctx, s.cur.Load().rooms[room], restoreScript, []string{k.hash, k.tail, k.serving}).Int64()
	if err != nil {
		return fmt.Errorf("restore room %q: %w", room, err)
	}
	s.floor(room).seen(room, s.now(), epoch, 0, 0)
	return nil
}

// Ping reports whether Redis answers.
func (s *Store) Ping(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }

// SessionEnd returns when an admitted ticket's session ends (or ended), and
// false when the ticket was never admitted or its record has expired.
func (s *Store) SessionEnd(ctx context.Context, room string, id TicketID) (time.Time, bool, error) {
	if _, err := s.room(room); err != nil {
		return time.Time{}, false, err
	}
	ms, err := s.rdb.HGet(ctx, s.keys(room).ticket(id), "ends").Int64()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read session in room %q: %w", room, err)
	}
	return time.UnixMilli(ms), true, nil
}

// Released reports whether the visitor at position was let back in after
// being skipped as abandoned (or was never skipped). Only a visitor the
// store told ErrSkipped needs to ask.
func (s *Store) Released(ctx context.Context, room string, position int64) (bool, error) {
	if _, err := s.room(room); err != nil {
		return false, err
	}
	bit, err := s.rdb.GetBit(ctx, s.keys(room).skipped, position).Result()
	if err != nil {
		return false, fmt.Errorf("read skipped in room %q: %w", room, err)
	}
	return bit == 0, nil
}
