package waitingroom_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/anteroom/anteroom/internal/testredis"
	"github.com/anteroom/anteroom/waitingroom"
)

// These tests SIGKILL a real redis-server with an append-only file while
// two instances (store, counter cache and scheduler each, on the wall
// clock) let visitors join and continue, restart it, and check what the
// queue promises: no position is handed out twice, the counter an instance
// shows never goes back, and every admission survives.

// crashLab is two instances of one rate room on srv, and visitors that join
// and continue through them.
type crashLab struct {
	t    *testing.T
	srv  *testredis.Server
	room waitingroom.Room
	inst [2]*crashInstance
	// paused holds the visitors back while the test looks at Redis.
	paused sync.RWMutex
	stop   atomic.Bool
	wg     sync.WaitGroup

	// forgetful is set when the instances were replaced by new ones that
	// remember nothing: a visitor the counter had reached may then be told
	// to wait again, which is counted rather than a broken promise.
	forgetful bool
	waitAgain int

	mu        sync.Mutex
	positions map[int64]waitingroom.TicketID
	admitted  []visitor
	problems  []string
	maxServed int64 // the highest counter any instance showed
	joins     int
	failures  int
}

type crashInstance struct {
	store *waitingroom.Store
	cache *waitingroom.Cache
	sched *waitingroom.Scheduler
	stop  context.CancelFunc
	done  chan struct{}
	shown int64 // the highest counter its cache showed
}

func newCrashLab(t *testing.T, fsync string) *crashLab {
	t.Helper()
	srv := testredis.StartWithArgs(t, "--appendonly", "yes", "--appendfsync", fsync)
	if !srv.Real() {
		t.Skip("needs a real redis-server to kill")
	}
	room := rateRoom("launch", 1200)
	l := &crashLab{t: t, srv: srv, room: room, positions: map[int64]waitingroom.TicketID{}}
	l.newInstances()
	t.Cleanup(func() {
		l.stop.Store(true)
		l.wg.Wait()
		for _, in := range l.inst {
			in.stop()
			<-in.done
		}
	})
	return l
}

// newInstances starts two instances that remember nothing.
func (l *crashLab) newInstances() {
	for i := range l.inst {
		// Short timeouts, so that calls fail fast while Redis is down.
		rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{l.srv.Addr()},
			DialTimeout: 200 * time.Millisecond, ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond,
			ContextTimeoutEnabled: true})
		l.t.Cleanup(func() { rdb.Close() })
		s, err := waitingroom.NewStore(rdb, []waitingroom.Room{l.room})
		if err != nil {
			l.t.Fatal(err)
		}
		if err := s.Seed(l.t.Context()); err != nil {
			l.t.Fatal(err)
		}
		in := &crashInstance{store: s, cache: waitingroom.NewCache(s, 100*time.Millisecond),
			sched: waitingroom.NewScheduler(s, fmt.Sprintf("instance-%d-%d", i, time.Now().UnixNano()), 100*time.Millisecond)}
		l.inst[i] = in
		l.runBackground(in)
	}
}

// runBackground starts an instance's counter cache, scheduler and a
// watcher of the counter its cache shows.
func (l *crashLab) runBackground(in *crashInstance) {
	ctx, cancel := context.WithCancel(context.Background())
	in.stop, in.done = cancel, make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); in.cache.Run(ctx) }()
	go func() { defer wg.Done(); in.sched.Run(ctx) }()
	go func() {
		defer wg.Done()
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if c, ok := in.cache.Get("launch"); ok {
				l.mu.Lock()
				if c.Serving < in.shown {
					l.problems = append(l.problems, fmt.Sprintf("an instance's counter went back from %d to %d", in.shown, c.Serving))
				}
				in.shown = max(in.shown, c.Serving)
				l.maxServed = max(l.maxServed, c.Serving)
				l.mu.Unlock()
			}
		}
	}()
	go func() { wg.Wait(); close(in.done) }()
}

// visitors starts n visitors' browsers: each joins through one instance,
// and continues through it once its cache shows the visitor admitted.
func (l *crashLab) visitors(n int) {
	for w := range n {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			var waiting []visitor
			for seq := 0; !l.stop.Load(); seq++ {
				l.paused.RLock()
				ok := l.visit(l.inst[w%len(l.inst)], fmt.Sprintf("w%d-%d", w, seq), &waiting)
				l.paused.RUnlock()
				if !ok {
					time.Sleep(20 * time.Millisecond)
				} else {
					time.Sleep(2 * time.Millisecond)
				}
			}
		}()
	}
}

func (l *crashLab) visit(in *crashInstance, request string, waiting *[]visitor) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	j, err := in.store.Join(ctx, "launch", request, nil)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failures++
		return false
	}
	l.joins++
	if other, dup := l.positions[j.Ticket.Position]; dup {
		l.problems = append(l.problems, fmt.Sprintf("position %d handed out twice (tickets %s and %s)", j.Ticket.Position, other, j.Ticket.ID))
	}
	l.positions[j.Ticket.Position] = j.Ticket.ID
	*waiting = append(*waiting, visitor{j.Ticket, request})
	c, _ := in.cache.Get("launch")
	c.Serving = max(c.Serving, j.Serving)
	kept := (*waiting)[:0]
	for _, v := range *waiting {
		if !c.Reached(v.ticket) {
			kept = append(kept, v)
			continue
		}
		l.mu.Unlock()
		t, err := in.store.Admit(ctx, v.ticket, v.request)
		l.mu.Lock()
		switch {
		case err == nil:
			l.admitted = append(l.admitted, visitor{t, v.request})
		case errors.Is(err, waitingroom.ErrNotAdmitted) && l.forgetful:
			l.waitAgain++
			kept = append(kept, v)
		case errors.Is(err, waitingroom.ErrNotAdmitted):
			l.problems = append(l.problems, fmt.Sprintf("position %d: shown admitted (serving %d), then told to wait", v.ticket.Position, c.Serving))
		default:
			l.failures++
			kept = append(kept, v)
		}
	}
	*waiting = kept
	return true
}

// seen returns the last position handed out and the highest counter an
// instance showed, so far.
func (l *crashLab) seen() (position, served int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for p := range l.positions {
		position = max(position, p)
	}
	return position, l.maxServed
}

// rawCounters reads tail and serving from Redis with a client of its own.
func (l *crashLab) rawCounters() (tail, serving int64) {
	l.t.Helper()
	rdb := l.srv.Client(l.t)
	vals, err := rdb.MGet(l.t.Context(), "anteroom:{r:launch}:tail", "anteroom:{r:launch}:serving").Result()
	if err != nil {
		l.t.Fatal(err)
	}
	num := func(v any) int64 {
		var n int64
		if s, ok := v.(string); ok {
			fmt.Sscan(s, &n)
		}
		return n
	}
	return num(vals[0]), num(vals[1])
}

// crash kills Redis, lets the visitors fail against it for a moment, then
// holds everything back, lets cut run on the stopped server's files, and
// restarts it. inspect sees Redis before any instance touches it again.
// With forget, new instances replace the old ones, as if every machine had
// crashed.
func (l *crashLab) crash(cut func(), inspect func(), forget bool) {
	l.t.Helper()
	if err := l.srv.Kill(); err != nil {
		l.t.Fatal(err)
	}
	down := time.Now()
	time.Sleep(300 * time.Millisecond)
	l.paused.Lock()
	for _, in := range l.inst {
		in.stop()
		<-in.done
	}
	if cut != nil {
		cut()
	}
	if err := l.srv.Restart(); err != nil {
		l.t.Fatal(err)
	}
	inspect()
	if forget {
		l.mu.Lock()
		l.forgetful = true
		l.mu.Unlock()
		l.newInstances()
	} else {
		for _, in := range l.inst {
			l.runBackground(in)
		}
	}
	l.paused.Unlock()
	l.t.Logf("redis down for %v", time.Since(down).Round(time.Millisecond))
}

// check reports every broken promise, and that every admission survived.
func (l *crashLab) check() {
	l.t.Helper()
	l.stop.Store(true)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.problems {
		l.t.Error(p)
	}
	in := l.inst[0]
	for _, v := range l.admitted {
		got, err := in.store.Admit(l.t.Context(), v.ticket, v.request)
		if err != nil || !got.AdmittedAt.Equal(v.ticket.AdmittedAt) {
			l.t.Errorf("admitted visitor at %d after the crash: %+v, %v", v.ticket.Position, got, err)
		}
	}
	c, err := in.store.Status(l.t.Context(), "launch")
	if err != nil {
		l.t.Fatal(err)
	}
	if c.Serving < l.maxServed && !l.forgetful {
		l.t.Errorf("serving %d at the end, below the %d an instance showed", c.Serving, l.maxServed)
	}
	l.t.Logf("%d joins (%d distinct positions up to %d), %d admissions, %d calls failed while Redis was down, %d reached visitors told to wait again",
		l.joins, len(l.positions), c.Tail, len(l.admitted), l.failures, l.waitAgain)
	if l.joins == 0 || len(l.admitted) == 0 {
		l.t.Fatal("the visitors did nothing: the test proves nothing")
	}
}

// With appendfsync always, a write is on disk before its reply: Redis
// itself loses nothing, even to an instance that remembers nothing.
func TestCrashWithAppendfsyncAlwaysLosesNothing(t *testing.T) {
	l := newCrashLab(t, "always")
	l.visitors(4)
	time.Sleep(700 * time.Millisecond)
	last, served := l.seen()
	l.crash(nil, func() {
		tail, serving := l.rawCounters()
		t.Logf("before the crash: position %d handed out, counter at %d; Redis restarted with tail %d, serving %d", last, served, tail, serving)
		if tail < last || serving < served {
			t.Errorf("appendfsync always lost writes: tail %d < %d or serving %d < %d", tail, last, serving, served)
		}
	}, false)
	time.Sleep(700 * time.Millisecond)
	l.check()
}

// With appendfsync everysec, a killed redis-server almost never loses
// anything: a write reaches the kernel before its reply. A machine crash
// loses what the kernel had not written to disk yet, up to about two
// seconds. The test simulates one by cutting the append-only file back to
// its length of 400 ms before the kill: the instances, which survive it,
// restore what Redis lost.
func TestCrashWithAppendfsyncEverysecKeepsPositions(t *testing.T) {
	machineCrash(t, false)
}

// The same crash, and every instance crashed too: nobody remembers the
// lost writes. The room keeps its epoch (its hash survived), so the gap the
// first join leaves, sized from the joins Redis had written, is what keeps
// the lost positions from being handed out again.
func TestCrashOfRedisAndEveryInstanceLeavesAGap(t *testing.T) {
	machineCrash(t, true)
}

func machineCrash(t *testing.T, forget bool) {
	l := newCrashLab(t, "everysec")
	l.visitors(4)
	time.Sleep(700 * time.Millisecond)
	files, err := filepath.Glob(filepath.Join(l.srv.Dir(), "appendonlydir", "*.incr.aof"))
	if err != nil || len(files) != 1 {
		t.Fatalf("append-only files %v, %v: want one incremental file", files, err)
	}
	info, err := os.Stat(files[0])
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond)
	last, _ := l.seen()
	l.crash(func() {
		if err := os.Truncate(files[0], info.Size()); err != nil {
			t.Fatal(err)
		}
	}, func() {
		tail, _ := l.rawCounters()
		t.Logf("the simulated machine crash lost positions %d to %d", tail+1, last)
		if tail >= last {
			t.Fatalf("cutting the file lost nothing (tail %d, last position %d): the test proves nothing", tail, last)
		}
	}, forget)
	time.Sleep(700 * time.Millisecond)
	l.check()
}
