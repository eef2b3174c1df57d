package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/anteroom/anteroom/internal/route"
	"github.com/anteroom/anteroom/origin"
	"github.com/anteroom/anteroom/waitingroom"
)

// The rooms' gauges are computed when Prometheus scrapes, from the same
// cache and probes as the status JSON: no loop keeps them up to date, and
// they are never staler than what visitors see. A value that is unknown
// (an ETA without a rate, a rate without history, an origin not probed
// yet) is left out rather than given as 0, which would mean something.
var (
	waitingDesc = prometheus.NewDesc("anteroom_room_waiting",
		"Visitors holding a position the serving counter has not reached (tail - serving).",
		[]string{"room"}, nil)
	servingDesc = prometheus.NewDesc("anteroom_room_serving",
		"The room's serving counter: the last position admitted.",
		[]string{"room"}, nil)
	tailDesc = prometheus.NewDesc("anteroom_room_tail",
		"The last position handed out.",
		[]string{"room"}, nil)
	activeDesc = prometheus.NewDesc("anteroom_room_active",
		"Admitted visitors whose session has not ended (read from Redis at scrape time).",
		[]string{"room"}, nil)
	etaDesc = prometheus.NewDesc("anteroom_room_eta_seconds",
		"Estimated wait of a visitor arriving now, at the measured admission rate when known, else the configured one.",
		[]string{"room"}, nil)
	rateDesc = prometheus.NewDesc("anteroom_room_admission_rate_per_minute",
		"Measured admission rate: positions the serving counter moved per minute while visitors waited, over the last 5 minutes.",
		[]string{"room"}, nil)
	fullDesc = prometheus.NewDesc("anteroom_room_queue_full",
		"1 when a visitor arriving now would wait longer than the room's max_wait.",
		[]string{"room"}, nil)
	originUpDesc = prometheus.NewDesc("anteroom_origin_up",
		"Health of the site the room protects, as this instance's probes see it: 1 healthy, 0.5 slow, 0 failing.",
		[]string{"room"}, nil)
	originLatencyDesc = prometheus.NewDesc("anteroom_origin_latency_seconds",
		"Time the last origin probe took to its response headers, or to its failure.",
		[]string{"room"}, nil)
)

// OriginHealth is what this instance's probes of the rooms' sites found
// (an *origin.Prober), for the origin gauges; false for a room that is not
// probed.
type OriginHealth interface {
	Status(room string) (origin.Status, bool)
}

// roomCollector reports a Server's rooms.
type roomCollector struct{ server *Server }

func (c *roomCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{waitingDesc, servingDesc, tailDesc, activeDesc, etaDesc, rateDesc, fullDesc, originUpDesc, originLatencyDesc} {
		ch <- d
	}
}

func (c *roomCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.server
	gauge := func(d *prometheus.Desc, v float64, room string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, room)
	}
	for _, id := range s.store.Rooms() {
		room, _ := s.store.Room(id)
		if counters, ok := s.cache.Get(id); ok {
			gauge(waitingDesc, float64(counters.Waiting()), id)
			gauge(servingDesc, float64(counters.Serving), id)
			gauge(tailDesc, float64(counters.Tail), id)
			rate := s.cache.Rate(id)
			if eta := waitingroom.ETA(counters.Waiting()+1, counters, rate); eta != nil {
				gauge(etaDesc, float64(*eta), id)
			}
			full := 0.0
			if waitingroom.QueueFull(room, counters, rate) {
				full = 1
			}
			gauge(fullDesc, full, id)
		}
		if measured, ok := s.cache.MeasuredRate(id); ok {
			gauge(rateDesc, measured, id)
		}
		if active, ok := s.activeNow(id); ok {
			gauge(activeDesc, float64(active), id)
		}
		if s.origins == nil {
			continue
		}
		if st, ok := s.origins.Status(id); ok && !st.CheckedAt.IsZero() {
			gauge(originUpDesc, st.State.Factor(), id)
			gauge(originLatencyDesc, st.Latency.Seconds(), id)
		}
	}
}

// activeNow counts room's active visitors. The cache does not keep them
// (only capacity-bound admission needs them, and it reads Redis), so a
// scrape costs one short read per room; while Redis does not answer within
// a second the gauge is left out.
func (s *Server) activeNow(room string) (int64, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c, err := s.store.Status(ctx, room)
	return c.Active, err == nil
}

// RegisterMetrics registers the rooms' gauges with reg, the instance's
// registry (one per instance: a second Server needs a registry of its own).
func (s *Server) RegisterMetrics(reg prometheus.Registerer) error {
	if err := reg.Register(&roomCollector{server: s}); err != nil {
		return fmt.Errorf("register the rooms' gauges: %w", err)
	}
	if err := reg.Register(challengeCollector{server: s}); err != nil {
		return fmt.Errorf("register the challenge gauge: %w", err)
	}
	return nil
}

// Metrics counts what happens in this instance: visitors joining and being
// admitted, abandonment, credentials issued, request latency and Redis
// failures, in series of the instance's own registry. Counters count the
// events this instance saw, so their sum across instances is the
// deployment's.
type Metrics struct {
	joins       *prometheus.CounterVec
	admissions  *prometheus.CounterVec
	abandoned   *prometheus.CounterVec
	issued      *prometheus.CounterVec
	wait        *prometheus.HistogramVec
	requests    *prometheus.HistogramVec
	routes      sync.Map // route → prometheus.Observer of requests
	redisErrors *redisErrorCounter
	refusals    *prometheus.CounterVec
	streams     prometheus.Gauge
	// streamsRefused counts streams the hub would not hold, by bound.
	streamsRefused *prometheus.CounterVec
	// abandonedByRoom counts abandoned positions per room
	// (*atomic.Int64) as the series does, readable without a scrape, for
	// the admin status (AbandonedHere).
	abandonedByRoom sync.Map
	// challenge counts the rooms' proofs of work (challenge_metrics.go).
	challenge *challengeMetrics
	// laneAdmissions and eventSwitches count priority lanes' admissions
	// and scheduled events' starts and ends.
	laneAdmissions *prometheus.CounterVec
	eventSwitches  *prometheus.CounterVec
}

// waitBuckets span a quiet room's instant admission to a launch's hours.
var waitBuckets = []float64{1, 5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 21600, 43200}

// NewMetrics registers the instance's counters and histograms with reg, the
// instance's registry (nil: a registry of their own that nothing serves).
// Registering them twice with one registry is an error: two instances of
// a process (as in tests) each have their own registry, and their series.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &Metrics{}
	var err error
	if m.joins, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "anteroom_joins_total",
		Help: "Visitors who got a new place in the room's queue (a new ticket), including the pre-queue and those the safety net let straight in.",
	}, []string{"room"})); err != nil {
		return nil, err
	}
	if m.admissions, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "anteroom_admissions_total",
		Help: "Visitors who passed the queue: a ticket admitted for the first time, on continue or by the safety net at joining.",
	}, []string{"room"})); err != nil {
		return nil, err
	}
	if m.abandoned, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "anteroom_abandoned_total",
		Help: "Positions the scheduler passed over because the visitor's page had fallen silent (counted by the room's scheduling instance).",
	}, []string{"room"})); err != nil {
		return nil, err
	}
	if m.laneAdmissions, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "anteroom_lane_admissions_total",
		Help: "Visitors the scheduler admitted from each priority lane of a room with lanes (standard: everyone without a code), counted by the room's scheduling instance.",
	}, []string{"room", "lane"})); err != nil {
		return nil, err
	}
	if m.eventSwitches, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "anteroom_event_switches_total",
		Help: "Scheduled events that took over a room's settings (started) or gave them back (ended), counted once, by the instance whose switch changed the room.",
	}, []string{"room", "change"})); err != nil {
		return nil, err
	}
	if m.issued, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "anteroom_oidc_issued_total",
		Help: "Credentials issued, by kind: code, access_token, refresh_token.",
	}, []string{"kind"})); err != nil {
		return nil, err
	}
	if m.wait, err = register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "anteroom_wait_seconds",
		Help:    "Time from joining to admission (queued_at to admitted_at) of each visitor admitted.",
		Buckets: waitBuckets,
	}, []string{"room"})); err != nil {
		return nil, err
	}
	if m.requests, err = register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "anteroom_http_request_duration_seconds",
		Help: "Time to serve a request, by route (the ServeMux pattern, or the OIDC endpoint's path); for an event stream, how long it stayed open.",
	}, []string{"route"})); err != nil {
		return nil, err
	}
	if m.refusals, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "anteroom_visitor_errors_total",
		Help: "Error pages and error JSON shown to visitors, by kind: invalid_request, expired, start_again, closed, temporarily_unavailable, rate_limited, too_many_logins.",
	}, []string{"kind"})); err != nil {
		return nil, err
	}
	if m.streams, err = register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "anteroom_event_streams",
		Help: "Event streams (/wait/{id}/events) the process holds open: waiting pages that are live.",
	})); err != nil {
		return nil, err
	}
	if m.streamsRefused, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "anteroom_event_streams_refused_total",
		Help: "Event streams that got their first event and ended instead of being held, by the bound that refused them: ticket, address, instance.",
	}, []string{"bound"})); err != nil {
		return nil, err
	}
	if m.challenge, err = newChallengeMetrics(reg); err != nil {
		return nil, err
	}
	if m.redisErrors, err = register(reg, &redisErrorCounter{
		Counter: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "anteroom_redis_errors_total",
			Help: "Redis commands and pipelines of this instance that failed: unreachable, timed out or refused. Missing keys and the script cache and room reseeding it recovers from by itself are not errors.",
		}),
		watched: map[redis.UniversalClient]bool{},
	}); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c with reg and returns it.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		return c, fmt.Errorf("register metrics: %w", err)
	}
	return c, nil
}

// TokenIssued counts a credential of kind (oidc.Options.OnToken).
func (m *Metrics) TokenIssued(kind string) { m.issued.WithLabelValues(kind).Inc() }

// Abandoned counts positions a scheduler tick passed over in room
// (waitingroom.Scheduler.OnSkip).
func (m *Metrics) Abandoned(room string, skipped int64) {
	m.abandoned.WithLabelValues(room).Add(float64(skipped))
	n, _ := m.abandonedByRoom.LoadOrStore(room, new(atomic.Int64))
	n.(*atomic.Int64).Add(skipped)
}

// LaneAdmitted counts admitted visitors of one of room's priority lanes
// (waitingroom.Scheduler.OnLaneAdvance).
func (m *Metrics) LaneAdmitted(room, lane string, admitted int64) {
	m.laneAdmissions.WithLabelValues(room, lane).Add(float64(admitted))
}

// EventSwitched counts a scheduled event taking over room's settings
// (started) or giving them back (waitingroom.Scheduler.OnEvent).
func (m *Metrics) EventSwitched(room string, started bool) {
	change := "ended"
	if started {
		change = "started"
	}
	m.eventSwitches.WithLabelValues(room, change).Inc()
}

// AbandonedHere returns how many of room's positions this instance's
// scheduler passed over since it started (the admin status and the
// dashboard's history show it); m may be nil.
func (m *Metrics) AbandonedHere(room string) int64 {
	if m == nil {
		return 0
	}
	if n, ok := m.abandonedByRoom.Load(room); ok {
		return n.(*atomic.Int64).Load()
	}
	return 0
}

// joined counts a new ticket in room; m may be nil.
func (m *Metrics) joined(room string) {
	if m != nil {
		m.joins.WithLabelValues(room).Inc()
	}
}

// admitted counts a ticket's first admission and how long it waited.
func (m *Metrics) admitted(t waitingroom.Ticket) {
	if m == nil {
		return
	}
	m.admissions.WithLabelValues(t.Room).Inc()
	m.wait.WithLabelValues(t.Room).Observe(max(0, t.AdmittedAt.Sub(t.JoinedAt).Seconds()))
}

// Instrument measures every request next serves in
// anteroom_http_request_duration_seconds, labelled by the route the
// ServeMux chose (it sets r.Pattern on the request it is given, so next must
// be, or end in, the mux).
func (s *Server) Instrument(m *Metrics, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		next.ServeHTTP(w, r)
		if r.Pattern == eventsPattern {
			return // measured when the stream ends, after its handler (streamEnded)
		}
		m.observer(routeLabel(r)).Observe(time.Since(start).Seconds())
	})
}

// streamsHeld adds n to the count of held event streams.
func (m *Metrics) streamsHeld(n int) {
	if m != nil {
		m.streams.Add(float64(n))
	}
}

// streamRefused counts a stream refused by bound.
func (m *Metrics) streamRefused(bound string) {
	if m != nil {
		m.streamsRefused.WithLabelValues(bound).Inc()
	}
}

// streamEnded records how long an event stream that opened at start stayed
// open, under its route.
func (m *Metrics) streamEnded(start time.Time) {
	if m != nil {
		m.observer(eventsPattern).Observe(time.Since(start).Seconds())
	}
}

// observer returns the latency histogram of a route, looked up once per
// route: resolving label values hashes them on every call, and routes are
// a small fixed set.
func (m *Metrics) observer(route string) prometheus.Observer {
	if o, ok := m.routes.Load(route); ok {
		return o.(prometheus.Observer)
	}
	o := m.requests.WithLabelValues(route)
	m.routes.Store(route, o)
	return o
}

// providerPaths are the OIDC endpoints, which the provider serves behind
// the mux's catch-all "/" pattern; each is a route of its own.
var providerPaths = func() map[string]bool {
	m := make(map[string]bool, len(route.ProviderPaths))
	for _, p := range route.ProviderPaths {
		m[p] = true
	}
	return m
}()

// routeLabel is a request's label: a bounded set, never the raw path.
func routeLabel(r *http.Request) string {
	switch {
	case r.Pattern == "":
		return "unmatched"
	case r.Pattern == "/" && providerPaths[r.URL.Path]:
		return r.URL.Path
	}
	return r.Pattern
}

// redisErrorCounter is anteroom_redis_errors_total and the clients it
// watches, so that a client watched twice has its errors counted once.
type redisErrorCounter struct {
	prometheus.Counter
	mu      sync.Mutex
	watched map[redis.UniversalClient]bool
}

// WatchRedis counts rdb's failures in anteroom_redis_errors_total. Watching
// the same client again changes nothing.
func (m *Metrics) WatchRedis(rdb redis.UniversalClient) {
	c := m.redisErrors
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.watched[rdb] {
		return
	}
	c.watched[rdb] = true
	rdb.AddHook(redisErrorHook{c})
}

// redisErrorHook counts failed commands, and a pipeline once however many
// of its commands failed.
type redisErrorHook struct{ errors prometheus.Counter }

func (h redisErrorHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h redisErrorHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if redisFailure(err) && !handshakeProbe(cmd) {
			h.errors.Inc()
		}
		return err
	}
}

func (h redisErrorHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		// A pipeline's error is one of its commands' (a network error is
		// set on each), so the commands say whether it failed.
		failed := redisFailure(err) && !anyErr(cmds)
		for _, cmd := range cmds {
			failed = failed || redisFailure(cmd.Err()) && !handshakeProbe(cmd)
		}
		if failed {
			h.errors.Inc()
		}
		return err
	}
}

// handshakeProbe reports a command go-redis sends on each new connection
// to learn what the server supports, and whose refusal it takes in its
// stride: CLIENT SETINFO (Redis 7.2+), CLIENT MAINT_NOTIFICATIONS (Redis
// 8+), HELLO (6+). Counting them would count every connection an older
// Redis accepts as an error.
func handshakeProbe(cmd redis.Cmder) bool {
	args := cmd.Args()
	switch strings.ToLower(cmd.Name()) {
	case "hello":
		return true
	case "client":
		if len(args) > 1 {
			sub, _ := args[1].(string)
			return strings.EqualFold(sub, "setinfo") || strings.EqualFold(sub, "maint_notifications")
		}
	}
	return false
}

// anyErr reports whether a command of a pipeline carries an error.
func anyErr(cmds []redis.Cmder) bool {
	for _, cmd := range cmds {
		if cmd.Err() != nil {
			return true
		}
	}
	return false
}

// redisFailure tells an error worth an operator's attention from an
// answer: a missing key, a script not cached yet (go-redis then sends it),
// a room Redis lost and the store seeds again, a caller that went away.
func redisFailure(err error) bool {
	switch {
	case err == nil, errors.Is(err, redis.Nil), errors.Is(err, context.Canceled):
		return false
	case redis.HasErrorPrefix(err, "NOSCRIPT"), redis.HasErrorPrefix(err, "NOSEED"):
		return false
	}
	return true
}

// Interface guards.
var (
	_ prometheus.Collector = (*roomCollector)(nil)
	_ prometheus.Collector = (*redisErrorCounter)(nil)
	_ redis.Hook           = redisErrorHook{}
)

// refused counts an error shown to a visitor; m may be nil.
func (m *Metrics) refused(kind string) {
	if m != nil {
		m.refusals.WithLabelValues(kind).Inc()
	}
}
