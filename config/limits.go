package config

import (
	"math"
	"net/netip"
	"strings"
)

// Client IP headers a trusted proxy may report the client's address in.
const (
	ClientIPHeaderXForwardedFor = "x-forwarded-for"
	ClientIPHeaderForwarded     = "forwarded"
)

// defaultLoginsPerTicket is generous for a person (each new tab or login
// of a relying party is one) and small enough that a script looping over
// /authorize with one ticket stops costing Redis after a few kilobytes.
const defaultLoginsPerTicket = 50

// Limits bound what one client can make Anteroom do.
type Limits struct {
	// JoinsPerIPPerMinute is how many new places in the queue (new
	// tickets) one client address may take per minute in a room, enforced
	// across instances through Redis. A visitor coming back with their
	// ticket is never limited, only new joins. Addresses are counted per
	// IPv4 address and per IPv6 /64. 0, the default, turns the limit off:
	// many people may share one address (a carrier's NAT, an office), so
	// choose it knowing your visitors.
	JoinsPerIPPerMinute float64 `yaml:"joins_per_ip_per_minute"`
	// Burst is how many joins one address may make at once before the
	// rate applies. Default: a minute's worth (joins_per_ip_per_minute,
	// rounded up).
	Burst int `yaml:"burst"`
	// TrustedProxies are the addresses or CIDR ranges of the proxies in
	// front of Anteroom (load balancer, nginx, CDN). Only a request from
	// one of them is read for the client's address in ClientIPHeader:
	// the rightmost address there that is not a trusted proxy. Anyone
	// else's header is ignored, so it cannot be forged.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// ClientIPHeader is the header the trusted proxies write:
	// x-forwarded-for (the default) or forwarded (RFC 7239). Only one is
	// read: a proxy passes the other on as the client sent it.
	ClientIPHeader string `yaml:"client_ip_header"`
	// LoginsPerTicket bounds the authorization requests one ticket may be
	// bound to, that is how many logins one place in the queue can make
	// (new tabs, restarted logins, several relying parties, a copied
	// cookie). Each costs a few dozen bytes of Redis until the ticket
	// expires. Default 50.
	LoginsPerTicket int `yaml:"logins_per_ticket"`
	// EventStreams bounds the event streams (/wait/{id}/events) one
	// instance holds open. Each holds a file descriptor for as long as its
	// visitor waits; at the process's descriptor limit the instance could
	// accept no connection at all, health checks included. A stream beyond
	// the bound gets its first event and ends, and its page follows the
	// queue by reconnecting, which is polling. 0 (the default) derives it
	// from the descriptor limit (RLIMIT_NOFILE) at start-up: see
	// StreamCaps.
	EventStreams int `yaml:"event_streams"`
	// EventStreamsPerIP bounds the streams of one client address (IPv4
	// address, IPv6 /64, as limits.trusted_proxies tells it), so that one
	// address cannot take the whole instance's share. 0 (the default):
	// derived from the instance's bound, see StreamCaps.
	EventStreamsPerIP int `yaml:"event_streams_per_ip"`
}

// Descriptor budget for event streams, when derived.
const (
	// streamReserveMin is the fewest descriptors kept for everything that
	// is not an event stream: listeners, the Redis pool, status polls,
	// logins, health checks, origin probes, log files.
	streamReserveMin = 64
	// streamsUnknownLimit is the bound when the descriptor limit cannot be
	// read (not a unix system).
	streamsUnknownLimit = 10_000
	// streamsMax keeps a limit of "unlimited" from meaning unbounded
	// memory: a stream costs a few KiB.
	streamsMax = 1 << 20
	// streamsPerIPMin lets a household or an office behind one address
	// keep their streams; beyond it their pages poll.
	streamsPerIPMin = 32
)

// StreamCaps returns the event-stream bounds for an instance whose
// descriptor limit is nofile (0: unknown). Unless configured, the
// instance's bound keeps a quarter of the descriptors (at least 64) for
// everything else, and the per-address bound is a 64th of it, at least 32,
// never above the instance's. A configured per-address bound is also
// never above the instance's.
func (l Limits) StreamCaps(nofile uint64) (total, perIP int) {
	total = l.EventStreams
	if total == 0 {
		switch {
		case nofile == 0:
			total = streamsUnknownLimit
		case nofile > streamsMax:
			total = streamsMax
		default:
			reserve := max(nofile/4, streamReserveMin)
			total = int(nofile - min(nofile, reserve))
		}
	}
	perIP = l.EventStreamsPerIP
	if perIP == 0 {
		perIP = max(streamsPerIPMin, total/64)
	}
	return total, min(perIP, total)
}

// JoinBurst is Burst with its default applied.
func (l Limits) JoinBurst() int {
	if l.Burst > 0 {
		return l.Burst
	}
	return max(1, int(math.Ceil(l.JoinsPerIPPerMinute)))
}

// Proxies returns TrustedProxies parsed; Validate has checked them.
func (l Limits) Proxies() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(l.TrustedProxies))
	for _, s := range l.TrustedProxies {
		if p, err := parsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// parsePrefix reads a CIDR range or a single address (as a /32 or /128).
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (l *Limits) applyDefaults() {
	if l.ClientIPHeader == "" {
		l.ClientIPHeader = ClientIPHeaderXForwardedFor
	}
	if l.LoginsPerTicket == 0 {
		l.LoginsPerTicket = defaultLoginsPerTicket
	}
}

func (v *validator) limits(l *Limits) {
	const p = "limits"
	switch r := l.JoinsPerIPPerMinute; {
	case r < 0 || math.IsNaN(r):
		v.add(p+".joins_per_ip_per_minute", "must be >= 0 (0 turns the limit off)")
	case r > maxRate:
		v.add(p+".joins_per_ip_per_minute", "must be <= %d", int(maxRate))
	}
	switch {
	case l.Burst < 0:
		v.add(p+".burst", "must be >= 1")
	case l.Burst > 0 && l.JoinsPerIPPerMinute == 0:
		v.add(p+".burst", "needs joins_per_ip_per_minute")
	case l.Burst > 1_000_000:
		v.add(p+".burst", "must be <= 1000000")
	}
	for i, s := range l.TrustedProxies {
		if _, err := parsePrefix(s); err != nil {
			v.add(indexPath(p+".trusted_proxies", i), "must be an IP address or a CIDR range such as 10.0.0.0/8, got %q", s)
		}
	}
	switch l.ClientIPHeader {
	case ClientIPHeaderXForwardedFor, ClientIPHeaderForwarded:
	default:
		v.add(p+".client_ip_header", "must be x-forwarded-for or forwarded, got %q", l.ClientIPHeader)
	}
	if l.LoginsPerTicket < 1 {
		v.add(p+".logins_per_ticket", "must be >= 1")
	}
	if l.EventStreams < 0 {
		v.add(p+".event_streams", "must be >= 0 (0 derives it from the descriptor limit)")
	}
	switch {
	case l.EventStreamsPerIP < 0:
		v.add(p+".event_streams_per_ip", "must be >= 0 (0 derives it from event_streams)")
	case l.EventStreams > 0 && l.EventStreamsPerIP > l.EventStreams:
		v.add(p+".event_streams_per_ip", "must be <= event_streams (%d)", l.EventStreams)
	}
}
