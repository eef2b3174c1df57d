package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/anteroom/anteroom/config"
)

// withOrigin is the design example with origin_health (one YAML line of
// flow mapping) added to its room.
func withOrigin(originHealth string) string {
	return strings.Replace(designConfig, "    max_wait: 6h\n", "    max_wait: 6h\n    origin_health: "+originHealth+"\n", 1)
}

func TestOriginHealthDefaults(t *testing.T) {
	t.Parallel()
	cases := []struct {
		yaml                          string
		interval, timeout, maxLatency time.Duration
	}{
		{`{url: "https://shop.example.com/healthz"}`, 5 * time.Second, 2 * time.Second, time.Second},
		{`{url: "https://shop.example.com/healthz", interval: 1s}`, time.Second, time.Second, 500 * time.Millisecond},
		{`{url: "https://shop.example.com/healthz", timeout: 600ms}`, 5 * time.Second, 600 * time.Millisecond, 300 * time.Millisecond},
		{`{url: "http://10.0.0.7:8080/up", interval: 10s, timeout: 3s, max_latency: 2s}`, 10 * time.Second, 3 * time.Second, 2 * time.Second},
	}
	for _, tc := range cases {
		cfg, err := config.Parse([]byte(withOrigin(tc.yaml)), env(designEnv))
		if err != nil {
			t.Fatalf("%s: %v", tc.yaml, err)
		}
		o := cfg.Rooms[0].OriginHealth
		if o == nil {
			t.Fatalf("%s: no origin_health", tc.yaml)
		}
		if o.Interval.D() != tc.interval || o.Timeout.D() != tc.timeout || o.MaxLatency.D() != tc.maxLatency {
			t.Errorf("%s: interval %s timeout %s max_latency %s, want %s %s %s",
				tc.yaml, o.Interval, o.Timeout, o.MaxLatency, tc.interval, tc.timeout, tc.maxLatency)
		}
	}
	cfg, err := config.Parse([]byte(designConfig), env(designEnv))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Rooms[0].OriginHealth != nil {
		t.Fatal("origin_health set without the key")
	}
}

func TestOriginHealthErrorsNameTheKey(t *testing.T) {
	t.Parallel()
	const key = "rooms[0].origin_health."
	cases := map[string]string{
		`{interval: 5s}`:                                                key + "url: required",
		`{url: /healthz}`:                                               key + `url: must be an absolute URL, got "/healthz"`,
		`{url: "ftp://shop.example.com/"}`:                              key + `url: must use http or https, got scheme "ftp"`,
		`{url: "https://u:p@shop.example.com/"}`:                        key + "url: must not contain user info",
		`{url: "https://shop.example.com/#x"}`:                          key + "url: must not have a fragment",
		`{url: "https://s.example.com/", interval: -1s}`:                key + "interval: must be > 0",
		`{url: "https://s.example.com/", timeout: -1s}`:                 key + "timeout: must be > 0",
		`{url: "https://s.example.com/", max_latency: -1s}`:             key + "max_latency: must be > 0",
		`{url: "https://s.example.com/", interval: 1s, timeout: 2s}`:    key + "timeout: must be at most interval (1s), got 2s",
		`{url: "https://s.example.com/", timeout: 1s, max_latency: 1s}`: key + "max_latency: must be less than timeout (1s), or no probe could be slow, got 1s",
		`{url: "https://s.example.com/", intervall: 5s}`:                key + "intervall: unknown key",
		`{url: "https://s.example.com/", interval: 5}`:                  key + "interval",
	}
	for doc, want := range cases {
		_, err := config.Parse([]byte(withOrigin(doc)), env(designEnv))
		if err == nil {
			t.Errorf("%s: no error, want %q", doc, want)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%s:\n got %v\nwant %q", doc, err, want)
		}
	}
}
