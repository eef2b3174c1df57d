package testredis

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrUnavailable is returned by NewCluster and NewSentinel when the programs
// they need (redis-server, and redis-cli for a Cluster) are not installed,
// or when EnvVar forces the miniredis fallback: there is no in-process
// stand-in for a Cluster or a Sentinel, so their tests skip. With EnvVar set
// to "required" a missing program is an error instead.
var ErrUnavailable = errors.New("redis-server or redis-cli is not available")

// ClusterMasters is how many masters a test Cluster has: the fewest Redis
// Cluster accepts, and enough that rooms land on different nodes.
const ClusterMasters = 3

// clusterSlots is the number of hash slots of every Redis Cluster.
const clusterSlots = 16384

// topologyTimeout bounds forming a Cluster or a Sentinel setup, and a
// Sentinel failover.
const topologyTimeout = 30 * time.Second

// realBinary finds a program that a Cluster or a Sentinel needs.
func realBinary(name string) (string, error) {
	mode := os.Getenv(EnvVar)
	if mode == "miniredis" {
		return "", fmt.Errorf("%w: %s=miniredis", ErrUnavailable, EnvVar)
	}
	path, err := exec.LookPath(name)
	if err != nil {
		if mode == "required" {
			return "", fmt.Errorf("%s is required (%s=required) but was not found on PATH: %w", name, EnvVar, err)
		}
		return "", fmt.Errorf("%w: %s not found on PATH", ErrUnavailable, name)
	}
	return path, nil
}

// Cluster is a Redis Cluster of ClusterMasters masters and no replicas, each
// a redis-server child process on free ports, with every hash slot assigned
// (redis-cli spreads them evenly, in order: the first node gets slots 0 to
// 5460). Commands reach the node of their key's slot, so a command or script
// whose keys lie in two slots fails with CROSSSLOT, as in production.
type Cluster struct {
	nodes []*Server
}

// StartCluster starts a Cluster for one test and stops it in t.Cleanup. It
// skips the test when redis-server or redis-cli is missing, unless EnvVar
// is "required". A Cluster takes a few seconds to form: start one per test
// package, not per test.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	c, err := NewCluster()
	if errors.Is(err, ErrUnavailable) {
		t.Skipf("testredis: no Redis Cluster: %v (set %s=required to fail instead)", err, EnvVar)
	}
	if err != nil {
		t.Fatalf("testredis: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range c.nodes {
				t.Logf("testredis: tail of cluster node %s:\n%s", n.Addr(), n.logTail())
			}
		}
		c.Close()
	})
	return c
}

// NewCluster starts a Cluster outside a test (for TestMain); call Close. It
// returns ErrUnavailable when redis-server or redis-cli is missing, unless
// EnvVar is "required".
func NewCluster() (*Cluster, error) {
	server, err := realBinary("redis-server")
	if err != nil {
		return nil, err
	}
	cli, err := realBinary("redis-cli")
	if err != nil {
		return nil, err
	}
	c := &Cluster{}
	for range ClusterMasters {
		n, err := startReal(server, kind{cluster: true}, nil)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("start cluster node: %w", err)
		}
		c.nodes = append(c.nodes, n)
	}
	if err := c.create(cli); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// create joins the nodes into one Cluster with redis-cli, as an operator
// would, and waits until it has formed.
func (c *Cluster) create(cli string) error {
	ctx, cancel := context.WithTimeout(context.Background(), topologyTimeout)
	defer cancel()
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	cmd := exec.CommandContext(ctx, cli, args...)
	cmd.SysProcAttr = sysProcAttr()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("redis-cli --cluster create: %w\n%s", err, out)
	}
	return c.waitFormed(ctx)
}

// waitFormed waits until every node sees the whole Cluster: all nodes known,
// every slot assigned and served. Until then a client could be sent to a
// node that does not know the slot's owner yet.
func (c *Cluster) waitFormed(ctx context.Context) error {
	want := map[string]string{
		"cluster_state":       "ok",
		"cluster_slots_ok":    fmt.Sprint(clusterSlots),
		"cluster_known_nodes": fmt.Sprint(len(c.nodes)),
	}
	for _, n := range c.nodes {
		rdb := redis.NewClient(&redis.Options{Addr: n.Addr(), MaxRetries: -1})
		err := poll(ctx, func() error {
			info, err := rdb.ClusterInfo(ctx).Result()
			if err != nil {
				return err
			}
			return infoHas(info, want)
		})
		rdb.Close()
		if err != nil {
			return fmt.Errorf("cluster node %s did not see the whole cluster: %w", n.Addr(), err)
		}
	}
	return nil
}

// infoHas checks the fields of an INFO-style reply.
func infoHas(info string, want map[string]string) error {
	got := map[string]string{}
	for line := range strings.SplitSeq(info, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			got[k] = v
		}
	}
	for k, v := range want {
		if got[k] != v {
			return fmt.Errorf("%s is %q, want %q", k, got[k], v)
		}
	}
	return nil
}

// poll calls f until it succeeds or ctx is done, and then returns f's last
// error.
func poll(ctx context.Context, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(readyPoll):
		}
	}
}

// Addrs returns the nodes' addresses, "127.0.0.1:PORT": the seed addresses
// of a Cluster client (redis.addrs).
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.Addr()
	}
	return out
}

// Nodes returns the nodes, which can be killed and restarted like any
// Server (a restarted node rejoins with its slots).
func (c *Cluster) Nodes() []*Server {
	return append([]*Server(nil), c.nodes...)
}

// Client returns a Cluster client for the nodes that is closed in
// t.Cleanup. Its dynamic type is *redis.ClusterClient.
func (c *Cluster) Client(t testing.TB) redis.UniversalClient {
	t.Helper()
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: c.Addrs(), IsClusterMode: true})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// FlushAll removes every key from every node: FLUSHALL through a Cluster
// client reaches one node only.
func (c *Cluster) FlushAll() error {
	var errs []error
	for _, n := range c.nodes {
		errs = append(errs, n.FlushAll())
	}
	return errors.Join(errs...)
}

// Close stops every node and removes their directories. It is safe to call
// more than once.
func (c *Cluster) Close() {
	for _, n := range c.nodes {
		n.Close()
	}
}

// clusterOnlyErrors are the replies only a Cluster gives to code that is
// not Cluster-safe: keys of several slots in one command or script, a
// script touching a key it did not declare that lives elsewhere, and a
// redirect that reached the caller instead of being followed.
var clusterOnlyErrors = []string{"CROSSSLOT", "non local key", "do not hash to the same slot", "MOVED ", "ASK "}

// FailOnCrossSlot makes t fail, when it ends, if any command, pipeline or
// script of rdb got an error that only a Cluster gives (CROSSSLOT and its
// kin): proof that the code under test runs on Cluster, not hope. Add it
// to a client before handing the client out.
func FailOnCrossSlot(t testing.TB, rdb redis.UniversalClient) {
	t.Helper()
	h := &crossSlotHook{}
	rdb.AddHook(h)
	t.Cleanup(func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, e := range h.seen {
			t.Errorf("testredis: a Cluster-only error: %s", e)
		}
	})
}

// crossSlotHook records the Cluster-only errors of a client's commands.
type crossSlotHook struct {
	mu   sync.Mutex
	seen []string
}

func (h *crossSlotHook) check(cmd redis.Cmder) {
	err := cmd.Err()
	if err == nil {
		return
	}
	for _, s := range clusterOnlyErrors {
		if strings.Contains(err.Error(), s) {
			h.mu.Lock()
			h.seen = append(h.seen, fmt.Sprintf("%v: %v", cmd.Args(), err))
			h.mu.Unlock()
			return
		}
	}
}

func (h *crossSlotHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *crossSlotHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.check(cmd)
		return err
	}
}

func (h *crossSlotHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, cmd := range cmds {
			h.check(cmd)
		}
		return err
	}
}
