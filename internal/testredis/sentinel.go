package testredis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"
)

// SentinelMasterName is the name the Sentinels of a test setup monitor
// their master by (redis.master_name).
const SentinelMasterName = "anteroom"

// sentinels is how many Sentinels watch the master; two of them must agree
// that it is down before a failover (the quorum).
const sentinels = 3

// sentinelConf is every Sentinel's configuration. A master that does not
// answer for 3 s is down: a failover after a kill takes seconds, and a
// master (or Sentinel) starved of CPU on a busy test machine for a moment
// is not failed over by mistake in the middle of a test.
const sentinelConf = `sentinel monitor %[1]s 127.0.0.1 %[2]d 2
sentinel down-after-milliseconds %[1]s 3000
sentinel failover-timeout %[1]s 5000
`

// Sentinel is a Redis Sentinel setup: a master, one replica of it and three
// Sentinels that watch them, each a redis-server child process on free
// ports. Clients find the master through the Sentinels, by MasterName.
type Sentinel struct {
	// data are the data servers: [0] started as the master, [1] as its
	// replica. A failover swaps their roles.
	data      []*Server
	sentinels []*Server
}

// StartSentinel starts a Sentinel setup for one test and stops it in
// t.Cleanup. It skips the test when redis-server is missing, unless EnvVar is
// "required". It takes a few seconds to form: start one per test package,
// or per test that fails the master over.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	s, err := NewSentinel()
	if errors.Is(err, ErrUnavailable) {
		t.Skipf("testredis: no Redis Sentinel: %v (set %s=required to fail instead)", err, EnvVar)
	}
	if err != nil {
		t.Fatalf("testredis: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range append(s.Servers(), s.sentinels...) {
				t.Logf("testredis: tail of %s:\n%s", n.Addr(), n.logTail())
			}
		}
		s.Close()
	})
	return s
}

// NewSentinel starts a Sentinel setup outside a test (for TestMain); call
// Close. It returns ErrUnavailable when redis-server is missing, unless
// EnvVar is "required". It returns once the replica has synchronised and
// every Sentinel knows the replica and the other Sentinels, so that a
// failover can happen.
func NewSentinel() (*Sentinel, error) {
	bin, err := realBinary("redis-server")
	if err != nil {
		return nil, err
	}
	s := &Sentinel{}
	master, err := startReal(bin, kind{}, nil)
	if err != nil {
		return nil, fmt.Errorf("start sentinel master: %w", err)
	}
	s.data = append(s.data, master)
	replica, err := startReal(bin, kind{}, []string{"--replicaof", "127.0.0.1", strconv.Itoa(master.port)})
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("start sentinel replica: %w", err)
	}
	s.data = append(s.data, replica)
	conf := fmt.Sprintf(sentinelConf, SentinelMasterName, master.port)
	for range sentinels {
		n, err := startReal(bin, kind{sentinelConf: conf}, nil)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("start sentinel: %w", err)
		}
		s.sentinels = append(s.sentinels, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), topologyTimeout)
	defer cancel()
	if err := s.waitFormed(ctx, replica); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Sentinel) waitFormed(ctx context.Context, replica *Server) error {
	rdb := redis.NewClient(&redis.Options{Addr: replica.Addr(), MaxRetries: -1})
	err := poll(ctx, func() error {
		info, err := rdb.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		return infoHas(info, map[string]string{"master_link_status": "up"})
	})
	rdb.Close()
	if err != nil {
		return fmt.Errorf("replica %s did not synchronise: %w", replica.Addr(), err)
	}
	for _, n := range s.sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: n.Addr(), MaxRetries: -1})
		err := poll(ctx, func() error {
			m, err := sc.Master(ctx, SentinelMasterName).Result()
			if err != nil {
				return err
			}
			if m["num-slaves"] != "1" || m["num-other-sentinels"] != strconv.Itoa(sentinels-1) {
				return fmt.Errorf("sentinel knows %s replicas and %s other sentinels", m["num-slaves"], m["num-other-sentinels"])
			}
			return nil
		})
		sc.Close()
		if err != nil {
			return fmt.Errorf("sentinel %s did not learn the topology: %w", n.Addr(), err)
		}
	}
	return nil
}

// MasterName is the name of the monitored master (redis.master_name).
func (s *Sentinel) MasterName() string { return SentinelMasterName }

// Addrs returns the Sentinels' addresses, "127.0.0.1:PORT" (redis.addrs
// with redis.master_name).
func (s *Sentinel) Addrs() []string {
	out := make([]string, len(s.sentinels))
	for i, n := range s.sentinels {
		out[i] = n.Addr()
	}
	return out
}

// Servers returns the data servers: the one that started as the master,
// then its replica.
func (s *Sentinel) Servers() []*Server {
	return append([]*Server(nil), s.data...)
}

// Client returns a client that finds the master through the Sentinels and
// follows failovers; it is closed in t.Cleanup.
func (s *Sentinel) Client(t testing.TB) redis.UniversalClient {
	t.Helper()
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: s.Addrs(), MasterName: SentinelMasterName})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// MasterAddr asks the Sentinels, in turn until one answers, for the
// master's address.
func (s *Sentinel) MasterAddr(ctx context.Context) (string, error) {
	var errs []error
	for _, n := range s.sentinels {
		addr, err := masterAddrFrom(ctx, n.Addr())
		if err == nil {
			return addr, nil
		}
		errs = append(errs, err)
	}
	return "", fmt.Errorf("ask sentinels for the master: %w", errors.Join(errs...))
}

func masterAddrFrom(ctx context.Context, sentinel string) (string, error) {
	sc := redis.NewSentinelClient(&redis.Options{Addr: sentinel, MaxRetries: -1})
	defer sc.Close()
	hp, err := sc.GetMasterAddrByName(ctx, SentinelMasterName).Result()
	if err != nil {
		return "", err
	}
	if len(hp) != 2 {
		return "", fmt.Errorf("sentinel %s answered %q", sentinel, hp)
	}
	return hp[0] + ":" + hp[1], nil
}

// Master returns the data server that the Sentinels say is the master.
func (s *Sentinel) Master(ctx context.Context) (*Server, error) {
	addr, err := s.MasterAddr(ctx)
	if err != nil {
		return nil, err
	}
	for _, n := range s.data {
		if n.Addr() == addr {
			return n, nil
		}
	}
	return nil, fmt.Errorf("sentinels name %s, which is none of the data servers", addr)
}

// Failover makes the Sentinels promote the replica now (SENTINEL FAILOVER,
// a planned switch), and waits as WaitForFailover does.
func (s *Sentinel) Failover(ctx context.Context) error {
	old, err := s.MasterAddr(ctx)
	if err != nil {
		return err
	}
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.sentinels[0].Addr()})
	defer sc.Close()
	if err := sc.Failover(ctx, SentinelMasterName).Err(); err != nil {
		return fmt.Errorf("sentinel failover: %w", err)
	}
	return s.WaitForFailover(ctx, old)
}

// WaitForFailover waits until every Sentinel names a master other than old
// and that server answers as a master: after the master was killed, say.
// It gives up when ctx is done, or after half a minute.
func (s *Sentinel) WaitForFailover(ctx context.Context, old string) error {
	ctx, cancel := context.WithTimeout(ctx, topologyTimeout)
	defer cancel()
	var addr string
	err := poll(ctx, func() error {
		for _, n := range s.sentinels {
			a, err := masterAddrFrom(ctx, n.Addr())
			if err != nil {
				return err
			}
			if a == old {
				return fmt.Errorf("sentinel %s still names %s", n.Addr(), old)
			}
			addr = a
		}
		rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		defer rdb.Close()
		info, err := rdb.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		return infoHas(info, map[string]string{"role": "master"})
	})
	if err != nil {
		return fmt.Errorf("failover from %s: %w", old, err)
	}
	return nil
}

// FlushAll removes every key from the master, and so from its replica.
func (s *Sentinel) FlushAll() error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	m, err := s.Master(ctx)
	if err != nil {
		return err
	}
	return m.FlushAll()
}

// Close stops the Sentinels, then the data servers, and removes their
// directories. It is safe to call more than once.
func (s *Sentinel) Close() {
	for _, n := range s.sentinels {
		n.Close()
	}
	for _, n := range s.data {
		n.Close()
	}
}
