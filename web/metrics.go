package web

import (
	"errors"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/anteroom/anteroom/waitingroom"
)

// The rooms' gauges are computed when Prometheus scrapes, from the same
// cache and probes as the status JSON: no loop keeps them up to date, and
// they are never staler than what visitors see. A value that is unknown
// (an ETA without a rate, a rate without history, an origin not probed
// yet) is left out rather than given as 0, which would mean something.
var (
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

// roomCollector reports a Server's rooms.
type roomCollector struct{ server atomic.Pointer[Server] }

func (c *roomCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{etaDesc, rateDesc, fullDesc, originUpDesc, originLatencyDesc} {
		ch <- d
	}
}

func (c *roomCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.server.Load()
	gauge := func(d *prometheus.Desc, v float64, room string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, room)
	}
	for _, id := range s.store.Rooms() {
		room, _ := s.store.Room(id)
		if counters, ok := s.cache.Get(id); ok {
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
		if s.origins == nil {
			continue
		}
		if st, ok := s.origins.Status(id); ok && !st.CheckedAt.IsZero() {
			gauge(originUpDesc, st.State.Factor(), id)
			gauge(originLatencyDesc, st.Latency.Seconds(), id)
		}
	}
}

// RegisterMetrics registers the rooms' gauges with reg (nil:
// prometheus.DefaultRegisterer). When a Server of this process registered
// them before (tests run several), the gauges report this one from now on.
func (s *Server) RegisterMetrics(reg prometheus.Registerer) error {
	if reg == nil {
		reg = prometheus.DefaultRegisterer
	}
	c := &roomCollector{}
	c.server.Store(s)
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(*roomCollector); ok {
			existing.server.Store(s)
			return nil
		}
	}
	return err
}

// Interface guards.
var _ prometheus.Collector = (*roomCollector)(nil)
