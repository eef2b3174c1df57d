package web

import (
	"net/http"
	"net/netip"
	"strings"
)

// ClientIPs tells who a request comes from, for the join limit. The peer's
// address is the answer unless the peer is a trusted proxy; then it is the
// rightmost address in the proxies' header that is not itself a trusted
// proxy. Whatever a client writes into the header lands to the left of
// what the proxies append, so it cannot choose the answer; the zero value
// trusts no proxy and reads no header.
type ClientIPs struct {
	// Trusted are the proxies in front of Anteroom.
	Trusted []netip.Prefix
	// Forwarded reads Forwarded (RFC 7239) instead of X-Forwarded-For.
	Forwarded bool
}

// Of returns r's client address (invalid when the peer's is unreadable).
func (c ClientIPs) Of(r *http.Request) netip.Addr {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	client := peer.Addr().Unmap()
	if !c.trusted(client) {
		return client
	}
	hops := c.hops(r.Header)
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i], c.Forwarded)
		if !ok {
			// A hop the proxy could not name ("unknown", an obfuscated
			// id, garbage): the last address we can trust is the answer.
			return client
		}
		client = a
		if !c.trusted(a) {
			return a
		}
	}
	return client
}

func (c ClientIPs) trusted(a netip.Addr) bool {
	for _, p := range c.Trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// hops lists the header's elements in order, across repeated header lines.
func (c ClientIPs) hops(h http.Header) []string {
	name := "X-Forwarded-For"
	if c.Forwarded {
		name = "Forwarded"
	}
	var out []string
	for _, line := range h.Values(name) {
		out = append(out, strings.Split(line, ",")...)
	}
	return out
}

// parseHop reads one hop: an address, possibly with a port (and in
// brackets for IPv6), or for Forwarded the for= parameter of an element.
func parseHop(hop string, forwarded bool) (netip.Addr, bool) {
	hop = strings.TrimSpace(hop)
	if forwarded {
		var found bool
		for _, pair := range strings.Split(hop, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if ok && strings.EqualFold(k, "for") {
				hop, found = strings.Trim(v, `"`), true
				break
			}
		}
		if !found {
			return netip.Addr{}, false
		}
	}
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(hop, "["), "]")); err == nil && a.Zone() == "" {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(hop); err == nil && ap.Addr().Zone() == "" {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// limitKey is the join limit's name for a client: its IPv4 address, or its
// IPv6 /64 (what one subscriber usually gets), in 4 or 8 raw bytes; "" for
// no address, which the limit does not hold back.
func limitKey(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return ""
	case a.Is4():
		b := a.As4()
		return string(b[:])
	}
	b := a.As16()
	return string(b[:8])
}

// maskClient is the address a client is counted under by the stream
// bounds: its address as the trusted proxies tell it, IPv6 by /64 (what one
// subscriber usually gets) like the join limit.
func maskClient(a netip.Addr) netip.Addr {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}
