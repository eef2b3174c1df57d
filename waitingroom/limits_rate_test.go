package waitingroom_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/anteroom/anteroom/waitingroom"
)

// A client that joins as fast as it can, for 10 s, on a limit of perMinute
// with a burst of 10: at most 10 + perMinute/6 places.
func TestJoinLimitHoldsAtHighRates(t *testing.T) {
	for _, perMinute := range []float64{60, 400, 1200} {
		t.Run(fmt.Sprint(perMinute), func(t *testing.T) {
			e := realRedisEnv(t)
			e.clock.Add(37 * time.Millisecond)
			s := e.limitedStore(waitingroom.WithJoinLimit(perMinute, 10))
			ok := 0
			for i := range 2000 {
				if _, err := s.Join(e.ctx, "launch", fmt.Sprintf("r-%d", i), nil, waitingroom.JoinFrom("10.0.0.1")); err == nil {
					ok++
				}
				e.clock.Add(5 * time.Millisecond)
			}
			want := 10 + int(perMinute/6)
			t.Logf("limit %v/min, burst 10: %d places in 10 s, want at most %d", perMinute, ok, want)
			if ok > want+want/10 {
				t.Errorf("limit %v/min: %d places in 10 s, want at most %d", perMinute, ok, want)
			}
		})
	}
}
