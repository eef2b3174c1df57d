package main

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/anteroom/anteroom/waitingroom"
)

const (
	joinRoom   = "joins"
	memoryRoom = "memory"
	// memoryLimitRoom is memoryRoom with the join limit on.
	memoryLimitRoom = "memory-limited"
	benchPrefix     = "bench"
)

// storeFor is the store the bench drives directly, on the bench's own key
// prefix so it never meets an Anteroom instance's keys. Its rooms are manual
// (no admission), so every join queues: tail INCR, binding and liveness.
func storeFor(ctx context.Context, rdb redis.UniversalClient, opts ...waitingroom.Option) (*waitingroom.Store, error) {
	var rooms []waitingroom.Room
	for _, id := range []string{joinRoom, memoryRoom, memoryLimitRoom} {
		rooms = append(rooms, waitingroom.Room{ID: id, Name: id, State: waitingroom.StateOpen,
			SessionTTL: 30 * time.Minute, MaxWait: 6 * time.Hour, AbandonAfter: 2 * time.Minute})
	}
	// Requests are dated now, as Anteroom dates an auth request by the
	// time sealed in its id: bindings go to the bucket of their span.
	now := func(string) (time.Time, bool) { return time.Now(), true }
	s, err := waitingroom.NewStore(rdb, rooms, append([]waitingroom.Option{waitingroom.WithPrefix(benchPrefix),
		waitingroom.WithRequestTime(now)}, opts...)...)
	if err != nil {
		return nil, err
	}
	return s, s.Seed(ctx)
}

var incrLine = regexp.MustCompile(`INCR: ([0-9.]+) requests per second(?:, p50=([0-9.]+) msec)?`)

// redisBenchmarkIncr runs redis-benchmark -t incr for n requests at
// concurrency c and returns requests per second.
func redisBenchmarkIncr(ctx context.Context, addr string, c, n int) (float64, error) {
	_, port, _ := net.SplitHostPort(addr)
	out, err := exec.CommandContext(ctx, "redis-benchmark", "-h", "127.0.0.1", "-p", port, "-c", strconv.Itoa(c),
		"-n", strconv.Itoa(n), "-t", "incr", "-q").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("redis-benchmark: %w: %s", err, out)
	}
	m := incrLine.FindAllStringSubmatch(string(out), -1)
	if m == nil {
		return 0, fmt.Errorf("cannot read redis-benchmark output: %q", out)
	}
	return strconv.ParseFloat(m[len(m)-1][1], 64)
}

// figureJoins is figure 2: new visitors joining a queue (Store.Join, the
// call /wait makes) against redis-benchmark's INCR, a counter round trip.
func figureJoins(ctx context.Context, o options, rdb redis.UniversalClient, addr string) (figure, error) {
	step("figure 2: Store.Join vs redis-benchmark -t incr, %d clients, %d rounds of %s", o.concurrency, o.rounds, o.duration)
	store, err := storeFor(ctx, rdb)
	if err != nil {
		return figure{}, err
	}
	incrRate := 50_000.0 // first guess; each round sizes the next from the last
	incr := func() (measurement, error) {
		n := max(10_000, int(incrRate*o.duration.Seconds()))
		r, err := redisBenchmarkIncr(ctx, addr, o.concurrency, n)
		if err != nil {
			return measurement{}, err
		}
		incrRate = r
		return measurement{value: r}, nil
	}
	run := randomHex(4)
	var redisCPU, genCPU time.Duration
	var total int64
	joins := func() (measurement, error) {
		g0, r0 := selfCPU(), redisCPUTime(ctx, rdb)
		r := load(ctx, o.concurrency, o.duration, func(ctx context.Context, w, i int) error {
			_, err := store.Join(ctx, joinRoom, fmt.Sprintf("req-%s-%d-%d", run, w, i), nil)
			return err
		})
		genCPU, redisCPU, total = genCPU+selfCPU()-g0, redisCPU+redisCPUTime(ctx, rdb)-r0, total+r.ops+r.errs
		if r.ops == 0 {
			return measurement{}, fmt.Errorf("no successful join: %v", r.firstErr)
		}
		if r.firstErr != nil {
			step("figure 2: %d join errors, first: %v", r.errs, r.firstErr)
		}
		run = randomHex(4)
		return measurement{value: r.rate(), lat: r.lat, errs: r.errs, err: r.firstErr}, nil
	}
	bs, vs, err := paired(o.rounds, incr, joins)
	if err != nil {
		return figure{}, err
	}
	// Where the CPU went: a join is one script call, so Redis's share is
	// the script's cost; the rest is go-redis and the load generator.
	perJoin := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(max(1, total)) }
	f := figure{ID: "joins", Name: "joins (waitingroom.Store.Join)", Unit: "joins/s",
		BaselineName: "redis-benchmark -t incr, same concurrency",
		Details:      map[string]float64{"redis_cpu_us_per_join": perJoin(redisCPU), "client_cpu_us_per_join": perJoin(genCPU)}}
	return summary(f, bs, vs, 0.3, true), nil
}
