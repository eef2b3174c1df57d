// Package server assembles one Anteroom instance from its configuration:
// the queue (waitingroom), the OpenID Connect provider (oidc), the visitor's
// pages (web), the operator's side (operator), the gate, the signing keys and
// the origin probes, with their metrics on a registry of their own. It is
// what `anteroom serve` and `anteroom demo` run, and what the end-to-end
// tests (package e2e) start in-process.
//
//	srv, err := server.New(ctx, cfg, rdb)
//	...
//	err = srv.Serve(ctx, ln)
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/anteroom/anteroom/catalog"
	"github.com/anteroom/anteroom/config"
	"github.com/anteroom/anteroom/gate"
	"github.com/anteroom/anteroom/internal/telemetry"
	"github.com/anteroom/anteroom/keys"
	"github.com/anteroom/anteroom/oidc"
	"github.com/anteroom/anteroom/operator"
	"github.com/anteroom/anteroom/origin"
	"github.com/anteroom/anteroom/waitingroom"
	"github.com/anteroom/anteroom/web"
)

// Server is one Anteroom instance: everything wired, nothing started until
// Serve.
type Server struct {
	cfg       *config.Config
	beats     *waitingroom.Heartbeats
	arrivals  *waitingroom.Arrivals
	site      *web.Server
	store     *waitingroom.Store
	cache     *waitingroom.Cache
	scheduler *waitingroom.Scheduler
	origins   *origin.Prober
	keys      *keys.Manager
	provider  *oidc.Provider
	handler   http.Handler
	// opsHandler serves the operator's routes on opsLn when ops.listen
	// is set (nil otherwise: they are routes of handler); see ops.go.
	opsHandler http.Handler
	opsLn      net.Listener
	// operator serves the admin API, the dashboard and health (ops.go).
	operator *operator.Server
	// catalog keeps the runtime rooms and clients in step (catalog.go).
	catalog *catalog.Watcher
	// registry holds every metric of the instance, served at /metrics:
	// one per instance, so that two in a process (tests) count apart.
	registry *prometheus.Registry
}

// rooms converts the configured rooms for the queue.
func rooms(cfg *config.Config) []waitingroom.Room {
	out := make([]waitingroom.Room, 0, len(cfg.Rooms))
	for _, r := range cfg.Rooms {
		out = append(out, roomOf(r))
	}
	return out
}

// originTargets lists the rooms whose site is probed.
func originTargets(cfg *config.Config) []origin.Target {
	var out []origin.Target
	for _, r := range cfg.Rooms {
		if o := r.OriginHealth; o != nil {
			out = append(out, origin.Target{Room: r.ID, URL: o.URL,
				Interval: o.Interval.D(), Timeout: o.Timeout.D(), MaxLatency: o.MaxLatency.D()})
		}
	}
	return out
}

// Option changes how New assembles an instance.
type Option func(*options)

type options struct {
	now       func() time.Time
	storeOpts []waitingroom.Option
	opsLn     net.Listener
	version   string
	revision  string
	tracer    trace.TracerProvider
}

// WithClock makes now the instance's clock for everything that decides by
// time (admission, sessions, tokens, keys); tests pass one they control.
// Origin probes measure real latency and keep the wall clock. nil is
// time.Now, the default.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// WithStoreOptions passes opts to the queue's store (waitingroom.NewStore)
// after the ones New derives from the configuration; the demo uses it for
// its embedded Redis.
func WithStoreOptions(opts ...waitingroom.Option) Option {
	return func(o *options) { o.storeOpts = append(o.storeOpts, opts...) }
}

// WithOpsListener is the listener Serve serves the operator's routes on
// when the configuration has ops.listen. `anteroom serve` opens it before
// New, with the public one, so that probes see an instance that is alive
// but not ready while Redis is awaited; without this option Serve opens
// ops.listen itself.
func WithOpsListener(ln net.Listener) Option {
	return func(o *options) { o.opsLn = ln }
}

// WithBuildInfo is what the anteroom_build_info metric says of the binary:
// its version (a release's tag, or the go command's stamp) and the commit it
// was built from. The command passes them in, so that server need not
// import main; without this option both labels are empty.
func WithBuildInfo(version, revision string) Option {
	return func(o *options) { o.version, o.revision = version, revision }
}

// WithTracerProvider traces the instance with tp (see internal/telemetry):
// a server span for every request of the public handler, named by its
// route, and a client span for every Redis round trip a request makes.
// nil, the default, traces nothing and costs nothing: no middleware, no
// hook.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *options) { o.tracer = tp }
}

// New wires an instance for cfg (validated, defaults applied) on rdb. It
// waits for Redis to answer (a rolling deploy can start Anteroom before its
// store) until ctx is done; it starts nothing in the background.
func New(ctx context.Context, cfg *config.Config, rdb redis.UniversalClient, opts ...Option) (*Server, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	now := o.now
	if now == nil {
		now = time.Now
	}
	storeOpts := o.storeOpts
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := registerBuildInfo(registry, o.version, o.revision); err != nil {
		return nil, err
	}
	metrics, err := web.NewMetrics(registry)
	if err != nil {
		return nil, err
	}
	metrics.WatchRedis(rdb)
	if o.tracer != nil {
		rdb.AddHook(telemetry.RedisHook(o.tracer))
	}
	secrets := make([][]byte, len(cfg.Secrets.CookieKeys))
	for i, k := range cfg.Secrets.CookieKeys {
		secrets[i] = []byte(k)
	}
	oidcBox, err := keys.NewBox(secrets, "oidc requests")
	if err != nil {
		return nil, err
	}
	// Bindings are filed by their auth request's creation time, sealed in
	// its id, so they expire in buckets with the requests. The waiting page
	// passes the time of the request it has opened
	// (waitingroom.RequestCreatedAt); this opens the id again only for a
	// caller that does not, with the same result.
	requestTime := func(id string) (time.Time, bool) { return oidc.RequestCreated(oidcBox, id) }
	store, err := waitingroom.NewStore(rdb, rooms(cfg), append([]waitingroom.Option{waitingroom.WithClock(now),
		waitingroom.WithRequestTime(requestTime),
		waitingroom.WithJoinLimit(cfg.Limits.JoinsPerIPPerMinute, cfg.Limits.JoinBurst()),
		waitingroom.WithLoginsPerTicket(cfg.Limits.LoginsPerTicket)}, storeOpts...)...)
	if err != nil {
		return nil, err
	}
	keyBox, err := keys.NewBox(secrets, "signing keys")
	if err != nil {
		return nil, err
	}
	var km *keys.Manager
	for attempt := 0; ; attempt++ {
		if err = store.Seed(ctx); err == nil {
			km, err = keys.NewManager(ctx, rdb, keyBox, keyOptions(cfg, now))
		}
		if err == nil {
			break
		}
		if !isUnreachable(err) || ctx.Err() != nil {
			return nil, err
		}
		if attempt == 0 {
			slog.Warn("waiting for redis", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	if err := km.RegisterMetrics(registry); err != nil {
		return nil, err
	}
	var gateRooms []string
	if cfg.Gate != nil {
		seen := map[string]bool{}
		for _, r := range cfg.Gate.Rules {
			if r.Room != "" && !seen[r.Room] {
				seen[r.Room] = true
				gateRooms = append(gateRooms, r.Room)
			}
		}
	}
	provider, err := oidc.NewProvider(oidc.Options{
		Issuer: cfg.Issuer, Clients: cfg.Clients, Rooms: store, Redis: rdb, Keys: km, Box: oidcBox, Now: now,
		GateRooms: gateRooms, GateSecret: secrets[0], OnToken: metrics.TokenIssued,
	})
	if err != nil {
		return nil, err
	}
	cache := waitingroom.NewCache(store, 500*time.Millisecond)
	beats := waitingroom.NewHeartbeats(store)
	_ = cache.Refresh(ctx)
	// Every instance probes its rooms' sites, not only a room's leader:
	// each instance's status and metrics then show the origin, and a new
	// leader takes over with the hysteresis already warm. Probes measure
	// real latency, so they keep the wall clock whatever now is.
	origins, err := origin.New(originTargets(cfg))
	if err != nil {
		return nil, err
	}
	arrivals := waitingroom.NewArrivals(store)
	challenges, err := newChallenges(cfg, secrets, now, store, arrivals)
	if err != nil {
		return nil, err
	}
	streams, streamsPerIP := streamBounds(cfg.Limits)
	clientIPs := web.ClientIPs{Trusted: cfg.Limits.Proxies(), Forwarded: cfg.Limits.ClientIPHeader == config.ClientIPHeaderForwarded}
	people, err := identities(cfg, now)
	if err != nil {
		return nil, err
	}
	site, err := web.New(web.Options{
		Issuer: cfg.Issuer, Store: store, Cache: cache, Flow: authFlow{provider},
		CookieSecrets: secrets, Heartbeats: beats,
		Origins: origins, Metrics: metrics, WebDir: cfg.Web.Dir, SiteURL: cfg.Web.SiteURL,
		ClientIPs: clientIPs, Challenges: challenges, Identities: people,

		// The stream bounds: see ops.go.
		EventStreams: streams, EventStreamsPerIP: streamsPerIP,
	})
	if err != nil {
		return nil, err
	}
	provider.SetErrorPage(site.RequestError)
	if err := site.RegisterMetrics(registry); err != nil {
		return nil, err
	}
	// Rooms and clients created at run time (catalog.go): served from
	// the start, then kept in step by the watcher Serve runs.
	cat := catalog.New(rdb, now)
	applier := &catalogApplier{cfg: cfg, store: store, cache: cache, provider: provider}
	watcher := catalog.NewWatcher(cat, applier.apply)
	if err := watcher.Sync(ctx); err != nil {
		slog.Error("runtime rooms and clients not applied; retrying in the background", "err", err)
	}
	desk, err := operator.New(operator.Options{
		Issuer: cfg.Issuer, Store: store, Cache: cache, CookieSecrets: secrets, AdminToken: cfg.Admin.Token,
		Tokens: adminTokens(cfg), Redis: rdb, Catalog: cat, Apply: watcher.Sync,
		FileRooms: fileRoomIDs(cfg), FileClients: fileClients(cfg), ReservedClientID: oidc.ReservedClientID,
		MaxSessionTTL: keyOptions(cfg, now).Retain - keys.ClockSkew,
		Origins:       origins, Abandoned: metrics, Keys: km, ClientIP: clientIPs.Of,
		// ops.listen: see ops.go.
		SeparateOps: cfg.Ops.Separate(), Challenges: challenges,
	})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	opsMux := registerOps(cfg, site, desk, registry, mux)
	if cfg.Gate != nil {
		gateBox, err := keys.NewBox(secrets, "gate flow")
		if err != nil {
			return nil, err
		}
		gateRoomInfo := make(map[string]gate.Room, len(cfg.Rooms))
		for i, r := range rooms(cfg) {
			gateRoomInfo[r.ID] = gate.Room{Room: r, FailOpen: cfg.Rooms[i].OnError == config.OnErrorFailOpen}
		}
		g, err := gate.New(gate.Options{
			Issuer: cfg.Issuer, Config: cfg.Gate, Rooms: gateRoomInfo, Keys: km, Box: gateBox,
			Exchanger: gateExchanger{provider}, Health: cache, ClientID: oidc.GateClientID, Now: now,
			Tickets: site, Sessions: store, Registerer: registry,
		})
		if err != nil {
			return nil, err
		}
		g.Register(mux)
	}
	scheduler := waitingroom.NewScheduler(store, instanceID(), 500*time.Millisecond)
	scheduler.Throttle = origins.Factor
	scheduler.OnSkip = metrics.Abandoned
	scheduler.OnLaneAdvance = metrics.LaneAdmitted
	scheduler.OnEvent = metrics.EventSwitched
	mux.Handle("/", provider.Handler())
	a := &Server{
		cfg: cfg, site: site, beats: beats, arrivals: arrivals, store: store, cache: cache, keys: km, provider: provider,
		scheduler: scheduler, origins: origins, operator: desk, registry: registry, opsLn: o.opsLn, catalog: watcher,
		handler: web.RequestIDs(web.SecurityHeaders(withRequestTimeout(cfg.Redis.RequestTimeout.D(), traced(o.tracer, site.Instrument(metrics, mux))))),
	}
	if opsMux != nil {
		a.opsHandler = web.RequestIDs(web.SecurityHeaders(withRequestTimeout(cfg.Redis.RequestTimeout.D(), site.Instrument(metrics, opsMux))))
	}
	return a, nil
}

// Handler is the instance's public handler: the provider, the waiting
// pages, the gate, and, without ops.listen, the operator's routes. Serve
// serves it; an embedder may serve it on a server of its own, but then
// runs none of the background work Serve starts.
func (a *Server) Handler() http.Handler { return a.handler }

// OpsHandler serves the operator's routes (admin API, dashboard, health,
// /metrics) when the configuration has ops.listen; nil otherwise, when
// they are routes of Handler.
func (a *Server) OpsHandler() http.Handler { return a.opsHandler }

// Scheduler is the instance's admission scheduler, which Serve runs; tests
// step it by hand (Step) to admit without waiting for its tick.
func (a *Server) Scheduler() *waitingroom.Scheduler { return a.scheduler }

// Cache is the instance's cache of room states, which Serve refreshes.
func (a *Server) Cache() *waitingroom.Cache { return a.cache }

// Heartbeats collects the waiting pages' signs of life, which Serve flushes
// to Redis every few seconds.
func (a *Server) Heartbeats() *waitingroom.Heartbeats { return a.beats }

// Arrivals counts the rooms' arrivals for their challenges' difficulty,
// which Serve syncs with the other instances; tests sync it by hand.
func (a *Server) Arrivals() *waitingroom.Arrivals { return a.arrivals }

// Keys is the instance's signing-key manager, which Serve keeps rotating.
func (a *Server) Keys() *keys.Manager { return a.keys }

// Origins probes the rooms' sites (origin_health), which Serve runs.
func (a *Server) Origins() *origin.Prober { return a.origins }

// Registry holds every metric of the instance, served at /metrics; one per
// instance, so that two in a process count apart.
func (a *Server) Registry() *prometheus.Registry { return a.registry }

// keyOptions configures the signing keys. How long a key stays published
// after it stops signing is derived, not configured: the longest life of
// anything it signed (access tokens, refresh grants and gate sessions end
// with the visitor's session, ID tokens sooner), plus clock skew.
func keyOptions(cfg *config.Config, now func() time.Time) keys.Options {
	longest := oidc.MaxIDTokenLifetime
	for _, r := range cfg.Rooms {
		longest = max(longest, r.SessionTTL.D())
	}
	return keys.Options{
		Algorithm:    jose.SignatureAlgorithm(cfg.Signing.Algorithm),
		RotateEvery:  cfg.Signing.Rotation(),
		PublishAhead: cfg.Signing.PublishAhead.D(),
		Retain:       longest + keys.ClockSkew,
		Now:          now,
	}
}

// withRequestTimeout bounds each request's Redis work (redis.request_timeout)
// with a deadline on its context, which go-redis honours
// (ContextTimeoutEnabled): a stalled Redis then costs a visitor a quick 503,
// not a hanging page and a goroutine. Event streams stay open for hours and
// read no Redis once started, so they are exempt.
func withRequestTimeout(d time.Duration, next http.Handler) http.Handler {
	if d <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/events") {
			next.ServeHTTP(w, r)
			return
		}
		ctx := newLazyDeadline(r.Context(), d)
		defer ctx.stop()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// traced wraps next in the tracing middleware when tracing is on. It sits
// inside the request's deadline and request id, so that its span is in the
// context the handlers log and call Redis with, and right around Instrument
// and the mux, which must see the request the middleware passes on (the
// mux writes the matched pattern into it, which names the span).
func traced(tp trace.TracerProvider, next http.Handler) http.Handler {
	if tp == nil {
		return next
	}
	return telemetry.Handler(tp, next)
}

// gateExchanger lets the gate redeem codes through the provider, and tells
// it when the store, not the code, was the problem.
type gateExchanger struct{ p *oidc.Provider }

func (x gateExchanger) ExchangeCode(ctx context.Context, clientID, code, verifier, redirectURI string) (string, error) {
	tok, err := x.p.ExchangeCode(ctx, clientID, code, verifier, redirectURI)
	if errors.Is(err, oidc.ErrUnavailable) {
		err = fmt.Errorf("%w: %w", gate.ErrUnavailable, err)
	}
	return tok, err
}

// isUnreachable tells a store that is not answering (worth waiting for)
// from a real error (wrong secrets, bad data). A Redis still loading its
// data, or a Cluster or replica not yet serving, is coming up: worth
// waiting for too.
func isUnreachable(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, redis.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) ||
		redis.IsLoadingError(err) || redis.IsClusterDownError(err) || redis.IsMasterDownError(err) || redis.IsTryAgainError(err)
}

func instanceID() string {
	host, _ := os.Hostname()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return host + "-" + hex.EncodeToString(b)
}

// Serve runs the instance on ln (and its operator's routes on ops.listen,
// if configured) until ctx is done, then shuts down gracefully: in-flight
// requests get shutdownGrace to finish. It starts the instance's
// background work (scheduler, caches, key rotation, probes, heartbeats) and
// stops it on return.
func (a *Server) Serve(ctx context.Context, ln net.Listener) error {
	if err := a.listenOps(); err != nil {
		return err
	}
	bg, stop := context.WithCancel(context.Background())
	defer stop()
	go a.cache.Run(bg)
	go a.scheduler.Run(bg)
	go a.keys.Run(bg)
	go a.origins.Run(bg)
	go a.beats.Run(bg, heartbeatFlush)
	go a.arrivals.Run(bg, arrivalsSync)
	go a.operator.RunHistory(bg)
	go a.catalog.Run(bg)

	srv := newServer(a.handler)
	srv.RegisterOnShutdown(a.site.CloseStreams)
	errc := make(chan error, 2)
	stopOps := a.serveOps(errc)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	slog.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err := srv.Shutdown(sctx)
	stopOps(sctx)
	stop()
	return err
}

const shutdownGrace = 20 * time.Second

// newServer is the HTTP server of each of the instance's listeners (the
// public one, ops.listen, and both while starting): bounded reads, so a
// slow client cannot hold a connection, and net/http's own complaints in
// the structured log.
func newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(slog.Default().Handler(), slog.LevelWarn),
	}
}

// heartbeatFlush is how often waiting pages' signs of life reach Redis: a
// write per room per flush, however many pages poll.
const heartbeatFlush = 5 * time.Second

// registerBuildInfo adds anteroom_build_info to reg: always 1, its labels
// say which build this instance runs, so that a dashboard can show a
// rolling deploy's mix of versions and join the build to other metrics.
func registerBuildInfo(reg prometheus.Registerer, version, revision string) error {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "anteroom_build_info",
		Help: "Always 1; the labels name the version, the commit and the Go version of this instance's binary.",
		ConstLabels: prometheus.Labels{
			"version":   version,
			"revision":  revision,
			"goversion": runtime.Version(),
		},
	})
	g.Set(1)
	if err := reg.Register(g); err != nil {
		return fmt.Errorf("register anteroom_build_info: %w", err)
	}
	return nil
}
