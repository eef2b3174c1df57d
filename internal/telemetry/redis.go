package telemetry

import (
	"context"
	"errors"
	"net"
	"strings"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// RoomKey is the attribute naming the room whose keys a Redis round trip
// touched.
const RoomKey = attribute.Key("anteroom.room")

// RedisHook gives each Redis round trip made while serving a traced
// request a client span under the request's: one per command, one per
// pipeline or transaction. A round trip outside a request (the scheduler's
// ticks, the cache's refreshes, key rotation: several a second per room)
// gets none, as it would otherwise be a trace of its own at every tick.
//
// A span says the command (db.operation.name, as the database semantic
// conventions name it, semconv v1.43.0 database-spans.md) and, when the
// key is a room's, the room (anteroom.room): never a key or an argument,
// since keys hold tickets and token ids and arguments hold what is stored.
// For the same reason a failed command's span says its error's class
// (NOSCRIPT, timeout…), not the message.
func RedisHook(tp trace.TracerProvider) redis.Hook {
	return redisHook{tracer: tp.Tracer(tracerName)}
}

type redisHook struct{ tracer trace.Tracer }

// DialHook implements redis.Hook: dials are part of the command's span.
func (h redisHook) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook implements redis.Hook.
func (h redisHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !traced(ctx) || connSetup(cmd) {
			return next(ctx, cmd)
		}
		op := strings.ToUpper(cmd.Name())
		attrs := []attribute.KeyValue{semconv.DBSystemNameRedis, semconv.DBOperationName(op)}
		if room := roomOf(cmd.Args()); room != "" {
			attrs = append(attrs, RoomKey.String(room))
		}
		ctx, span := h.tracer.Start(ctx, op, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
		err := next(ctx, cmd)
		endRedisSpan(span, err)
		return err
	}
}

// ProcessPipelineHook implements redis.Hook. A pipeline's span is named as
// a batch ("BATCH EVALSHA" when every command is the same, else "BATCH")
// and says how many commands it carried; MULTI and EXEC, which go-redis
// adds around a transaction's, are not counted.
func (h redisHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !traced(ctx) {
			return next(ctx, cmds)
		}
		op, room, n := "", "", 0
		sameOp, sameRoom := true, true
		for _, c := range cmds {
			name := strings.ToUpper(c.Name())
			if name == "MULTI" || name == "EXEC" || connSetup(c) {
				continue
			}
			r := roomOf(c.Args())
			if n == 0 {
				op, room = name, r
			} else {
				sameOp = sameOp && name == op
				sameRoom = sameRoom && r == room
			}
			n++
		}
		if n == 0 {
			return next(ctx, cmds) // a new connection being set up
		}
		batch := "BATCH"
		if sameOp && op != "" {
			batch += " " + op
		}
		attrs := []attribute.KeyValue{semconv.DBSystemNameRedis, semconv.DBOperationName(batch), semconv.DBOperationBatchSize(n)}
		if sameRoom && room != "" {
			attrs = append(attrs, RoomKey.String(room))
		}
		ctx, span := h.tracer.Start(ctx, batch, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
		err := next(ctx, cmds)
		endRedisSpan(span, err)
		return err
	}
}

// traced tells whether ctx is a sampled request's. Not whether its span
// records: the OIDC library starts spans of its own through OpenTelemetry's
// global provider, which are no-ops when that is not set (an embedder's
// server.New), yet carry the request's sampled trace.
func traced(ctx context.Context) bool {
	sc := trace.SpanContextFromContext(ctx)
	return sc.IsValid() && sc.IsSampled()
}

// connSetup tells the commands go-redis sends to set up a connection it
// has just dialled (HELLO, AUTH, SELECT, CLIENT SETINFO…), which are no
// round trip of Anteroom's: they are not traced. (CLIENT SETINFO also
// fails on Redis before 7.2, which go-redis ignores: a span would show an
// error that is none.)
func connSetup(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "hello", "auth", "select", "readonly":
		return true
	case "client":
		args := cmd.Args()
		if len(args) > 1 {
			if sub, ok := args[1].(string); ok {
				return strings.EqualFold(sub, "setinfo") || strings.EqualFold(sub, "setname")
			}
		}
	}
	return false
}

// endRedisSpan ends a Redis span, marked failed when err is a failure
// (redis.Nil, a missing key, is an answer).
func endRedisSpan(span trace.Span, err error) {
	if err != nil && !errors.Is(err, redis.Nil) {
		class := errorClass(err)
		span.SetAttributes(semconv.ErrorTypeKey.String(class))
		span.SetStatus(codes.Error, class)
	}
	span.End()
}

// errorClass names an error without its message: Redis's own errors by
// their prefix (ERR, NOSCRIPT, LOADING, MOVED…), which is its class
// (https://redis.io/docs/latest/develop/reference/protocol-spec/#simple-errors),
// others by kind.
func errorClass(err error) string {
	var re redis.Error
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &re):
		msg := strings.TrimPrefix(re.Error(), "redis: ")
		if i := strings.IndexByte(msg, ' '); i > 0 {
			msg = msg[:i]
		}
		if plausibleWord(msg) {
			return msg
		}
		return "redis"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.As(err, &ne):
		return "network"
	}
	return "other"
}

// plausibleWord accepts an upper-case word such as Redis's error prefixes.
func plausibleWord(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'A' || c > 'Z') && c != '_' {
			return false
		}
	}
	return true
}

// roomOf is the room whose key a command's first key is, or "". A room's
// keys are "<prefix>:{r:<room>}:…" (rediskey.Room); any other key (an
// auth request's, a token's) names no room and gives "". The first key is
// the first argument, or for scripts and functions, the first after the
// key count.
func roomOf(args []any) string {
	i := 1
	if len(args) > 0 {
		if name, ok := args[0].(string); ok {
			switch strings.ToLower(name) {
			case "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro":
				i = 3
			}
		}
	}
	if len(args) <= i {
		return ""
	}
	key, ok := args[i].(string)
	if !ok {
		return ""
	}
	start := strings.Index(key, ":{r:")
	if start < 0 {
		return ""
	}
	rest := key[start+len(":{r:"):]
	end := strings.IndexByte(rest, '}')
	if end <= 0 || !roomLike(rest[:end]) {
		return ""
	}
	return rest[:end]
}

// roomLike accepts what config accepts as a room id (rooms[].id).
func roomLike(s string) bool {
	if len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' && c != '-' {
			return false
		}
	}
	return true
}
