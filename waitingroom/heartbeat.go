package waitingroom

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Heartbeats collects signs of life from waiting pages (status polls, open
// event streams) in memory and writes them to Redis in one script per room
// per flush, so a poll never costs a Redis write.
type Heartbeats struct {
	store   *Store
	mu      sync.Mutex
	pending map[string]map[int64]struct{}
}

// NewHeartbeats returns a collector for store's rooms.
func NewHeartbeats(store *Store) *Heartbeats {
	return &Heartbeats{store: store, pending: map[string]map[int64]struct{}{}}
}

// Beat records that the visitor at position in room is still there. Rooms
// without abandonment and visitors without a position are ignored.
func (h *Heartbeats) Beat(room string, position int64) {
	r, ok := h.store.cur.Load().rooms[room]
	if !ok || r.AbandonAfter <= 0 || position <= 0 {
		return
	}
	h.mu.Lock()
	set := h.pending[room]
	if set == nil {
		set = map[int64]struct{}{}
		h.pending[room] = set
	}
	set[position] = struct{}{}
	h.mu.Unlock()
}

// heartbeatBatch bounds the positions one script call records: a script
// blocks Redis while it runs, and a busy room collects beats from hundreds
// of thousands of pages between flushes.
const heartbeatBatch = 1000

// Flush writes what was collected, in batches of heartbeatBatch positions.
// On failure the beats not written are kept for the next flush.
func (h *Heartbeats) Flush(ctx context.Context) error {
	h.mu.Lock()
	batch := h.pending
	h.pending = map[string]map[int64]struct{}{}
	h.mu.Unlock()
	now := h.store.now()
	var errs []error
	for room, set := range batch {
		r, ok := h.store.cur.Load().rooms[room]
		if !ok {
			continue // removed since: nobody waits there any more
		}
		k := h.store.keys(room)
		keys := []string{k.live(r, now, 0), k.skipped, k.returned}
		positions := make([]int64, 0, len(set))
		for p := range set {
			positions = append(positions, p)
		}
		args := make([]any, 0, min(len(positions), heartbeatBatch)+1)
		for len(positions) > 0 {
			n := min(len(positions), heartbeatBatch)
			args = append(args[:0], liveTTL(r))
			for _, p := range positions[:n] {
				args = append(args, p)
			}
			if err := heartbeatScript.Run(ctx, h.store.rdb, keys, args...).Err(); err != nil {
				errs = append(errs, fmt.Errorf("heartbeats of room %q: %w", room, err))
				h.keep(room, positions)
				break
			}
			positions = positions[n:]
		}
	}
	return errors.Join(errs...)
}

// keep puts beats that could not be written back for the next flush.
func (h *Heartbeats) keep(room string, positions []int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.pending[room] == nil {
		h.pending[room] = map[int64]struct{}{}
	}
	for _, p := range positions {
		h.pending[room][p] = struct{}{}
	}
}

// Run flushes every interval until ctx is done, and once more at the end.
func (h *Heartbeats) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = h.Flush(fctx)
			cancel()
			return
		case <-t.C:
			_ = h.Flush(ctx)
		}
	}
}
