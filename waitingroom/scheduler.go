package waitingroom

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// Scheduler advances every room's serving counter by its policy. Any number
// of instances may run one: per room, a Redis lease elects the instance that
// ticks, and the tick script checks the lease itself, so an instance that
// lost its lease (paused, partitioned) cannot advance even once more. The
// budget is computed from the time elapsed since the last tick recorded in
// Redis, so a handover neither skips nor repeats admissions.
type Scheduler struct {
	store    *Store
	owner    string
	interval time.Duration
	leaseTTL time.Duration

	mu      sync.Mutex
	leading map[string]bool
	// shuffling says which rooms are letting an event's pre-queue in in
	// its drawn order, as the last tick said: their ticks carry the order.
	shuffling map[string]bool
	// OnAdvance, when set, is called after a tick admitted visitors.
	OnAdvance func(room string, advanced int64)
	// OnSkip, when set, is called after a tick passed over visitors whose
	// page fell silent (abandonment).
	OnSkip func(room string, skipped int64)
	// OnEvent, when set, is called when this instance switched a room's
	// settings to a scheduled event's (started true) or back to the
	// room's own.
	OnEvent func(room string, started bool)
	// OnLaneAdvance, when set, is called after a tick of a room with
	// priority lanes, for each lane (StandardLane included) it admitted
	// visitors from.
	OnLaneAdvance func(room, lane string, admitted int64)
	// Throttle, when set, scales a room's admission rate at each tick:
	// 1 is the configured rate, 0.5 half of it, 0 admits nobody. Origin
	// health probing uses it to slow a room whose site is struggling.
	Throttle func(room string) float64
}

// NewScheduler returns a scheduler that identifies itself in leases as owner
// (unique per instance). It ticks every interval; the lease lasts three
// intervals, so a dead leader is replaced within that.
func NewScheduler(store *Store, owner string, interval time.Duration) *Scheduler {
	if interval <= 0 {
		interval = 500 * time.Millisecond
	}
	return &Scheduler{store: store, owner: owner, interval: interval, leaseTTL: 3 * interval, leading: map[string]bool{}, shuffling: map[string]bool{}}
}

// Step runs one tick for every room.
func (sc *Scheduler) Step(ctx context.Context) error {
	var errs []error
	set := sc.store.cur.Load()
	for _, id := range set.order {
		// Every instance switches a room's events by its own clock (the
		// switch is idempotent); the leader's tick then runs under them.
		if n, err := sc.store.applyEvents(ctx, set.rooms[id]); err != nil {
			errs = append(errs, err)
		} else {
			if n == 3 {
				sc.mu.Lock()
				sc.shuffling[id] = true
				sc.mu.Unlock()
			}
			if n > 0 && sc.OnEvent != nil {
				sc.OnEvent(id, n != 2)
			}
		}
		if err := sc.tick(ctx, set.rooms[id]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (sc *Scheduler) tick(ctx context.Context, r Room) error {
	k := sc.store.keys(r.ID)
	factor := 1.0
	if sc.Throttle != nil {
		factor = min(1, max(0, sc.Throttle(r.ID)))
	}
	now := sc.store.now()
	abandon := r.AbandonAfter.Milliseconds()
	laneKeys, laneArgs := sc.store.laneArgs(r)
	sc.mu.Lock()
	shuffling := sc.shuffling[r.ID]
	sc.mu.Unlock()
	if shuffling {
		order, err := sc.store.shuffleArgs(ctx, r)
		if err != nil {
			return err
		}
		laneArgs = append(laneArgs, order...)
	}
	res, err := sc.store.runVia(ctx, nil, r, tickScript,
		append([]string{k.lease, k.hash, k.serving, k.tail, k.active, k.reached, k.live(r, now, 0), k.skipped, k.returned, k.live(r, now, 1), k.drawn}, laneKeys...),
		[]any{sc.owner, now.UnixMilli(), sc.leaseTTL.Milliseconds(), ClaimWindow.Milliseconds(), formatFloat(factor),
			newDrawKey(), abandon, rand.Int64N(1 << 31)}, laneArgs).Int64Slice()
	sc.mu.Lock()
	sc.leading[r.ID] = err == nil && res[0] == 1
	sc.mu.Unlock()
	if err != nil {
		return err
	}
	if res[0] == 1 && len(res) > 5 {
		sc.store.floor(r.ID).seen(r.ID, now, res[5], res[3], res[2])
	}
	if res[0] == 1 && res[1] > 0 && sc.OnAdvance != nil {
		sc.OnAdvance(r.ID, res[1])
	}
	if res[0] == 1 && len(res) > 4 && res[4] > 0 && sc.OnSkip != nil {
		sc.OnSkip(r.ID, res[4])
	}
	if res[0] == 1 && len(res) > 6 {
		sc.mu.Lock()
		sc.shuffling[r.ID] = res[6] == 1
		sc.mu.Unlock()
	}
	if res[0] == 1 && len(res) > 7 && sc.OnLaneAdvance != nil {
		lanes, _ := r.priority()
		for i, n := range res[7:] {
			lane := StandardLane
			if i > 0 && i <= len(lanes) {
				lane = lanes[i-1].ID
			}
			if n > 0 {
				sc.OnLaneAdvance(r.ID, lane, n)
			}
		}
	}
	return nil
}

// Leading reports whether this scheduler held room's lease at its last tick.
func (sc *Scheduler) Leading(room string) bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.leading[room]
}

// Run ticks until ctx is done, then gives its leases up so another instance
// takes over at once rather than after the lease times out.
func (sc *Scheduler) Run(ctx context.Context) {
	t := time.NewTicker(sc.interval)
	defer t.Stop()
	failing := false
	for {
		err := sc.Step(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			slog.Warn("scheduler tick failed", "err", err)
			failing = true
		case err == nil && failing:
			slog.Info("scheduler recovered")
			failing = false
		}
		select {
		case <-ctx.Done():
			sc.release()
			return
		case <-t.C:
		}
	}
}

func (sc *Scheduler) release() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, id := range sc.store.Rooms() {
		_ = releaseScript.Run(ctx, sc.store.rdb, []string{sc.store.keys(id).lease}, sc.owner).Err()
		sc.mu.Lock()
		sc.leading[id] = false
		sc.mu.Unlock()
	}
}
