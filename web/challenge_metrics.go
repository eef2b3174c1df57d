package web

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// challengeMetrics count the rooms' proofs of work in this instance.
type challengeMetrics struct {
	issued, solved *prometheus.CounterVec
	refused        *prometheus.CounterVec
	solveTime      *prometheus.HistogramVec
}

// solveBuckets span a desktop's fraction of a second to a throttled
// phone's half minute at the highest difficulty.
var solveBuckets = []float64{0.25, 0.5, 1, 2, 3, 5, 8, 13, 21, 34, 60, 120, 300}

func newChallengeMetrics(reg prometheus.Registerer) (*challengeMetrics, error) {
	m := &challengeMetrics{}
	var err error
	if m.issued, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "anteroom_challenges_issued_total",
		Help: "Proof-of-work challenges given to visitors without a ticket (rooms[].challenge).",
	}, []string{"room"})); err != nil {
		return nil, err
	}
	if m.solved, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "anteroom_challenges_solved_total",
		Help: "Proofs of work accepted, each of which bought a place.",
	}, []string{"room"})); err != nil {
		return nil, err
	}
	if m.refused, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "anteroom_challenges_refused_total",
		Help: "Proofs of work refused, by reason: proof_invalid, proof_expired, proof_other_room, proof_other_request, proof_replayed.",
	}, []string{"room", "reason"})); err != nil {
		return nil, err
	}
	if m.solveTime, err = register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "anteroom_challenge_solve_seconds",
		Help:    "Time from issuing a challenge to accepting its proof: what a place cost the visitor's browser, with the round trips.",
		Buckets: solveBuckets,
	}, []string{"room"})); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Metrics) challengeIssued(room string) {
	if m != nil && m.challenge != nil {
		m.challenge.issued.WithLabelValues(room).Inc()
	}
}

func (m *Metrics) challengeSolved(room string, took time.Duration) {
	if m != nil && m.challenge != nil {
		m.challenge.solved.WithLabelValues(room).Inc()
		m.challenge.solveTime.WithLabelValues(room).Observe(max(0, took.Seconds()))
	}
}

func (m *Metrics) challengeRefused(room, reason string) {
	if m != nil && m.challenge != nil {
		m.challenge.refused.WithLabelValues(room, reason).Inc()
	}
}

var difficultyDesc = prometheus.NewDesc("anteroom_challenge_difficulty",
	"The maxnumber a new visitor of the room is challenged with now (0: none), from its mode and, under_load, its arrivals per second across instances.",
	[]string{"room"}, nil)

// challengeCollector reports the rooms' current difficulty at scrape time.
type challengeCollector struct{ server *Server }

func (c challengeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- difficultyDesc }

func (c challengeCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.server
	for _, id := range s.store.Rooms() {
		if _, ok := s.challenges.Policy(id); ok {
			ch <- prometheus.MustNewConstMetric(difficultyDesc, prometheus.GaugeValue, float64(s.challenges.Difficulty(id)), id)
		}
	}
}
