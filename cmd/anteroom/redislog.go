package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisLogEvery bounds how often one kind of go-redis line is logged.
// While Redis is down, every pool dial fails and logs: several lines a
// second per instance, which would bury the lines that say what the
// instance does about it.
const redisLogEvery = 10 * time.Second

// redisLogger carries go-redis's own log lines ("connection pool: failed
// to dial…", Sentinel's master look-ups) into slog, so they are records of
// the structured log like every other line, with component=redis, rather
// than free text that a log pipeline reading JSON or logfmt cannot parse.
// One kind of line (go-redis's format string: one per call site) is logged
// at most once per redisLogEvery; the next one says how many were left
// out.
type redisLogger struct {
	now   func() time.Time
	mu    sync.Mutex
	kinds map[string]*redisLogKind
}

// redisLogKind is what the logger remembers of one kind of line.
type redisLogKind struct {
	logged     time.Time
	suppressed int
}

func newRedisLogger(now func() time.Time) *redisLogger {
	return &redisLogger{now: now, kinds: map[string]*redisLogKind{}}
}

// Printf implements go-redis's internal.Logging.
func (l *redisLogger) Printf(ctx context.Context, format string, v ...any) {
	now := l.now()
	l.mu.Lock()
	k := l.kinds[format]
	if k == nil {
		k = &redisLogKind{}
		l.kinds[format] = k
	}
	if !k.logged.IsZero() && now.Sub(k.logged) < redisLogEvery {
		k.suppressed++
		l.mu.Unlock()
		return
	}
	suppressed := k.suppressed
	k.logged, k.suppressed = now, 0
	l.mu.Unlock()

	msg := strings.TrimSpace(fmt.Sprintf(format, v...))
	msg = strings.TrimPrefix(msg, "redis: ")
	attrs := []any{"component", "redis"}
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	// go-redis reports trouble here (failed dials, a conn left with unread
	// data, hook errors); what goes well it does not log.
	slog.Default().Log(ctx, slog.LevelWarn, msg, attrs...)
}

// routeRedisLogs makes go-redis log through slog's default logger, which
// it reads at each line, so it follows a later slog.SetDefault.
func routeRedisLogs() { redis.SetLogger(newRedisLogger(time.Now)) }
