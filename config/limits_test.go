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
		`{joins_per_ip_per_minute: -1}`:               "limits.joins_per_ip_per_minute: must be >= 0",
		`{burst: 3}`:                                  "limits.burst: needs joins_per_ip_per_minute",
		`{joins_per_ip_per_minute: 5, burst: -2}`:     "limits.burst: must be >= 1",
		`{trusted_proxies: [10.0.0.0/8, "10.0.0.x"]}`: `limits.trusted_proxies[1]: must be an IP address or a CIDR range such as 10.0.0.0/8, got "10.0.0.x"`,
		`{client_ip_header: x-real-ip}`:               `limits.client_ip_header: must be x-forwarded-for or forwarded, got "x-real-ip"`,
		`{logins_per_ticket: -1}`:                     "limits.logins_per_ticket: must be >= 1",
		`{joins_per_minute: 5}`:                       "limits.joins_per_minute: unknown key",
	} {
		if _, err := parse(limits); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%s: %v, want %q", limits, err, wantErr)
		}
	}
}
