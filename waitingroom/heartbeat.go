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
	r, ok := h.store.rooms[room]
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

// Flush writes what was collected. On failure the beats are kept for the
// next flush.
func (h *Heartbeats) Flush(ctx context.Context) error {
	h.mu.Lock()
	batch := h.pending
	h.pending = map[string]map[int64]struct{}{}
	h.mu.Unlock()
	now := h.store.now()
	var errs []error
	for room, set := range batch {
		r := h.store.rooms[room]
		k := h.store.keys(room)
		args := make([]any, 0, len(set)+1)
		args = append(args, liveTTL(r))
		for p := range set {
			args = append(args, p)
		}
		if err := heartbeatScript.Run(ctx, h.store.rdb, []string{k.live(r, now, 0), k.skipped, k.returned}, args...).Err(); err != nil {
			errs = append(errs, fmt.Errorf("heartbeats of room %q: %w", room, err))
			h.mu.Lock()
			for p := range set {
				if h.pending[room] == nil {
					h.pending[room] = map[int64]struct{}{}
				}
				h.pending[room][p] = struct{}{}
			}
			h.mu.Unlock()
		}
	}
	return errors.Join(errs...)
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
