package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"
)

// debugMux serves Go's profiler. It is its own mux, never the public one,
// so that nothing of it is reachable through the proxy in front of
// Anteroom.
func debugMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}

// serveDebug serves the profiler on addr (config debug.listen) until ctx is
// done. A failure to listen is returned at once; a profiler that cannot
// start must not go unnoticed by the operator who asked for it.
func serveDebug(ctx context.Context, addr string) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("debug listener: %w", err)
	}
	// No WriteTimeout: a CPU profile streams for as long as it was asked to run.
	srv := &http.Server{Handler: onlyLocalHosts(debugMux()), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	slog.Info("profiler listening", "addr", ln.Addr().String())
	stop := context.AfterFunc(ctx, func() { _ = srv.Close() })
	return func() { stop(); _ = srv.Close() }, nil
}

// onlyLocalHosts refuses a request whose Host is a name other than
// localhost. The listener is on loopback, but a web page in a browser on
// the same machine can reach it under its own name by DNS rebinding and
// read a heap profile; an IP literal or localhost cannot be rebound.
func onlyLocalHosts(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if hp, _, err := net.SplitHostPort(host); err == nil {
			host = hp
		}
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
		if net.ParseIP(host) == nil && !strings.EqualFold(host, "localhost") {
			http.Error(w, "the profiler answers to an IP address or localhost only", http.StatusMisdirectedRequest)
			return
		}
		h.ServeHTTP(w, r)
	})
}
