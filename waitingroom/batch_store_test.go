package waitingroom_test

import (
	"fmt"
	"sync"
	"testing"
)

// Concurrent joins right after Redis forgot its scripts, or the room: every
// call in a pipeline gets NOSCRIPT or NOSEED and must fall back.
func TestBatchedJoinsSurviveLostScriptsAndRooms(t *testing.T) {
	for _, what := range []string{"noscript", "noseed", "both"} {
		t.Run(what, func(t *testing.T) {
			e := realRedisEnv(t)
			r := manualRoom("launch")
			s := e.store(r)
			e.fill(s, "launch", 3)
			switch what {
			case "noscript":
				e.rdb.ScriptFlush(e.ctx)
			case "noseed":
				for _, k := range e.keysOf() {
					e.rdb.Del(e.ctx, k)
				}
			case "both":
				e.flushAll()
				e.rdb.ScriptFlush(e.ctx)
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			seen := map[int64]bool{}
			errs := 0
			for i := range 200 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					j, err := s.Join(e.ctx, "launch", fmt.Sprintf("c-%d", i), nil)
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						errs++
						t.Errorf("join: %v", err)
						return
					}
					if seen[j.Ticket.Position] {
						t.Errorf("position %d twice", j.Ticket.Position)
					}
					seen[j.Ticket.Position] = true
					if j.Ticket.Position <= 3 {
						t.Errorf("position %d handed out again", j.Ticket.Position)
					}
				}()
			}
			wg.Wait()
			c := e.status(s, "launch")
			t.Logf("%s: tail %d after 200 joins, errors %d", what, c.Tail, errs)
		})
	}
}
