package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/anteroom/anteroom/config"
	"github.com/anteroom/anteroom/operator"
	"github.com/anteroom/anteroom/web"
)

// The operator's endpoints (config ops.listen): /metrics, /healthz,
// /readyz, the admin API and the dashboard. Without ops.listen they are
// routes of the public mux, as they always were; with it they are served
// by a listener of their own and the public mux has none of them, so no
// proxy configuration can expose them by forwarding a path.

// registerOps adds the visitor's routes (site) to public, and the
// operator's (desk, and /metrics of the instance's registry) to public too,
// or, with ops.listen, to a mux of their own, which it returns (nil without
// ops.listen).
func registerOps(cfg *config.Config, site *web.Server, desk *operator.Server, reg *prometheus.Registry, public *http.ServeMux) *http.ServeMux {
	site.RegisterPublic(public)
	metrics := promhttp.InstrumentMetricHandler(reg, promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	if !cfg.Ops.Separate() {
		desk.Register(public)
		public.Handle("GET /metrics", metrics)
		return nil
	}
	// The OIDC library answers /healthz and /ready itself: those must
	// not reach it from the public listener either.
	for _, path := range []string{"/healthz", "/ready", "/readyz"} {
		public.Handle(path, http.NotFoundHandler())
	}
	ops := http.NewServeMux()
	desk.Register(ops)
	ops.Handle("GET /metrics", metrics)
	return ops
}

// listenOps opens the ops listener for a.cfg.Ops.Listen, if there is one
// and WithOpsListener gave none; Serve then serves it beside the public one.
func (a *Server) listenOps() error {
	if a.opsHandler == nil || a.opsLn != nil {
		return nil
	}
	ln, err := net.Listen("tcp", a.cfg.Ops.Listen)
	if err != nil {
		return fmt.Errorf("ops.listen: %w", err)
	}
	a.opsLn = ln
	return nil
}

// serveOps serves the operator's routes on a.opsLn until the returned
// function shuts it down (gracefully, within ctx). With no ops listener it
// does nothing.
func (a *Server) serveOps(errc chan<- error) func(ctx context.Context) {
	if a.opsLn == nil {
		return func(context.Context) {}
	}
	srv := newServer(a.opsHandler)
	slog.Info("operations listening", "addr", a.opsLn.Addr().String())
	go func() {
		if err := srv.Serve(a.opsLn); err != http.ErrServerClosed {
			errc <- fmt.Errorf("ops listener: %w", err)
		}
	}()
	return func(ctx context.Context) { _ = srv.Shutdown(ctx) }
}

// streamBounds returns the event-stream bounds for this process, derived
// from its descriptor limit unless configured (limits.event_streams…), and
// logs them: an operator who raises the limit sees the bound follow.
func streamBounds(l config.Limits) (total, perIP int) {
	nofile := descriptorLimit()
	total, perIP = l.StreamCaps(nofile)
	attrs := []any{"event_streams", total, "event_streams_per_ip", perIP, "rlimit_nofile", nofile}
	if derived, _ := (config.Limits{}).StreamCaps(nofile); nofile > 0 && total > derived {
		slog.Warn("limits.event_streams is close to the descriptor limit: a full instance may refuse connections, health checks included", attrs...)
	} else {
		slog.Info("event stream bounds", attrs...)
	}
	// 0 would mean "no bound" to the hub; a limit that leaves no room for
	// streams means every page polls.
	return max(1, total), max(1, perIP)
}
