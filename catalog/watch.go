package catalog

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/anteroom/anteroom/internal/rediskey"
)

// Snapshot is the whole catalog at one version.
type Snapshot struct {
	Version int64
	Rooms   []Room
	Clients []Client
}

// Load reads the whole catalog. Definitions that do not decode are left
// out and logged: one bad record must not take the others down.
func (c *Catalog) Load(ctx context.Context) (Snapshot, error) {
	v, err := c.Version(ctx)
	if err != nil {
		return Snapshot{}, err
	}
	rooms, errs, err := c.Rooms(ctx)
	if err != nil {
		return Snapshot{}, err
	}
	clients, cerrs, err := c.Clients(ctx)
	if err != nil {
		return Snapshot{}, err
	}
	for _, e := range append(errs, cerrs...) {
		slog.Error("runtime definition left out", "err", e)
	}
	return Snapshot{Version: v, Rooms: rooms, Clients: clients}, nil
}

// Watcher applies the catalog to an instance whenever it changes.
type Watcher struct {
	cat   *Catalog
	apply func(context.Context, Snapshot) error
	// Poll is how often the version is read as a safety net under the
	// pub/sub notification (a subscriber misses what is published while
	// it reconnects).
	Poll time.Duration

	mu      sync.Mutex
	applied int64
	loaded  bool
	kick    chan struct{}
}

// NewWatcher returns a watcher that calls apply with each new version of
// the catalog; apply's error makes the watcher try again at its next poll.
func NewWatcher(cat *Catalog, apply func(context.Context, Snapshot) error) *Watcher {
	return &Watcher{cat: cat, apply: apply, Poll: time.Second, kick: make(chan struct{}, 1)}
}

// Sync applies the catalog if its version differs from the one applied
// last (or nothing was applied yet). The version is read before the
// definitions, so a change made while they are read is seen again at the
// next sync, never lost.
func (w *Watcher) Sync(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	v, err := w.cat.Version(ctx)
	if err != nil {
		return err
	}
	if w.loaded && v == w.applied {
		return nil
	}
	snap, err := w.cat.Load(ctx)
	if err != nil {
		return err
	}
	snap.Version = v
	if err := w.apply(ctx, snap); err != nil {
		return err
	}
	w.applied, w.loaded = v, true
	return nil
}

// Run keeps the instance in step until ctx is done: at each notification
// on rediskey.CatalogChanged and at every Poll.
func (w *Watcher) Run(ctx context.Context) {
	sub := w.cat.rdb.Subscribe(ctx, rediskey.CatalogChanged)
	defer sub.Close()
	go func() {
		ch := sub.Channel()
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-ch:
				if !ok {
					return
				}
				select {
				case w.kick <- struct{}{}:
				default:
				}
			}
		}
	}()
	t := time.NewTicker(w.Poll)
	defer t.Stop()
	failing := false
	for {
		err := w.Sync(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			slog.Warn("apply the runtime rooms and clients", "err", err)
			failing = true
		case err == nil && failing:
			slog.Info("runtime rooms and clients applied again")
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.kick:
		}
	}
}
