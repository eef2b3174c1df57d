package config

import "time"

// Defaults of rooms[].origin_health.
const (
	defaultOriginInterval   = 5 * time.Second
	defaultOriginTimeout    = 2 * time.Second
	defaultOriginMaxLatency = time.Second
)

// OriginHealth makes Anteroom probe the site a room protects and admit
// fewer visitors while it struggles: a 2xx answer within MaxLatency is
// healthy (the room's full rate), a slower 2xx is slow (half the rate), no
// 2xx within Timeout is failing (nobody is admitted by schedule). Getting
// better takes two good probes in a row. Every instance probes on its own.
type OriginHealth struct {
	// URL is an absolute http or https URL that the probes GET, such as the
	// site's own health check. Redirects are followed; the final answer
	// counts.
	URL string `yaml:"url"`
	// Interval is the time between probes. The default is 5s.
	Interval Duration `yaml:"interval"`
	// Timeout bounds one probe, and is at most Interval. The default is 2s,
	// or Interval if that is shorter.
	Timeout Duration `yaml:"timeout"`
	// MaxLatency is the slowest answer that is still healthy, and is less
	// than Timeout. The default is 1s, or half the timeout if that is
	// shorter.
	MaxLatency Duration `yaml:"max_latency"`
}

func (o *OriginHealth) applyDefaults() {
	if o.Interval == 0 {
		o.Interval = Duration(defaultOriginInterval)
	}
	if o.Timeout == 0 {
		o.Timeout = Duration(defaultOriginTimeout)
		if o.Interval > 0 {
			o.Timeout = min(o.Timeout, o.Interval)
		}
	}
	if o.MaxLatency == 0 {
		o.MaxLatency = Duration(defaultOriginMaxLatency)
		if o.Timeout > 0 {
			o.MaxLatency = min(o.MaxLatency, o.Timeout/2)
		}
	}
}

// originHealth checks every room's origin_health.
func (v *validator) originHealth(rooms []Room) {
	for i, r := range rooms {
		o := r.OriginHealth
		if o == nil {
			continue
		}
		v.origin(indexPath("rooms", i)+".origin_health", o)
	}
}

// origin checks one room's origin_health, at path p.
func (v *validator) origin(p string, o *OriginHealth) {
	switch u, err := httpURL(o.URL); {
	case o.URL == "":
		v.add(p+".url", "required")
	case err != nil:
		v.add(p+".url", "%v", err)
	case u.User != nil:
		// The URL is logged and shown to operators.
		v.add(p+".url", "must not contain user info")
	}
	v.positive(p+".interval", o.Interval)
	v.positive(p+".timeout", o.Timeout)
	v.positive(p+".max_latency", o.MaxLatency)
	if o.Timeout > 0 && o.Timeout > o.Interval {
		v.add(p+".timeout", "must be at most interval (%s), got %s", o.Interval, o.Timeout)
	}
	if o.MaxLatency > 0 && o.Timeout > 0 && o.MaxLatency >= o.Timeout {
		v.add(p+".max_latency", "must be less than timeout (%s), or no probe could be slow, got %s", o.Timeout, o.MaxLatency)
	}
}
