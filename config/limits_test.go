package config_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/anteroom/anteroom/config"
)

func TestLimits(t *testing.T) {
	base := strings.Replace(designConfig, "clients:", "limits: LIMITS\nclients:", 1)
	parse := func(limits string) (*config.Config, error) {
		return config.Parse([]byte(strings.Replace(base, "LIMITS", limits, 1)), env(designEnv))
	}
	c, err := parse(`{joins_per_ip_per_minute: 12.5, trusted_proxies: [10.0.0.0/8, "::1", 192.0.2.7], client_ip_header: forwarded}`)
	if err != nil {
		t.Fatal(err)
	}
	l := c.Limits
	if l.JoinBurst() != 13 || l.LoginsPerTicket != 50 || l.ClientIPHeader != "forwarded" {
		t.Fatalf("defaults: %+v burst %d", l, l.JoinBurst())
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("192.0.2.7/32")}
	if got := l.Proxies(); len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("proxies %v", got)
	}
	for limits, wantErr := range map[string]string{
		`{joins_per_ip_per_minute: -1}`:                   "limits.joins_per_ip_per_minute: must be >= 0",
		`{burst: 3}`:                                      "limits.burst: needs joins_per_ip_per_minute",
		`{joins_per_ip_per_minute: 5, burst: -2}`:         "limits.burst: must be >= 1",
		`{trusted_proxies: [10.0.0.0/8, "10.0.0.x"]}`:     `limits.trusted_proxies[1]: must be an IP address or a CIDR range such as 10.0.0.0/8, got "10.0.0.x"`,
		`{client_ip_header: x-real-ip}`:                   `limits.client_ip_header: must be x-forwarded-for or forwarded, got "x-real-ip"`,
		`{logins_per_ticket: -1}`:                         "limits.logins_per_ticket: must be >= 1",
		`{joins_per_minute: 5}`:                           "limits.joins_per_minute: unknown key",
		`{event_streams: -1}`:                             "limits.event_streams: must be >= 0",
		`{event_streams_per_ip: -1}`:                      "limits.event_streams_per_ip: must be >= 0",
		`{event_streams: 100, event_streams_per_ip: 101}`: "limits.event_streams_per_ip: must be <= event_streams (100)",
	} {
		if _, err := parse(limits); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%s: %v, want %q", limits, err, wantErr)
		}
	}
}

// The event-stream bounds stay below the descriptor limit, so that an
// instance full of streams still accepts connections (health checks,
// polls); configured bounds win, and no address gets more than the
// instance.
func TestStreamCaps(t *testing.T) {
	for _, c := range []struct {
		l            config.Limits
		nofile       uint64
		total, perIP int
	}{
		{config.Limits{}, 1024, 768, 32},
		{config.Limits{}, 65536, 49152, 768},
		{config.Limits{}, 256, 192, 32},
		{config.Limits{}, 100, 36, 32},
		{config.Limits{}, 40, 0, 0},
		{config.Limits{}, 0, 10000, 156},
		{config.Limits{}, 1 << 62, 1 << 20, 1 << 14},
		{config.Limits{EventStreams: 500}, 1024, 500, 32},
		{config.Limits{EventStreams: 10, EventStreamsPerIP: 3}, 1024, 10, 3},
		{config.Limits{EventStreamsPerIP: 5000}, 1024, 768, 768},
	} {
		total, perIP := c.l.StreamCaps(c.nofile)
		if total != c.total || perIP != c.perIP {
			t.Errorf("%+v at RLIMIT_NOFILE %d: %d, %d; want %d, %d", c.l, c.nofile, total, perIP, c.total, c.perIP)
		}
		if c.l.EventStreams == 0 && c.nofile > 0 && uint64(total) >= c.nofile {
			t.Errorf("derived bound %d is not below the descriptor limit %d", total, c.nofile)
		}
	}
}
