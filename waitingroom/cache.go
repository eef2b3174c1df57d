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
	rooms    map[string]*atomic.Pointer[Counters]
	changed  atomic.Pointer[chan struct{}]
	lastErr  atomic.Pointer[error]
}

// NewCache returns a cache of store's rooms, refreshed every interval by Run.
func NewCache(store *Store, interval time.Duration) *Cache {
	if interval <= 0 {
		interval = 500 * time.Millisecond
	}
	c := &Cache{store: store, interval: interval, rooms: make(map[string]*atomic.Pointer[Counters], len(store.order))}
	for _, id := range store.order {
		c.rooms[id] = new(atomic.Pointer[Counters])
	}
	ch := make(chan struct{})
	c.changed.Store(&ch)
	return c
}

// Get returns room's cached counters; false until the first refresh.
func (c *Cache) Get(room string) (Counters, bool) {
	p, ok := c.rooms[room]
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
	pipe := c.store.rdb.Pipeline()
	reads := make(map[string]func() Counters, len(c.rooms))
	for id := range c.rooms {
		reads[id] = c.store.queueCounters(ctx, pipe, c.store.keys(id))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		err = fmt.Errorf("refresh counters: %w", err)
		c.lastErr.Store(&err)
		return err
	}
	c.lastErr.Store(nil)
	changed := false
	for id, read := range reads {
		next := read()
		if next.State == "" {
			// Not seeded yet (or Redis lost it): keep what we knew.
			continue
		}
		// CompareAndSwap, not Store: an Observe that raced this refresh
		// holds fresher counters; the next refresh catches up anyway.
		if old := c.rooms[id].Load(); (old == nil || *old != next) && c.rooms[id].CompareAndSwap(old, &next) {
			changed = true
		}
	}
	if changed {
		c.notify()
	}
	return nil
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
	p, ok := c.rooms[room]
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
