package testredis

import (
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// cluster is the package's one Cluster, started at its first use (forming
// one takes seconds) and stopped in TestMain.
var (
	clusterOnce sync.Once
	cluster     *Cluster
	clusterErr  error
)

func sharedCluster(t *testing.T) *Cluster {
	t.Helper()
	clusterOnce.Do(func() { cluster, clusterErr = NewCluster() })
	if errors.Is(clusterErr, ErrUnavailable) {
		t.Skipf("no Redis Cluster: %v", clusterErr)
	}
	if clusterErr != nil {
		t.Fatalf("start cluster: %v", clusterErr)
	}
	if err := cluster.FlushAll(); err != nil {
		t.Fatal(err)
	}
	return cluster
}

func TestMain(m *testing.M) {
	code := m.Run()
	if cluster != nil {
		cluster.Close()
	}
	os.Exit(code)
}

// TestCluster checks that a Cluster is a real one: three masters sharing
// the slots, a client that routes by slot, CROSSSLOT for keys of two slots,
// and FlushAll reaching every node.
func TestCluster(t *testing.T) {
	c := sharedCluster(t)
	if len(c.Addrs()) != ClusterMasters {
		t.Fatalf("Addrs() = %v, want %d nodes", c.Addrs(), ClusterMasters)
	}
	for _, a := range c.Addrs() {
		if !strings.HasPrefix(a, "127.0.0.1:") || strings.HasSuffix(a, ":6379") {
			t.Fatalf("node address %q, want a private port on 127.0.0.1", a)
		}
	}
	rdb := c.Client(t)
	cc, ok := rdb.(*redis.ClusterClient)
	if !ok {
		t.Fatalf("Client() is a %T, want *redis.ClusterClient", rdb)
	}
	ctx := t.Context()

	// Keys with these tags hash to slots 16274, 8557 and 810: one on each
	// master, as redis-cli spreads the slots in order.
	keys := []string{"{r:launch}:k", "{r:other}:k", "{r:sale}:k"}
	masters := map[string]bool{}
	for _, k := range keys {
		if err := rdb.Set(ctx, k, k, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
		m, err := cc.MasterForKey(ctx, k)
		if err != nil {
			t.Fatalf("MasterForKey(%s): %v", k, err)
		}
		masters[m.Options().Addr] = true
	}
	if len(masters) != ClusterMasters {
		t.Fatalf("keys of three slots live on %d masters, want %d", len(masters), ClusterMasters)
	}
	for _, n := range c.Nodes() {
		one := redis.NewClient(&redis.Options{Addr: n.Addr()})
		size, err := one.DBSize(ctx).Result()
		one.Close()
		if err != nil || size != 1 {
			t.Fatalf("node %s holds %d keys (%v), want 1", n.Addr(), size, err)
		}
	}

	// A multi-key command across slots is refused, as it is in production.
	err := rdb.Do(ctx, "MGET", keys[0], keys[1]).Err()
	if err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Fatalf("MGET across slots: %v, want CROSSSLOT", err)
	}
	// Even when both keys live on one node, if their slots differ.
	one := redis.NewClient(&redis.Options{Addr: c.Addrs()[0]})
	defer one.Close()
	err = one.Do(ctx, "MGET", "{r:sale}:a", "{r:shop}:a").Err() // slots 810 and 2684, both on the first node
	if err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Fatalf("MGET across two slots of one node: %v, want CROSSSLOT", err)
	}

	if err := c.FlushAll(); err != nil {
		t.Fatalf("FlushAll: %v", err)
	}
	for _, k := range keys {
		if n, err := rdb.Exists(ctx, k).Result(); err != nil || n != 0 {
			t.Fatalf("EXISTS %s after FlushAll = %d, %v; want 0", k, n, err)
		}
	}
}

// TestFailOnCrossSlot checks the hook against a fake test: a CROSSSLOT
// reply fails it, and ordinary errors do not.
func TestFailOnCrossSlot(t *testing.T) {
	c := sharedCluster(t)
	ctx := t.Context()
	run := func(do func(redis.UniversalClient)) bool {
		ft := &fakeT{TB: t}
		rdb := c.Client(t)
		FailOnCrossSlot(ft, rdb)
		do(rdb)
		ft.cleanup()
		return ft.failed
	}
	if run(func(rdb redis.UniversalClient) {
		_ = rdb.Get(ctx, "{r:launch}:missing").Err() // redis.Nil
		_ = rdb.Do(ctx, "NOSUCHCOMMAND", "{r:launch}:k").Err()
		_ = rdb.Eval(ctx, "return redis.call('GET', KEYS[1])", []string{"{r:launch}:k"}).Err()
	}) {
		t.Fatal("FailOnCrossSlot failed a test whose errors are not Cluster-only")
	}
	if !run(func(rdb redis.UniversalClient) {
		_ = rdb.Do(ctx, "MGET", "{r:launch}:a", "{r:other}:a").Err()
	}) {
		t.Fatal("FailOnCrossSlot let CROSSSLOT pass")
	}
	if !run(func(rdb redis.UniversalClient) {
		// A script that builds a key name: {r:other} lives on another node.
		_ = rdb.Eval(ctx, "return redis.call('GET', '{r:other}:' .. ARGV[1])", []string{"{r:launch}:k"}, "x").Err()
	}) {
		t.Fatal("FailOnCrossSlot let a script touch another node's key")
	}
	if !run(func(rdb redis.UniversalClient) {
		pipe := rdb.Pipeline()
		pipe.Get(ctx, "{r:launch}:a")
		pipe.Do(ctx, "MGET", "{r:launch}:a", "{r:other}:a")
		_, _ = pipe.Exec(ctx)
	}) {
		t.Fatal("FailOnCrossSlot let CROSSSLOT in a pipeline pass")
	}
}

// fakeT is a test whose failure is recorded instead of reported, and whose
// cleanups run when the caller says.
type fakeT struct {
	testing.TB
	failed   bool
	cleanups []func()
}

func (f *fakeT) Errorf(string, ...any) { f.failed = true }
func (f *fakeT) Cleanup(fn func())     { f.cleanups = append(f.cleanups, fn) }
func (f *fakeT) Helper()               {}
func (f *fakeT) cleanup() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

// TestSentinel checks a Sentinel setup: a client that finds the master by
// name, a planned failover to the replica that keeps the data, and a
// client that follows it without being recreated.
func TestSentinel(t *testing.T) {
	s := StartSentinel(t)
	if len(s.Addrs()) != sentinels || len(s.Servers()) != 2 {
		t.Fatalf("Addrs() = %v, Servers() = %d; want %d sentinels and 2 data servers", s.Addrs(), len(s.Servers()), sentinels)
	}
	ctx := t.Context()
	rdb := s.Client(t)
	if err := rdb.Set(ctx, "k", "before", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	old, err := s.Master(ctx)
	if err != nil {
		t.Fatalf("Master: %v", err)
	}
	if old != s.Servers()[0] {
		t.Fatalf("master is %s, want the first data server %s", old.Addr(), s.Servers()[0].Addr())
	}
	// The replica has the write before the switch: WAIT for it.
	direct := redis.NewClient(&redis.Options{Addr: old.Addr()})
	defer direct.Close()
	if n, err := direct.Wait(ctx, 1, 5*time.Second).Result(); err != nil || n != 1 {
		t.Fatalf("WAIT for the replica = %d, %v", n, err)
	}

	if err := s.Failover(ctx); err != nil {
		t.Fatalf("Failover: %v", err)
	}
	now, err := s.Master(ctx)
	if err != nil {
		t.Fatalf("Master after failover: %v", err)
	}
	if now != s.Servers()[1] {
		t.Fatalf("master after failover is %s, want the replica %s", now.Addr(), s.Servers()[1].Addr())
	}
	// The client follows the switch; a write may fail while it does.
	deadline := time.Now().Add(15 * time.Second)
	for {
		err = rdb.Set(ctx, "k", "after", 0).Err()
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("SET after failover: %v", err)
	}
	onNew := redis.NewClient(&redis.Options{Addr: now.Addr()})
	defer onNew.Close()
	if got, err := onNew.Get(ctx, "k").Result(); err != nil || got != "after" {
		t.Fatalf("GET on the new master = %q, %v; want after", got, err)
	}

	if err := s.FlushAll(); err != nil {
		t.Fatalf("FlushAll: %v", err)
	}
	if n, err := rdb.Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS after FlushAll = %d, %v; want 0", n, err)
	}
}

func TestClusterAndSentinelNeedRealRedis(t *testing.T) {
	t.Setenv(EnvVar, "miniredis")
	if _, err := NewCluster(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("NewCluster() with the fallback forced = %v, want ErrUnavailable", err)
	}
	if _, err := NewSentinel(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("NewSentinel() with the fallback forced = %v, want ErrUnavailable", err)
	}
	t.Setenv(EnvVar, "required")
	t.Setenv("PATH", t.TempDir())
	if _, err := NewCluster(); err == nil || errors.Is(err, ErrUnavailable) {
		t.Fatalf("NewCluster() without redis-server, required = %v, want a plain error", err)
	}
	t.Setenv(EnvVar, "")
	if _, err := NewSentinel(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("NewSentinel() without redis-server = %v, want ErrUnavailable", err)
	}
}
