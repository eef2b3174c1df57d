package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/anteroom/anteroom/internal/telemetry"
	"github.com/anteroom/anteroom/server"
)

// tracingFlush bounds how long the spans still batched at shutdown may
// take to reach the collector: a collector that is down must not hold up
// a rolling deploy.
const tracingFlush = 5 * time.Second

// startTracing sets tracing up from the OTEL_* environment
// (telemetry.FromEnv) and returns the option that traces the instance
// (nil when tracing is off) and stop, which flushes what is batched; stop
// is to be called once the instance has stopped serving. A setting that
// cannot work (a protocol other than http/protobuf) is an error the
// command reports as a configuration error.
func startTracing(ctx context.Context) (opt server.Option, stop func(), err error) {
	tr, d, err := telemetry.FromEnv(ctx, os.Getenv, readVersion().Version)
	if err != nil {
		return nil, nil, fmt.Errorf("tracing: %w", err)
	}
	for _, w := range d.Warnings {
		slog.Warn("tracing", "warning", w)
	}
	if d.On {
		slog.Info("tracing", "on", true, "reason", d.Reason, "endpoint", telemetry.Endpoint(os.Getenv))
	} else {
		slog.Info("tracing", "on", false, "reason", d.Reason)
	}
	stop = func() {
		sctx, cancel := context.WithTimeout(context.Background(), tracingFlush)
		defer cancel()
		if err := tr.Shutdown(sctx); err != nil {
			slog.Warn("tracing: flush at shutdown", "err", err)
		}
	}
	return server.WithTracerProvider(tr.TracerProvider()), stop, nil
}
