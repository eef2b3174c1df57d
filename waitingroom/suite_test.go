package waitingroom_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/anteroom/anteroom/internal/testredis"
	"github.com/anteroom/anteroom/waitingroom"
)

// server is the package's one redis-server (or testredis's miniredis
// fallback), started at its first use so that a fuzzing worker or a run of
// the Redis-free tests starts none, and stopped in TestMain. Subtests on it
// run one after another, each with its own key prefix, because some of them
// FLUSHALL it (Redis losing the rooms); KeysCarryRoomHashTag SCANs it.
var (
	serverOnce sync.Once
	server     *testredis.Server
	serverErr  error
)

func redisServer(t *testing.T) *testredis.Server {
	t.Helper()
	serverOnce.Do(func() { server, serverErr = testredis.New() })
	if serverErr != nil {
		t.Fatalf("start redis-server: %v", serverErr)
	}
	return server
}

func TestMain(m *testing.M) {
	code := m.Run()
	if server != nil {
		server.Close()
	}
	os.Exit(code)
}

// The behaviour suite below (runStoreSuite) is the store's contract, and it
// runs against every Redis Anteroom supports, as dex's storage conformance
// suite does: each backend's entry is a few lines.

// TestStoreRedis runs the behaviour suite against the package's redis-server.
func TestStoreRedis(t *testing.T) {
	srv := redisServer(t)
	if !srv.Real() {
		// testredis fell back to miniredis, which TestStoreMiniredis covers
		// (with control of its TTL clock, which the lease cases need).
		t.Skipf("redis-server not available (set %s=required to fail instead)", testredis.EnvVar)
	}
	runStoreSuite(t, func(t *testing.T) redis.UniversalClient {
		return srv.Client(t)
	})
}

// TestStoreMiniredis runs the same suite against miniredis, the embedded store
// of `anteroom demo`: its Lua must behave exactly like Redis's.
func TestStoreMiniredis(t *testing.T) {
	t.Parallel()
	runStoreSuite(t, func(t *testing.T) redis.UniversalClient {
		m := miniredis.RunT(t)
		rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{m.Addr()}})
		t.Cleanup(func() { rdb.Close() })
		return miniClient{UniversalClient: rdb, m: m}
	})
}

// TestStoreCluster runs the suite on a Redis Cluster of three masters, where
// a script or command whose keys lie in two hash slots fails (CROSSSLOT):
// every one of the store's must keep to its room's slot.
func TestStoreCluster(t *testing.T) {
	t.Parallel()
	c := testredis.StartCluster(t)
	runStoreSuite(t, func(t *testing.T) redis.UniversalClient {
		rdb := c.Client(t)
		testredis.FailOnCrossSlot(t, rdb)
		return rdb
	})
}

// TestStoreSentinel runs the suite through Redis Sentinel: the client finds
// the master by name.
func TestStoreSentinel(t *testing.T) {
	t.Parallel()
	s := testredis.StartSentinel(t)
	runStoreSuite(t, func(t *testing.T) redis.UniversalClient { return s.Client(t) })
}

// miniClient is a client of a miniredis, which lets the suite move
// miniredis's TTL clock: miniredis never expires keys by wall time.
type miniClient struct {
	redis.UniversalClient
	m *miniredis.Miniredis
}

func (c miniClient) FastForward(d time.Duration) { c.m.FastForward(d) }

// ownServer marks a client whose server belongs to one subtest alone.
func (c miniClient) ownServer() {}

// fakeClock is the injected clock; it is safe for concurrent use because
// Scheduler.Run reads it from its own goroutine.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

var t0 = time.UnixMilli(1_750_000_000_000)

func newClock() *fakeClock { return &fakeClock{now: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

var prefixSeq atomic.Int64

// env is one subtest's world: a client, a clock and a key prefix of its own.
type env struct {
	t      *testing.T
	ctx    context.Context
	rdb    redis.UniversalClient
	clock  *fakeClock
	prefix string
	seq    int
}

func newEnv(t *testing.T, newClient func(t *testing.T) redis.UniversalClient) *env {
	return &env{
		t:      t,
		ctx:    t.Context(),
		rdb:    newClient(t),
		clock:  newClock(),
		prefix: fmt.Sprintf("wrtest-%d", prefixSeq.Add(1)),
	}
}

// store returns a seeded store of rooms with the env's clock and prefix.
func (e *env) store(rooms ...waitingroom.Room) *waitingroom.Store {
	e.t.Helper()
	s, err := waitingroom.NewStore(e.rdb, rooms, waitingroom.WithClock(e.clock.Now), waitingroom.WithPrefix(e.prefix))
	if err != nil {
		e.t.Fatalf("NewStore: %v", err)
	}
	if err := s.Seed(e.ctx); err != nil {
		e.t.Fatalf("Seed: %v", err)
	}
	return s
}

func (e *env) join(s *waitingroom.Store, room, request string, have *waitingroom.Ticket) waitingroom.Joined {
	e.t.Helper()
	j, err := s.Join(e.ctx, room, request, have)
	if err != nil {
		e.t.Fatalf("Join(%s, %s): %v", room, request, err)
	}
	return j
}

func (e *env) status(s *waitingroom.Store, room string) waitingroom.Counters {
	e.t.Helper()
	c, err := s.Status(e.ctx, room)
	if err != nil {
		e.t.Fatalf("Status(%s): %v", room, err)
	}
	return c
}

func (e *env) advance(s *waitingroom.Store, room string, n int64) waitingroom.Counters {
	e.t.Helper()
	c, err := s.Advance(e.ctx, room, n)
	if err != nil {
		e.t.Fatalf("Advance(%s, %d): %v", room, n, err)
	}
	return c
}

func (e *env) step(sc *waitingroom.Scheduler) {
	e.t.Helper()
	if err := sc.Step(e.ctx); err != nil {
		e.t.Fatalf("Step: %v", err)
	}
}

func (e *env) serving(s *waitingroom.Store, room string) int64 {
	e.t.Helper()
	return e.status(s, room).Serving
}

// base is the serving counter after a rate room's first visitors joined and
// a first tick: a room that never ran has one second's budget, so the safety
// net may have let the first joiner(s) straight through.
func (e *env) base(s *waitingroom.Store, room string, rate float64) int64 {
	e.t.Helper()
	b := e.serving(s, room)
	if limit := max(1, int64(rate/60)); b > limit {
		e.t.Fatalf("serving = %d after the first joins into a fresh room at %v/min, want at most %d (one second's worth)", b, rate, limit)
	}
	return b
}

// wantServing checks the room's serving counter.
func (e *env) wantServing(s *waitingroom.Store, room string, want int64, what string) {
	e.t.Helper()
	if got := e.status(s, room).Serving; got != want {
		e.t.Fatalf("%s: serving = %d, want %d", what, got, want)
	}
}

// visitor is a ticket and the request it queued for.
type visitor struct {
	ticket  waitingroom.Ticket
	request string
}

// fill joins n visitors with requests never used before in this env.
func (e *env) fill(s *waitingroom.Store, room string, n int) []visitor {
	e.t.Helper()
	out := make([]visitor, n)
	for i := range out {
		e.seq++
		req := fmt.Sprintf("fill-%s-%d", room, e.seq)
		out[i] = visitor{e.join(s, room, req, nil).Ticket, req}
	}
	return out
}

// expireLeases lets real (wall-clock) key TTLs of d pass: on miniredis by
// moving its TTL clock, on a real server by waiting until cond holds, polling
// with a deadline.
func (e *env) expireLeases(d time.Duration, cond func() bool) {
	e.t.Helper()
	if ff, ok := e.rdb.(interface{ FastForward(time.Duration) }); ok {
		ff.FastForward(d)
		if !cond() {
			e.t.Fatalf("condition not met after miniredis fast-forward of %s", d)
		}
		return
	}
	deadline := time.Now().Add(d + 5*time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("condition not met %s after the lease should have expired", 5*time.Second)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func manualRoom(id string) waitingroom.Room {
	return waitingroom.Room{ID: id, Name: id, State: waitingroom.StateOpen, SessionTTL: 10 * time.Minute, MaxWait: 30 * time.Minute}
}

func rateRoom(id string, perMinute float64) waitingroom.Room {
	r := manualRoom(id)
	r.Policy.RatePerMinute = perMinute
	return r
}

func sameTicket(a, b waitingroom.Ticket) bool {
	return a.ID == b.ID && a.Room == b.Room && a.Position == b.Position && a.PreQueue == b.PreQueue && a.ServingAtJoin == b.ServingAtJoin && a.Skipped == b.Skipped && a.Epoch == b.Epoch &&
		a.JoinedAt.Equal(b.JoinedAt) && a.AdmittedAt.Equal(b.AdmittedAt) && a.Admitted() == b.Admitted()
}

func admittedByCounter(j waitingroom.Joined) bool { return j.Serving >= j.Ticket.Position }

// runStoreSuite is the behaviour suite every Redis the store runs on must
// pass. Each case gets a fresh env (its own client, clock and key prefix).
func runStoreSuite(t *testing.T, newClient func(t *testing.T) redis.UniversalClient) {
	cases := []struct {
		name string
		run  func(e *env)
	}{
		// Joining.
		{"JoinPositionsInOrder", testJoinPositionsInOrder},
		{"JoinWithTicketKeepsPosition", testJoinWithTicketKeepsPosition},
		{"JoinWithExpiredTicketNewRequest", testJoinWithExpiredTicketNewRequest},
		{"JoinWithExpiredTicketSameRequest", testJoinWithExpiredTicketSameRequest},
		{"JoinWithTicketOfAnotherRoom", testJoinWithTicketOfAnotherRoom},
		{"JoinConcurrent", testJoinConcurrent},
		{"UnknownRoom", testUnknownRoom},
		// Binding.
		{"BindingCopiedURLCostsNoPosition", testBindingCopiedURL},
		{"BindingOtherTicketClaimed", testBindingOtherTicket},
		{"BindingAdmitOtherTicketClaimed", testBindingAdmitOtherTicket},
		{"BindingBuckets", testBindingBuckets},
		{"BindingDatedByTheCaller", testBindingDatedByTheCaller},
		// Limits on one client.
		{"JoinLimit", testJoinLimit},
		{"LoginsPerTicket", testLoginsPerTicket},
		// Admission.
		{"AdmitWaitsForCounter", testAdmitWaitsForCounter},
		{"AdmitSessionTTL", testAdmitSessionTTL},
		{"EndSession", testEndSession},
		{"EndSessionAfterSessionEnded", testEndSessionAfterEnded},
		{"SessionOverJoinsAgainAtBack", testSessionOverJoinsAgain},
		{"AdmitBindsUnboundRequest", testAdmitBindsUnboundRequest},
		{"AdvanceNeverPassesTail", testAdvanceNeverPassesTail},
		// Scheduler.
		{"SchedulerRateOnePerSecond", testSchedulerRate},
		{"SchedulerFractionalCarry", testSchedulerFractionalCarry},
		{"SchedulerFractionalCarryMinute", testSchedulerFractionalCarryMinute},
		{"SchedulerElapsedCapped", testSchedulerElapsedCapped},
		{"SchedulerIdleRoomDoesNotBank", testSchedulerIdleNoBank},
		{"SchedulerOnAdvance", testSchedulerOnAdvance},
		{"SafetyNet", testSafetyNet},
		{"ManualRoomNeverAutoAdmitted", testManualNeverAuto},
		{"StatePaused", testStatePaused},
		{"StateClosed", testStateClosed},
		{"StatePassthrough", testStatePassthrough},
		{"CapacityOnly", testCapacityOnly},
		{"PreQueue", testPreQueue},
		{"PreQueueWithAbandonment", testPreQueueWithAbandonment},
		{"PreQueueOpeningRace", testPreQueueOpeningRace},
		{"PreQueueAfterARoomRan", testPreQueueAfterARoomRan},
		{"Lottery", testLottery},
		{"RateAccuracyTenMinutes", testRateAccuracyTenMinutes},
		{"CapacityAcrossInstances", testCapacityAcrossInstances},
		{"Abandonment", testAbandonment},
		{"AbandonmentReturnTakesBudget", testAbandonmentReturnTakesBudget},
		{"HeartbeatsInBatches", testHeartbeatsInBatches},
		{"ArrivalsUnderLoad", testArrivalsUnderLoad},
		{"ClosesAt", testClosesAt},
		{"RateAndCapacity", testRateAndCapacity},
		// Priority lanes and codes.
		{"LaneWeights", testLaneWeights},
		{"CodeRedeemedOnceAcrossInstances", testCodeRedeemedOnceAcrossInstances},
		{"CodeErrorsLoseNothing", testCodeErrorsLoseNothing},
		{"CodeInEventPrequeue", testCodeInEventPrequeue},
		// Scheduled events.
		{"EventOverridesRate", testEventOverridesRate},
		{"EventPrequeueHoldsThenCancel", testEventPrequeueHoldsThenCancel},
		{"EventPrequeueDrawnAtStart", testEventPrequeueDrawnAtStart},
		// Leases.
		{"LeaseOneLeader", testLeaseOneLeader},
		{"LeaseNoDoubleAdvance", testLeaseNoDoubleAdvance},
		{"LeaseTakeoverAfterTTL", testLeaseTakeover},
		{"LeaseReleasedOnRunCancel", testLeaseRelease},
		// Redis lost the room; configuration.
		{"NoSeedRecovery", testNoSeedRecovery},
		{"PassthroughAfterDataLoss", testPassthroughAfterDataLoss},
		{"DataLossInstancesRestore", testDataLossInstancesRestore},
		{"DataLossNobodyRemembers", testDataLossNobodyRemembers},
		{"DataLossGapCoversOtherInstances", testDataLossGapCoversOtherInstances},
		{"DataLossAdvanceCountsPeopleNotTheGap", testDataLossAdvanceCountsPeopleNotTheGap},
		{"DataLossPreQueue", testDataLossPreQueue},
		{"SeedKeepsAdminChanges", testSeedKeepsAdminChanges},
		{"SeedChangedConfigWins", testSeedChangedConfigWins},
		{"SetStateAndPolicyValidate", testSetValidate},
		{"SetRooms", testSetRooms},
		// Cache; status; keys.
		{"CacheRefreshAndGet", testCacheRefresh},
		{"CacheObserve", testCacheObserve},
		{"CacheChanged", testCacheChanged},
		{"StatusActive", testStatusActive},
		{"KeysCarryRoomHashTag", testKeysHashTag},
		{"RoomsInDifferentSlots", testRoomsInDifferentSlots},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, newClient)
			if _, own := e.rdb.(interface{ ownServer() }); own {
				t.Parallel() // nothing shared, not even FLUSHALL's reach
			}
			tc.run(e)
		})
	}
}

// keysOf lists every key under the env's prefix: on a Cluster, of every
// master, as SCAN walks one node only.
func (e *env) keysOf() []string {
	e.t.Helper()
	var (
		mu   sync.Mutex
		keys []string
	)
	scan := func(ctx context.Context, rdb redis.Cmdable) error {
		iter := rdb.Scan(ctx, 0, e.prefix+":*", 100).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			keys = append(keys, iter.Val())
			mu.Unlock()
		}
		return iter.Err()
	}
	var err error
	if c, ok := e.rdb.(*redis.ClusterClient); ok {
		err = c.ForEachMaster(e.ctx, func(ctx context.Context, m *redis.Client) error { return scan(ctx, m) })
	} else {
		err = scan(e.ctx, e.rdb)
	}
	if err != nil {
		e.t.Fatalf("SCAN: %v", err)
	}
	return keys
}

// flushAll empties the whole Redis, as a restart without persistence would:
// on a Cluster, every master, as FLUSHALL reaches one node only.
func (e *env) flushAll() {
	e.t.Helper()
	var err error
	if c, ok := e.rdb.(*redis.ClusterClient); ok {
		err = c.ForEachMaster(e.ctx, func(ctx context.Context, m *redis.Client) error { return m.FlushAll(ctx).Err() })
	} else {
		err = e.rdb.FlushAll(e.ctx).Err()
	}
	if err != nil {
		e.t.Fatalf("FLUSHALL: %v", err)
	}
}

// hashTag is the part of key Redis Cluster hashes: the first {...} with
// something inside, or "" when the whole key is hashed.
func hashTag(key string) string {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return ""
	}
	end := strings.IndexByte(key[open+1:], '}')
	if end <= 0 {
		return ""
	}
	return key[open+1 : open+1+end]
}
