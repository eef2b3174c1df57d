package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"
)

// redisLogger carries go-redis's own log lines ("connection pool: failed
// to dial…", Sentinel's master look-ups) into slog, so they are records of
// the structured log like every other line, with component=redis, rather
// than free text that a log pipeline reading JSON or logfmt cannot parse.
type redisLogger struct{}

// Printf implements go-redis's internal.Logging.
func (redisLogger) Printf(ctx context.Context, format string, v ...any) {
	msg := strings.TrimSpace(fmt.Sprintf(format, v...))
	msg = strings.TrimPrefix(msg, "redis: ")
	// go-redis reports trouble here (failed dials, a conn left with unread
	// data, hook errors); what goes well it does not log.
	slog.Default().Log(ctx, slog.LevelWarn, msg, "component", "redis")
}

// routeRedisLogs makes go-redis log through slog's default logger, which
// it reads at each line, so it follows a later slog.SetDefault.
func routeRedisLogs() { redis.SetLogger(redisLogger{}) }
