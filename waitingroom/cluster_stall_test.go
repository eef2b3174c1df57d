package waitingroom_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/anteroom/anteroom/internal/testredis"
)

const busyLua = `
local t = redis.call('TIME')
while true do
  local n = redis.call('TIME')
  if (n[1] - t[1]) * 1000000 + (n[2] - t[2]) > tonumber(ARGV[1]) then break end
end
return 1`

// One master of a Cluster stalls (a slow script, a failover, a network
// problem). Joins into a room on another, healthy master do not wait for it:
// batches are per room.
func TestStalledClusterMasterHoldsUpOnlyItsRooms(t *testing.T) {
	c := testredis.StartCluster(t)
	rdb := c.Client(t)
	e := newEnv(t, func(*testing.T) redis.UniversalClient { return rdb })
	healthy, stalled := slotRooms[0], slotRooms[1]
	s := e.store(manualRoom(healthy), manualRoom(stalled))
	e.fill(s, healthy, 1)
	e.fill(s, stalled, 1) // scripts loaded on both masters

	go rdb.Eval(context.Background(), busyLua, []string{"{r:" + stalled + "}busy"}, 2_000_000)
	time.Sleep(100 * time.Millisecond)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s.Join(ctx, stalled, fmt.Sprintf("s-%d", i), nil)
		}()
	}
	time.Sleep(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.Join(ctx, healthy, "h-1", nil)
	took := time.Since(start)
	wg.Wait()
	if err != nil {
		t.Fatalf("join into %q (healthy master) while %q's master stalls: %v after %v", healthy, stalled, err, took)
	}
	t.Logf("join into the healthy room took %v", took)
}
