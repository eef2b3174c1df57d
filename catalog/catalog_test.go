package catalog_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/anteroom/anteroom/catalog"
	"github.com/anteroom/anteroom/config"
	"github.com/anteroom/anteroom/internal/testredis"
)

// The catalog's contract runs on a single redis-server and on a Cluster,
// where a command spanning two slots fails the test.
func TestCatalogRedis(t *testing.T) {
	srv, err := testredis.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	runCatalog(t, srv.Client(t))
}

func TestCatalogCluster(t *testing.T) {
	c := testredis.StartCluster(t)
	rdb := c.Client(t)
	testredis.FailOnCrossSlot(t, rdb)
	runCatalog(t, rdb)
}

func parseRoom(t *testing.T, body string) config.Room {
	t.Helper()
	r, err := config.ParseRoom([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return *r
}

func runCatalog(t *testing.T, rdb redis.UniversalClient) {
	ctx := t.Context()
	now := time.Date(2026, 12, 6, 23, 0, 0, 0, time.UTC)
	cat := catalog.New(rdb, func() time.Time { return now })
	var applied atomic.Int64
	var last atomic.Pointer[catalog.Snapshot]
	w := catalog.NewWatcher(catalog.New(rdb, nil), func(_ context.Context, s catalog.Snapshot) error {
		applied.Add(1)
		last.Store(&s)
		return nil
	})
	if err := w.Sync(ctx); err != nil || applied.Load() != 1 {
		t.Fatalf("first Sync: %v, applied %d", err, applied.Load())
	}
	if err := w.Sync(ctx); err != nil || applied.Load() != 1 {
		t.Fatalf("Sync without a change applied again: %v, %d", err, applied.Load())
	}

	sale := parseRoom(t, `{"id": "sale", "admission": {"rate_per_minute": 60}}`)
	if _, err := cat.CreateRoom(ctx, sale, "ops"); err != nil {
		t.Fatal(err)
	}
	if _, err := cat.CreateRoom(ctx, sale, "ops"); !errors.Is(err, catalog.ErrExists) {
		t.Fatalf("second create: %v, want ErrExists", err)
	}
	got, err := cat.Room(ctx, "sale")
	if err != nil || got.Name != "sale" || *got.Admission.RatePerMinute != 60 || got.Record.Rev != 1 || got.Record.UpdatedBy != "ops" || !got.Record.CreatedAt.Equal(now) {
		t.Fatalf("Room = %+v, %v", got, err)
	}
	hash := sha256.Sum256([]byte("a secret of the client, 32 chars"))
	if _, err := cat.CreateClient(ctx, config.Client{ID: "shop", Room: "sale", RedirectURIs: []string{"https://shop.example/cb"}}, hash[:], "ops"); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	s := last.Load()
	if len(s.Rooms) != 1 || s.Rooms[0].ID != "sale" || len(s.Clients) != 1 || string(s.Clients[0].SecretHash) != string(hash[:]) || s.Clients[0].Secret != "" {
		t.Fatalf("snapshot after the creates: %+v", s)
	}

	// Update: compare-and-set.
	before, after, err := cat.UpdateRoom(ctx, "sale", "ops2", func(r config.Room) (config.Room, error) {
		rate := 90.0
		r.Admission.RatePerMinute = &rate
		// A concurrent edit lands first: this one must not overwrite it.
		if _, _, err := cat.UpdateRoom(ctx, "sale", "other", func(r config.Room) (config.Room, error) {
			r.Message = "hello"
			return r, nil
		}); err != nil {
			t.Fatal(err)
		}
		return r, nil
	})
	if !errors.Is(err, catalog.ErrConflict) {
		t.Fatalf("lost update: before %+v after %+v err %v", before, after, err)
	}
	if got, _ := cat.Room(ctx, "sale"); got.Message != "hello" || *got.Admission.RatePerMinute != 60 || got.Record.Rev != 2 {
		t.Fatalf("after the concurrent edit: %+v", got)
	}
	_, cafter, err := cat.UpdateClient(ctx, "shop", "ops", func(c config.Client) (config.Client, error) {
		c.RedirectURIs = append(c.RedirectURIs, "https://shop.example/cb2")
		return c, nil
	})
	if err != nil || len(cafter.RedirectURIs) != 2 || string(cafter.SecretHash) != string(hash[:]) {
		t.Fatalf("UpdateClient = %+v, %v", cafter, err)
	}

	// Delete.
	if _, err := cat.DeleteRoom(ctx, "sale"); err != nil {
		t.Fatal(err)
	}
	if _, err := cat.DeleteRoom(ctx, "sale"); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := cat.DeleteClient(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if s := last.Load(); len(s.Rooms) != 0 || len(s.Clients) != 0 {
		t.Fatalf("snapshot after the deletes: %+v", s)
	}

	// Run: a change reaches a running watcher by its notification or its
	// poll, without a Sync by hand.
	ctx2, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { w.Run(ctx2); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	n := applied.Load()
	if _, err := cat.CreateRoom(ctx, parseRoom(t, `{"id": "next"}`), "ops"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if s := last.Load(); applied.Load() > n && len(s.Rooms) == 1 && s.Rooms[0].ID == "next" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a running watcher never applied the new room")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
