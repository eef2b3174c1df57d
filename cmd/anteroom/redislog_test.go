package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// go-redis's own log lines come out as records of the structured log, with
// component=redis, not as free text ("redis: 2026/01/02 pool.go:770: …")
// that breaks a JSON or logfmt log.
func TestGoRedisLogLinesAreStructured(t *testing.T) {
	var out syncBuffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(&out, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })
	routeRedisLogs()

	// A port nobody listens on: the pool logs that it failed to dial.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialerRetries: 1, DialTimeout: time.Second})
	defer rdb.Close()
	if err := rdb.Ping(context.Background()).Err(); err == nil {
		t.Fatal("ping of a closed port succeeded")
	}
	var found bool
	for line := range strings.SplitSeq(strings.TrimSpace(out.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("a log line is not JSON: %q", line)
		}
		if rec["component"] == "redis" && strings.HasPrefix(rec["msg"].(string), "connection pool: failed to dial") && rec["level"] == "WARN" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no structured go-redis record in the log:\n%s", out.String())
	}
}

// While Redis is down every dial fails and go-redis logs each: one kind of
// line is logged once per redisLogEvery, and the next says how many were
// left out.
func TestGoRedisLogLinesAreRateLimited(t *testing.T) {
	var out syncBuffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(&out, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })
	now := time.Unix(1_800_000_000, 0)
	l := newRedisLogger(func() time.Time { return now })
	ctx := context.Background()
	const dial = "redis: connection pool: failed to dial after %d attempts: %v"
	for i := 0; i < 100; i++ {
		l.Printf(ctx, dial, 1, "connection refused")
		now = now.Add(50 * time.Millisecond) // 5 s in all
	}
	l.Printf(ctx, "redis: another kind of line %s", "x") // its own budget
	now = now.Add(redisLogEvery)
	l.Printf(ctx, dial, 1, "connection refused")

	var recs []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(out.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("a log line is not JSON: %q", line)
		}
		recs = append(recs, rec)
	}
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3 (the first dial, the other kind, the dial after the pause):\n%s", len(recs), out.String())
	}
	if recs[0]["suppressed"] != nil || recs[1]["msg"] != "another kind of line x" || recs[2]["suppressed"] != float64(99) {
		t.Fatalf("records: %v", recs)
	}
}
