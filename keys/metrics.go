package keys

import (
	"fmt"
	"sync"
	"time"

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
	rotationDueDesc = prometheus.NewDesc("anteroom_signing_key_rotation_due_timestamp_seconds",
		"When the signing key will have signed for signing.rotate_every, and a newer key should sign instead, as a Unix time; absent when keys never rotate. It moves on at each rotation: one that stays in the past means rotation is stuck.",
		nil, nil)
)

// keyCollector reports a Manager's keys as this instance sees them at
// scrape time, with its clock.
type keyCollector struct{ m *Manager }

func (c *keyCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- keyInfoDesc
	ch <- keyChangesDesc
	ch <- rotationDueDesc
}

func (c *keyCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.m
	status := m.Status()
	for _, k := range status {
		ch <- prometheus.MustNewConstMetric(keyInfoDesc, prometheus.GaugeValue, 1, k.ID, string(k.Algorithm), string(k.State))
	}
	if due, ok := rotationDue(status, m.opts.RotateEvery); ok {
		ch <- prometheus.MustNewConstMetric(rotationDueDesc, prometheus.GaugeValue, float64(due.UnixMilli())/1e3)
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

// rotationDue returns when the signing key (status's first) will have
// signed for every, which is when a rotation that works has a newer key
// signing: an alert compares it with the time, so a rotation that fails
// (Redis refusing the record, every instance on a configuration that
// never rotates) is seen before the key is old. A key from a record
// written before rotation existed signs from its creation. ok is false
// when keys never rotate or there is no key.
func rotationDue(status []PublishedKey, every time.Duration) (due time.Time, ok bool) {
	if every <= 0 || len(status) == 0 || status[0].State != StateSigning {
		return time.Time{}, false
	}
	from := status[0].NotBefore
	if from.IsZero() {
		from = status[0].Created
	}
	return from.Add(every), true
}
