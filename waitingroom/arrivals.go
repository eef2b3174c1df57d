package waitingroom

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Arrivals measures how many visitors ask a room for a place each second,
// across every instance, and carries the operator's live choice of the
// room's challenge mode: what a room's proof of work follows (package
// challenge decides the difficulty from them).
//
// Each instance counts its arrivals in memory and adds them, once per
// Sync, to a counter per room per second in Redis
// (`{r:<room>}:arr:<second>`, a few seconds' life), then reads the last
// two complete seconds of every room: an arrival costs no Redis round
// trip, and every instance sees the same rate within a Sync interval.
type Arrivals struct {
	store *Store
	mu    sync.Mutex
	// pending counts this instance's arrivals by room and second, not yet
	// added to Redis.
	pending map[string]map[int64]int64
	// rates and modes are what the last Sync read.
	rates map[string]float64
	modes map[string]string
}

// arrivalTTL keeps a second's counter as long as Sync may read it.
const arrivalTTL = 10 * time.Second

// NewArrivals returns a meter for store's rooms.
func NewArrivals(store *Store) *Arrivals {
	return &Arrivals{store: store, pending: map[string]map[int64]int64{}, rates: map[string]float64{}, modes: map[string]string{}}
}

// Arrive counts one visitor asking room for a place now.
func (a *Arrivals) Arrive(room string) {
	if _, ok := a.store.cur.Load().rooms[room]; !ok {
		return
	}
	sec := a.store.now().Unix()
	a.mu.Lock()
	m := a.pending[room]
	if m == nil {
		m = map[int64]int64{}
		a.pending[room] = m
	}
	m[sec]++
	a.mu.Unlock()
}

// Rate is room's arrivals per second, all instances, as the last Sync
// read it: the busier of the last two complete seconds, so that a count
// still on its way from another instance does not lower it.
func (a *Arrivals) Rate(room string) float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.rates[room]
}

// Mode is the challenge mode an operator set for room at run time (see
// SetChallengeMode), as the last Sync read it, and whether there is one
// that applies over configured (the room's configured mode): a change of
// the configuration file wins over an earlier live change, as Seed does
// for the room's state.
func (a *Arrivals) Mode(room, configured string) (string, bool) {
	a.mu.Lock()
	v := a.modes[room]
	a.mu.Unlock()
	// The value is "<mode> <configured mode it was set over>".
	mode, over, ok := strings.Cut(v, " ")
	if !ok || over != configured {
		return "", false
	}
	return mode, true
}

func (k roomKeys) arrivals(sec int64) string { return k.tag + "arr:" + strconv.FormatInt(sec, 36) }
func (k roomKeys) challengeMode() string     { return k.tag + "challenge" }

// Sync adds this instance's counts to Redis and reads every room's rate
// and live mode. Counts it could not write are kept for the next Sync.
func (a *Arrivals) Sync(ctx context.Context) error {
	a.mu.Lock()
	batch := a.pending
	a.pending = map[string]map[int64]int64{}
	a.mu.Unlock()
	now := a.store.now().Unix()
	// One pipeline for every room, as the counter cache reads them: a
	// round trip per room every half second would grow with the rooms.
	// On a Cluster the client splits it by node.
	rooms := a.store.cur.Load().order
	pipe := a.store.rdb.Pipeline()
	counts := make([]*redis.SliceCmd, len(rooms))
	modes := make([]*redis.StringCmd, len(rooms))
	for i, room := range rooms {
		k := a.store.keys(room)
		for sec, n := range batch[room] {
			pipe.IncrBy(ctx, k.arrivals(sec), n)
			pipe.Expire(ctx, k.arrivals(sec), arrivalTTL)
		}
		counts[i] = pipe.MGet(ctx, k.arrivals(now-1), k.arrivals(now-2))
		modes[i] = pipe.Get(ctx, k.challengeMode())
	}
	cmds, _ := pipe.Exec(ctx)
	for _, c := range cmds {
		// A room without a live mode answers nil; any other error is
		// one of the pipeline's.
		if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) {
			for room, b := range batch {
				a.keep(room, b)
			}
			return fmt.Errorf("arrivals: %w", err)
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, room := range rooms {
		var rate float64
		for _, v := range counts[i].Val() {
			if s, ok := v.(string); ok {
				n, _ := strconv.ParseFloat(s, 64)
				rate = max(rate, n)
			}
		}
		a.rates[room] = rate
		a.modes[room] = modes[i].Val()
	}
	return nil
}

func (a *Arrivals) keep(room string, counts map[int64]int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := a.pending[room]
	if m == nil {
		m = map[int64]int64{}
		a.pending[room] = m
	}
	for sec, n := range counts {
		m[sec] += n
	}
}

// Run syncs every interval until ctx is done.
func (a *Arrivals) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = a.Sync(ctx)
		}
	}
}

// SetChallengeMode switches room's challenge mode for every instance (the
// admin API): mode applies over the configured mode until the
// configuration file changes it. Every instance applies it at its next
// Sync.
func (s *Store) SetChallengeMode(ctx context.Context, room, mode, configured string) error {
	if _, err := s.room(room); err != nil {
		return err
	}
	if err := s.rdb.Set(ctx, s.keys(room).challengeMode(), mode+" "+configured, 0).Err(); err != nil {
		return fmt.Errorf("set challenge mode of room %q: %w", room, err)
	}
	return nil
}
