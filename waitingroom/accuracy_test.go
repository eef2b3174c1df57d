package waitingroom_test

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/anteroom/anteroom/waitingroom"
)

// testRateAccuracyTenMinutes: with ticks every second (and irregular ones),
// N per minute admits N×10 within ±1 over ten minutes.
func testRateAccuracyTenMinutes(e *env) {
	for _, rate := range []float64{7, 60, 137.5} {
		room := fmt.Sprintf("r%v", rate)
		s := e.store(rateRoom(room, rate))
		sc := waitingroom.NewScheduler(s, "a", time.Second)
		e.fill(s, room, int(rate*10)+50)
		e.step(sc)
		base := e.serving(s, room)
		for i := 0; i < 600; {
			step := 1 + i%3 // 1, 2, 3 s: a leader that ticks late does not lose admissions
			e.clock.Add(time.Duration(step) * time.Second)
			e.step(sc)
			i += step
		}
		got := float64(e.serving(s, room) - base)
		if math.Abs(got-rate*10) > 1 {
			e.t.Fatalf("%v/min over 10 minutes admitted %v, want %v ± 1", rate, got, rate*10)
		}
	}
}

// testCapacityAcrossInstances: three instances (stores and schedulers on
// one Redis) contend for one room with max_active while visitors continue
// and sessions end concurrently; active plus reached-not-continued never
// exceeds max_active.
func testCapacityAcrossInstances(e *env) {
	const maxActive = 5
	var stores []*waitingroom.Store
	var scheds []*waitingroom.Scheduler
	for i := range 3 {
		s := e.store(capacityRoom("cap", 600, maxActive))
		stores = append(stores, s)
		scheds = append(scheds, waitingroom.NewScheduler(s, fmt.Sprintf("i%d", i), time.Second))
	}
	visitors := e.fill(stores[0], "cap", 60)
	admitted := make([]waitingroom.Ticket, 0, len(visitors))
	for round := 0; round < 40; round++ {
		e.clock.Add(time.Second)
		for _, sc := range scheds {
			e.step(sc)
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i, v := range visitors {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := stores[i%3]
				t, err := s.Admit(e.ctx, v.ticket, v.request)
				if err == nil {
					mu.Lock()
					admitted = append(admitted, t)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		// Sessions end concurrently, on all three instances.
		for i, t := range admitted {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = stores[i%3].EndSession(e.ctx, "cap", t.ID)
			}()
		}
		wg.Wait()
		admitted = admitted[:0]
		c := e.status(stores[0], "cap")
		if c.Active > maxActive {
			e.t.Fatalf("round %d: %d active, max %d", round, c.Active, maxActive)
		}
		reached := c.Serving
		if reached > int64(maxActive*(round+1)) {
			e.t.Fatalf("round %d: serving %d, more than %d slots could have freed", round, reached, maxActive*(round+1))
		}
	}
	if got := e.serving(stores[0], "cap"); got < 30 {
		e.t.Fatalf("capacity freed by ending sessions was not reused: serving %d", got)
	}
}
