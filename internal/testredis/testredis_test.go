package testredis

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestServerLifecycle(t *testing.T) {
	s := Start(t)
	if !strings.HasPrefix(s.Addr(), "127.0.0.1:") || strings.HasSuffix(s.Addr(), ":6379") {
		t.Fatalf("Addr() = %q, want a private port on 127.0.0.1", s.Addr())
	}
	if want := "redis://" + s.Addr() + "/0"; s.URL() != want {
		t.Fatalf("URL() = %q, want %q", s.URL(), want)
	}
	rdb := s.Client(t)
	ctx := context.Background()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if got, err := rdb.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET = %q, %v; want v", got, err)
	}
	if err := s.FlushAll(); err != nil {
		t.Fatalf("FlushAll: %v", err)
	}
	if n, err := rdb.Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS after FlushAll = %d, %v; want 0", n, err)
	}

	if !s.Real() {
		t.Skip("miniredis fallback: kill and restart are not supported")
	}
	if err := s.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	shortCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(shortCtx).Err(); err == nil {
		t.Fatal("PING after Kill succeeded, want an error")
	}
	if err := s.Restart(); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING after Restart: %v", err)
	}
}

func TestAppendOnlySurvivesKill(t *testing.T) {
	s := StartWithArgs(t, "--appendonly", "yes", "--appendfsync", "always")
	if !s.Real() {
		t.Skip("miniredis fallback: kill and restart are not supported")
	}
	rdb := s.Client(t)
	ctx := context.Background()
	if err := rdb.Set(ctx, "k", "kept", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if err := s.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if err := s.Restart(); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if got, err := rdb.Get(ctx, "k").Result(); err != nil || got != "kept" {
		t.Fatalf("GET after restart = %q, %v; want kept", got, err)
	}
}

func TestServersAreIsolated(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.Addr() == b.Addr() {
		t.Fatalf("two servers share %s", a.Addr())
	}
	ctx := context.Background()
	if err := a.Client(t).Set(ctx, "k", "a", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if n, err := b.Client(t).Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Fatalf("key leaked to the other server: EXISTS = %d, %v", n, err)
	}
}

func TestCloseStopsServer(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if !s.Real() {
		s.Close()
		t.Skip("miniredis fallback")
	}
	dir := s.dir
	pid := s.proc.cmd.Process.Pid
	s.Close()
	s.Close() // a second Close must be harmless
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("dir %s still exists after Close: %v", dir, err)
	}
	if err := s.Restart(); err == nil {
		t.Fatal("Restart after Close succeeded, want an error")
	}
	// Signal 0 only checks existence; the process was reaped in Close.
	if p, err := os.FindProcess(pid); err == nil {
		if err := p.Signal(syscall.Signal(0)); err == nil {
			t.Fatalf("redis-server pid %d still running after Close", pid)
		}
	}
}

func TestMiniredisFallback(t *testing.T) {
	t.Setenv(EnvVar, "miniredis")
	s := Start(t)
	if s.Real() {
		t.Fatal("Real() = true with the fallback forced")
	}
	if err := s.Client(t).Ping(context.Background()).Err(); err != nil {
		t.Fatalf("PING: %v", err)
	}
	if err := s.Kill(); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("Kill() = %v, want ErrNotSupported", err)
	}
	if err := s.Restart(); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("Restart() = %v, want ErrNotSupported", err)
	}
}

func TestRequiredWithoutRedisServer(t *testing.T) {
	t.Setenv(EnvVar, "required")
	t.Setenv("PATH", t.TempDir())
	s, err := New()
	if err == nil {
		s.Close()
		t.Fatal("New() succeeded without redis-server on PATH, want an error")
	}
	if !strings.Contains(err.Error(), "redis-server is required") {
		t.Fatalf("New() error = %q, want it to say redis-server is required", err)
	}
}
