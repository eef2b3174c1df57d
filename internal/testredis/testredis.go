// Package testredis gives each test its own redis-server, so tests can kill
// and restart Redis and never share state with each other or with the Redis
// that the machine itself runs on the standard port.
package testredis

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// EnvVar names the environment variable that controls the fallback: set it
// to "required" so that a missing redis-server fails the test instead of
// silently testing against miniredis (CI should), or to "miniredis" to force
// the fallback even where redis-server exists.
const EnvVar = "ANTEROOM_TEST_REDIS"

// ErrNotSupported is returned by Kill and Restart on the miniredis fallback,
// which runs inside the test process and so cannot crash independently.
var ErrNotSupported = errors.New("not supported on miniredis")

const (
	// readyTimeout bounds the wait for a fresh server; generous because a
	// restart with an append-only file replays it before answering.
	readyTimeout = 10 * time.Second
	readyPoll    = 10 * time.Millisecond
	// bindAttempts covers the race between releasing a probed free port and
	// redis-server binding it.
	bindAttempts = 5
	// systemRedisPort is the machine's shared Redis, which tests must never touch.
	systemRedisPort = 6379
)

// Server is a redis-server child process (or, as a fallback, an in-process
// miniredis) owned by one test or test binary.
type Server struct {
	mu    sync.Mutex
	bin   string
	dir   string
	port  int
	extra []string
	// busPort is the Cluster bus port of a Cluster node, 0 otherwise.
	busPort int
	// sentinel runs the server as a Sentinel, with sentinel.conf in dir.
	sentinel bool
	proc     *process
	mini     *miniredis.Miniredis
	done     bool
}

// kind is what kind of redis-server a Server runs.
type kind struct {
	// cluster enables Cluster mode, with a bus port of its own.
	cluster bool
	// sentinelConf, when set, runs a Sentinel with this configuration.
	sentinelConf string
}

// process is one run of redis-server; Restart makes a new one on the same port.
type process struct {
	cmd    *exec.Cmd
	out    *os.File
	exited chan struct{}
}

// Start starts a server for one test and stops it in t.Cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWithArgs(t)
}

// StartWithArgs is Start with extra redis-server arguments appended to the
// defaults, such as "--appendonly", "yes", "--appendfsync", "always" for a
// test that needs data to survive Kill and Restart.
func StartWithArgs(t testing.TB, extra ...string) *Server {
	t.Helper()
	s, err := start(t.Logf, extra)
	if err != nil {
		t.Fatalf("testredis: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() && s.Real() {
			t.Logf("testredis: tail of %s:\n%s", s.logPath(), s.logTail())
		}
		s.Close()
	})
	return s
}

// New starts a server outside a test (for TestMain); call Close.
func New() (*Server, error) {
	return NewWithArgs()
}

// NewWithArgs is New with extra redis-server arguments, as for StartWithArgs.
func NewWithArgs(extra ...string) (*Server, error) {
	return start(func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
	}, extra)
}

func start(logf func(string, ...any), extra []string) (*Server, error) {
	mode := os.Getenv(EnvVar)
	bin, lookErr := exec.LookPath("redis-server")
	if mode == "miniredis" || lookErr != nil {
		if mode == "required" {
			return nil, fmt.Errorf("redis-server is required (%s=required) but was not found on PATH: %w", EnvVar, lookErr)
		}
		mini, err := miniredis.Run()
		if err != nil {
			return nil, fmt.Errorf("start miniredis fallback: %w", err)
		}
		reason := "redis-server not found on PATH"
		if mode == "miniredis" {
			reason = EnvVar + "=miniredis"
		}
		logf("testredis: %s, using in-process miniredis at %s (kill/restart tests will skip)", reason, mini.Addr())
		if len(extra) > 0 {
			logf("testredis: miniredis ignores redis-server arguments %q", extra)
		}
		return &Server{mini: mini}, nil
	}

	return startReal(bin, kind{}, extra)
}

// startReal starts a real redis-server of kind m on free ports.
func startReal(bin string, m kind, extra []string) (*Server, error) {
	dir, err := os.MkdirTemp("", "testredis-")
	if err != nil {
		return nil, fmt.Errorf("create redis dir: %w", err)
	}
	s := &Server{bin: bin, dir: dir, extra: append([]string(nil), extra...), sentinel: m.sentinelConf != ""}
	if s.sentinel {
		// A Sentinel rewrites its configuration file as it learns the
		// topology, so it must be a file of its own.
		if err := os.WriteFile(s.confPath(), []byte(m.sentinelConf), 0o600); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("write sentinel config: %w", err)
		}
	}
	for attempt := 1; ; attempt++ {
		s.port, err = freePort()
		if err == nil && m.cluster {
			// A port of its own for the Cluster bus: the default, port +
			// 10000, lies beyond 65535 for most ephemeral ports.
			for s.busPort == 0 || s.busPort == s.port {
				if s.busPort, err = freePort(); err != nil {
					break
				}
			}
		}
		if err != nil {
			break
		}
		err = s.launch()
		if err == nil || !errors.Is(err, errBind) || attempt == bindAttempts {
			break
		}
		s.busPort = 0
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// errBind marks a start that failed only because the port was taken, which
// a fresh port fixes.
var errBind = errors.New("port already in use")

func freePort() (int, error) {
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if port != systemRedisPort {
			return port, nil
		}
	}
}

// launch runs redis-server on s.port and waits until it answers. The caller
// holds s.mu or owns s exclusively.
func (s *Server) launch() error {
	var args []string
	if s.sentinel {
		args = append(args, s.confPath(), "--sentinel")
	}
	args = append(args,
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--logfile", s.logPath(),
	)
	if s.busPort != 0 {
		// nodes.conf in the server's own directory keeps its identity
		// and the topology across Restart.
		args = append(args, "--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(s.busPort),
			"--cluster-config-file", "nodes.conf")
	}
	args = append(args, s.extra...)
	out, err := os.OpenFile(filepath.Join(s.dir, "redis.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open redis-server output file: %w", err)
	}
	cmd := exec.Command(s.bin, args...)
	// Config errors go to stdout/stderr before the log file is opened.
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("start redis-server: %w", err)
	}
	p := &process{cmd: cmd, out: out, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		out.Close()
		close(p.exited)
	}()
	s.proc = p
	if err := s.waitReady(p); err != nil {
		p.kill()
		s.proc = nil
		tail := s.logTail()
		if strings.Contains(tail, "Address already in use") {
			return fmt.Errorf("redis-server on port %d: %w", s.port, errBind)
		}
		return fmt.Errorf("redis-server on port %d: %w; log tail:\n%s", s.port, err, tail)
	}
	return nil
}

// waitReady polls until our own process answers PING. It checks the answering
// server's pid because, if another process grabbed the port first, something
// else could answer while our redis-server is failing to bind.
func (s *Server) waitReady(p *process) error {
	deadline := time.Now().Add(readyTimeout)
	addr := s.addr()
	for {
		select {
		case <-p.exited:
			return fmt.Errorf("redis-server exited before answering: %s", p.cmd.ProcessState)
		default:
		}
		pid, err := probe(addr)
		if err == nil && pid != p.cmd.Process.Pid {
			err = fmt.Errorf("process %d, not ours, answers on this port", pid)
		}
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer to PING within %s: %w", readyTimeout, err)
		}
		time.Sleep(readyPoll)
	}
}

// probe sends PING and INFO over a raw connection and returns the server's
// pid. It avoids go-redis, whose pool backs off for a second after failed
// dials and logs each one, which would slow and clutter every start.
func probe(addr string) (int, error) {
	conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(conn, "*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n"); err != nil {
		return 0, err
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		return 0, err
	}
	if line != "+PONG\r\n" {
		// Typically -LOADING while an append-only file is replayed.
		return 0, fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	line, err = r.ReadString('\n')
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "$")))
	if !strings.HasPrefix(line, "$") || err != nil || n < 0 {
		return 0, fmt.Errorf("INFO answered %q", strings.TrimSpace(line))
	}
	info := make([]byte, n)
	if _, err := io.ReadFull(r, info); err != nil {
		return 0, err
	}
	for field := range strings.SplitSeq(string(info), "\r\n") {
		if v, ok := strings.CutPrefix(field, "process_id:"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, errors.New("INFO has no process_id")
}

// kill ends the process and waits for it, so the port and files are free
// when it returns.
func (p *process) kill() {
	killGroup(p.cmd)
	<-p.exited
}

// Addr returns the server's address, "127.0.0.1:PORT".
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr()
}

func (s *Server) addr() string {
	if s.mini != nil {
		return s.mini.Addr()
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Dir returns the real server's working directory, where its append-only
// files are (under appendonlydir/): a test that cuts them short before
// Restart simulates a machine crash that lost writes not yet on disk. It is
// "" on miniredis.
func (s *Server) Dir() string {
	return s.dir
}

// URL returns the server's address as a redis:// URL for database 0.
func (s *Server) URL() string {
	return "redis://" + s.Addr() + "/0"
}

// Client returns a client for the server that is closed in t.Cleanup.
func (s *Server) Client(t testing.TB) redis.UniversalClient {
	t.Helper()
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{s.Addr()}})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// Real reports whether the server is a real redis-server rather than the
// miniredis fallback; tests that kill or restart Redis skip when it is false.
func (s *Server) Real() bool {
	return s.mini == nil
}

// Kill sends SIGKILL to the server, as a crash would, and waits until it is
// gone. Only a real server can be killed.
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mini != nil {
		return fmt.Errorf("kill: %w", ErrNotSupported)
	}
	if s.done {
		return errors.New("kill: server is closed")
	}
	if s.proc == nil {
		return errors.New("kill: server is not running")
	}
	s.proc.kill()
	s.proc = nil
	return nil
}

// Restart starts the server again on the same port and directory, so clients
// reconnect to the same address and persisted data is reloaded, and waits
// until it answers PING. A running server is killed first.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mini != nil {
		return fmt.Errorf("restart: %w", ErrNotSupported)
	}
	if s.done {
		return errors.New("restart: server is closed")
	}
	if s.proc != nil {
		s.proc.kill()
		s.proc = nil
	}
	var err error
	// A client's socket left in TIME_WAIT does not block redis-server, which
	// sets SO_REUSEADDR, but another test's process may have taken the port.
	for attempt := 1; attempt <= bindAttempts; attempt++ {
		if err = s.launch(); err == nil || !errors.Is(err, errBind) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	return nil
}

// FlushAll removes every key from every database.
func (s *Server) FlushAll() error {
	if s.mini != nil {
		s.mini.FlushAll()
		return nil
	}
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr()})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		return fmt.Errorf("flushall on %s: %w", s.Addr(), err)
	}
	return nil
}

// Close stops the server and removes its directory. It is safe to call more
// than once.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return
	}
	s.done = true
	if s.mini != nil {
		s.mini.Close()
		return
	}
	if s.proc != nil {
		s.proc.kill()
		s.proc = nil
	}
	os.RemoveAll(s.dir)
}

func (s *Server) confPath() string {
	return filepath.Join(s.dir, "sentinel.conf")
}

func (s *Server) logPath() string {
	return filepath.Join(s.dir, "redis.log")
}

// logTail returns the last lines of the server's log and console output, for
// error messages that must explain why redis-server did not come up.
func (s *Server) logTail() string {
	var b strings.Builder
	for _, name := range []string{"redis.out", "redis.log"} {
		data, err := os.ReadFile(filepath.Join(s.dir, name))
		if err != nil || len(bytes.TrimSpace(data)) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > 20 {
			lines = lines[len(lines)-20:]
		}
		fmt.Fprintf(&b, "--- %s\n%s\n", name, strings.Join(lines, "\n"))
	}
	if b.Len() == 0 {
		return "(no output)"
	}
	return b.String()
}
