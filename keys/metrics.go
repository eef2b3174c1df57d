package keys

import (
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// changeKinds are the changes a Manager writes to the record, in the order
// metrics list them.
var changeKinds = []string{"created", "scheduled", "retired", "resealed", "upgraded", "revoked"}

// changeCounts counts the changes this instance wrote.
type changeCounts struct {
	mu sync.Mutex
	n  map[string]float64
}

func (c *changeCounts) add(kind string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]float64{}
	}
	c.n[kind]++
}

func (c *changeCounts) get(kind string) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[kind]
}

var (
	keyInfoDesc = prometheus.NewDesc("anteroom_signing_key_info",
		"Signing keys this instance publishes (1 each), by kid, alg and state: signing (signs now), next (published ahead, signs from its not_before), retiring (stopped signing, published until every token it signed has expired).",
		[]string{"kid", "alg", "state"}, nil)
	keyChangesDesc = prometheus.NewDesc("anteroom_signing_key_changes_total",
		"Changes this instance wrote to the shared signing key record, by change: created (the first key), scheduled (a new key, published ahead), retired (a key removed from the JWKS), resealed (sealed again under the first cookie key), upgraded (a record from before rotation given windows), revoked (a key retired early by an operator).",
		[]string{"change"}, nil)
)

// keyCollector reports a Manager's keys as this instance sees them at
// scrape time, with its clock.
type keyCollector struct{ m *Manager }

func (c *keyCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- keyInfoDesc
	ch <- keyChangesDesc
}

func (c *keyCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.m
	for _, k := range m.Status() {
		ch <- prometheus.MustNewConstMetric(keyInfoDesc, prometheus.GaugeValue, 1, k.ID, string(k.Algorithm), string(k.State))
	}
	for _, kind := range changeKinds {
		ch <- prometheus.MustNewConstMetric(keyChangesDesc, prometheus.CounterValue, m.counts.get(kind), kind)
	}
}

// RegisterMetrics adds the manager's metrics to reg, its instance's
// registry: each instance of a process (as in tests) has its own.
func (m *Manager) RegisterMetrics(reg prometheus.Registerer) error {
	if err := reg.Register(&keyCollector{m: m}); err != nil {
		return fmt.Errorf("register the signing keys' metrics: %w", err)
	}
	return nil
}
