package waitingroom

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cache keeps every room's counters in this process, refreshed from Redis in
// one pipelined read per interval, so a visitor's status poll costs no Redis
// round trip: the position is in the ticket, the counter is here.
type Cache struct {
	store    *Store
	interval time.Duration
	// cur holds each served room's counters and rate, rebuilt when the
	// store's rooms change (sync).
	cur     atomic.Pointer[cacheRooms]
	changed atomic.Pointer[chan struct{}]
	lastErr atomic.Pointer[error]
}

// NewCache returns a cache of store's rooms, refreshed every interval by Run.
// It measures each room's admission rate from its refreshes, on the store's
// clock.
func NewCache(store *Store, interval time.Duration) *Cache {
	if interval <= 0 {
		interval = 500 * time.Millisecond
	}
	c := &Cache{store: store, interval: interval}
	c.sync()
	ch := make(chan struct{})
	c.changed.Store(&ch)
	return c
}

// Get returns room's cached counters; false until the first refresh.
func (c *Cache) Get(room string) (Counters, bool) {
	p, ok := c.cur.Load().rooms[room]
	if !ok {
		return Counters{}, false
	}
	v := p.Load()
	if v == nil {
		return Counters{}, false
	}
	return *v, true
}

// Changed returns a channel closed at the next change of any room's counters,
// for server-sent events.
func (c *Cache) Changed() <-chan struct{} { return *c.changed.Load() }

func (c *Cache) notify() {
	ch := make(chan struct{})
	old := c.changed.Swap(&ch)
	close(*old)
}

// Refresh reads every room's counters from Redis.
func (c *Cache) Refresh(ctx context.Context) error {
	cur := c.sync()
	pipe := c.store.rdb.Pipeline()
	reads := make(map[string]func() Counters, len(cur.rooms))
	laneReads := make(map[string]func() *laneView, len(cur.rooms))
	for id := range cur.rooms {
		reads[id] = c.store.queueCounters(ctx, pipe, c.store.keys(id))
		laneReads[id] = c.store.queueLanes(ctx, pipe, id)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		err = fmt.Errorf("refresh counters: %w", err)
		c.lastErr.Store(&err)
		return err
	}
	c.lastErr.Store(nil)
	now := c.store.now()
	counters := make(map[string]Counters, len(reads))
	for id, read := range reads {
		ct := read()
		ct.lanes = laneReads[id]()
		if old := cur.rooms[id].Load(); old != nil && old.lanes.equal(ct.lanes) {
			// The same lanes as before: the same pointer, so the
			// counters compare equal and wake no event stream.
			ct.lanes = old.lanes
		}
		counters[id] = ct
	}
	if err := c.readDrawn(ctx, counters); err != nil {
		err = fmt.Errorf("refresh counters: %w", err)
		c.lastErr.Store(&err)
		return err
	}
	changed := false
	for id, next := range counters {
		m := c.store.floor(id)
		if m.behind(next) {
			// Redis lost writes (or the whole room) that this instance
			// saw: put them back now rather than at the next join.
			if err := c.store.restore(ctx, id); err != nil {
				err = fmt.Errorf("refresh counters: %w", err)
				c.lastErr.Store(&err)
				return err
			}
		}
		if next.State == "" {
			// Not seeded yet (or Redis lost it): keep what we knew.
			continue
		}
		m.seenCounters(id, now, next)
		next = m.raise(next)
		cur.rates[id].add(now, next)
		// CompareAndSwap, not Store: an Observe that raced this refresh
		// holds fresher counters; the next refresh catches up anyway.
		if old := cur.rooms[id].Load(); (old == nil || *old != next) && cur.rooms[id].CompareAndSwap(old, &next) {
			changed = true
		}
	}
	if changed {
		c.notify()
	}
	return nil
}

// MeasuredRate returns how many visitors per minute room's serving counter
// has moved on while visitors waited, over the last five minutes of this
// instance's refreshes. Positions passed over as abandoned count: they bring
// a waiting visitor's turn closer like any other. It is false while there
// is too little history (under ten seconds of visitors waiting, as after a
// restart), and while a counter that has not moved has not stood still for
// a whole window yet; a counter that stood still for the whole window while
// visitors waited has rate 0.
func (c *Cache) MeasuredRate(room string) (float64, bool) {
	r, ok := c.cur.Load().rates[room]
	if !ok {
		return 0, false
	}
	m := r.last.Load()
	if m == nil {
		return 0, false
	}
	return m.perMinute, m.known
}

// Rate is the admission rate, in visitors per minute, that room's ETAs are
// computed at: the measured rate when known, else the configured one (0 for
// a manual room, whose ETA is then unknown).
func (c *Cache) Rate(room string) float64 {
	if perMinute, ok := c.MeasuredRate(room); ok {
		return perMinute
	}
	if counters, ok := c.Get(room); ok {
		return counters.Policy.RatePerMinute
	}
	if r, ok := c.store.Room(room); ok {
		return r.Policy.RatePerMinute
	}
	return 0
}

// Err returns the last refresh's error, nil when Redis answered.
func (c *Cache) Err() error {
	if p := c.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Observe raises room's cached counters to what a write of this instance
// just saw, so the visitor who caused it is not shown an older counter.
func (c *Cache) Observe(room string, serving, tail int64) {
	p, ok := c.cur.Load().rooms[room]
	if !ok {
		return
	}
	for {
		old := p.Load()
		if old == nil || (old.Serving >= serving && old.Tail >= tail) {
			return
		}
		next := *old
		next.Serving = max(next.Serving, serving)
		next.Tail = max(next.Tail, tail)
		if p.CompareAndSwap(old, &next) {
			c.notify()
			return
		}
	}
}

// Run refreshes every interval until ctx is done.
func (c *Cache) Run(ctx context.Context) {
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		_ = c.Refresh(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// readDrawn loads, for lottery rooms and rooms with lanes, the part of the drawn bitmap between
// serving and tail, so a status poll can tell a drawn visitor without Redis.
// It costs one pipelined read of (tail-serving)/8 bytes per lottery room.
func (c *Cache) readDrawn(ctx context.Context, counters map[string]Counters) error {
	pipe := c.store.rdb.Pipeline()
	reads := map[string]*redis.StringCmd{}
	for id, ct := range counters {
		if (ct.Method == MethodRandom || ct.lanes != nil || ct.shN > 0) && ct.Tail > ct.Serving {
			reads[id] = pipe.GetRange(ctx, c.store.keys(id).drawn, ct.Serving/8, ct.Tail/8)
		}
	}
	if len(reads) == 0 {
		return nil
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	for id, cmd := range reads {
		ct := counters[id]
		ct.drawn, ct.drawnFrom = cmd.Val(), ct.Serving/8*8
		counters[id] = ct
	}
	return nil
}

// cacheRooms is a Cache's per-room state for one set of the store's rooms.
type cacheRooms struct {
	set   *roomSet
	rooms map[string]*atomic.Pointer[Counters]
	rates map[string]*roomRate
}

// sync returns the per-room state for the store's current rooms, rebuilt
// when they changed since: a room kept keeps its counters and measured
// rate, a new one starts empty (unknown until the refresh that follows).
func (c *Cache) sync() *cacheRooms {
	set := c.store.cur.Load()
	for {
		old := c.cur.Load()
		if old != nil && old.set == set {
			return old
		}
		next := &cacheRooms{set: set, rooms: make(map[string]*atomic.Pointer[Counters], len(set.order)),
			rates: make(map[string]*roomRate, len(set.order))}
		for _, id := range set.order {
			if old != nil && old.rooms[id] != nil {
				next.rooms[id], next.rates[id] = old.rooms[id], old.rates[id]
				continue
			}
			next.rooms[id] = new(atomic.Pointer[Counters])
			next.rates[id] = &roomRate{meter: newRateMeter(rateWindow, minRateHistory, c.interval)}
		}
		if c.cur.CompareAndSwap(old, next) {
			return next
		}
	}
}
