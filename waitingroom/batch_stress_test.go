package waitingroom

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/anteroom/anteroom/internal/testredis"
)

// Many joins, some giving up at once, some soon, some never: nobody hangs,
// every slot comes back, the queue ends empty, and positions are unique.
func TestBatcherUnderConcurrentJoinsAndCancellations(t *testing.T) {
	srv := testredis.Start(t)
	rdb := srv.Client(t)
	r := Room{ID: "launch", Name: "launch", State: StateOpen, SessionTTL: 10 * time.Minute, MaxWait: time.Hour}
	s, err := NewStore(rdb, []Room{r}, WithPrefix(fmt.Sprintf("stress-%d", rand.Int())))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Seed(t.Context()); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[int64]bool{}
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				ctx, cancel := context.Background(), context.CancelFunc(func() {})
				switch rand.IntN(4) {
				case 0:
					ctx, cancel = context.WithTimeout(ctx, time.Duration(rand.IntN(300))*time.Microsecond)
				case 1:
					ctx, cancel = context.WithTimeout(ctx, time.Second)
				case 2:
					ctx, cancel = context.WithCancel(ctx)
					time.AfterFunc(time.Duration(rand.IntN(500))*time.Microsecond, cancel)
				}
				j, err := s.Join(ctx, "launch", fmt.Sprintf("r-%d-%d", g, i), nil)
				cancel()
				if err == nil {
					mu.Lock()
					if seen[j.Ticket.Position] {
						t.Errorf("position %d twice", j.Ticket.Position)
					}
					seen[j.Ticket.Position] = true
					mu.Unlock()
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("joins hang")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		b := s.cur.Load().batches["launch"]
		b.mu.Lock()
		in, q := b.inflight, len(b.queue)
		b.mu.Unlock()
		if in == 0 && q == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the joins: %d batches in flight, %d queued", in, q)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("%d joins succeeded", len(seen))
}
