package web

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

var testProxies = ClientIPs{Trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}}

func requestFrom(peer string, header ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = peer
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	return r
}

func TestClientIP(t *testing.T) {
	fwd := ClientIPs{Trusted: testProxies.Trusted, Forwarded: true}
	for _, tc := range []struct {
		name string
		c    ClientIPs
		r    *http.Request
		want string
	}{
		{"no proxy trusted: the peer, header ignored", ClientIPs{}, requestFrom("198.51.100.7:4000", "X-Forwarded-For", "1.2.3.4"), "198.51.100.7"},
		{"an untrusted peer's header is ignored", testProxies, requestFrom("198.51.100.7:4000", "X-Forwarded-For", "1.2.3.4"), "198.51.100.7"},
		{"a trusted proxy: the rightmost untrusted hop", testProxies, requestFrom("10.0.0.2:80", "X-Forwarded-For", "6.6.6.6, 203.0.113.9, 10.1.1.1"), "203.0.113.9"},
		{"repeated header lines read in order", testProxies, requestFrom("10.0.0.2:80", "X-Forwarded-For", "6.6.6.6", "X-Forwarded-For", "203.0.113.9"), "203.0.113.9"},
		{"all hops trusted: the leftmost", testProxies, requestFrom("10.0.0.2:80", "X-Forwarded-For", "10.9.9.9, 10.1.1.1"), "10.9.9.9"},
		{"a trusted proxy without the header", testProxies, requestFrom("10.0.0.2:80"), "10.0.0.2"},
		{"an unnamed hop: the proxy that reported it", testProxies, requestFrom("10.0.0.2:80", "X-Forwarded-For", "203.0.113.9, unknown"), "10.0.0.2"},
		{"IPv6 with a port, and IPv4-mapped", testProxies, requestFrom("[::ffff:10.0.0.2]:80", "X-Forwarded-For", "[2001:db8::1]:443"), "2001:db8::1"},
		{"Forwarded", fwd, requestFrom("10.0.0.2:80", "Forwarded", `for=6.6.6.6, for="[2001:db8:cafe::17]:4711";proto=https, for=10.3.3.3`), "2001:db8:cafe::17"},
		{"Forwarded ignores X-Forwarded-For", fwd, requestFrom("10.0.0.2:80", "X-Forwarded-For", "203.0.113.9"), "10.0.0.2"},
		{"X-Forwarded-For ignores Forwarded", testProxies, requestFrom("10.0.0.2:80", "Forwarded", "for=203.0.113.9"), "10.0.0.2"},
		{"Forwarded obfuscated", fwd, requestFrom("10.0.0.2:80", "Forwarded", `for=203.0.113.9, for="_hidden"`), "10.0.0.2"},
	} {
		if got := tc.c.Of(tc.r); got.String() != tc.want {
			t.Errorf("%s: %v, want %s", tc.name, got, tc.want)
		}
	}
	a, b := netip.MustParseAddr("2001:db8:1:2:aaaa::1"), netip.MustParseAddr("2001:db8:1:2:bbbb::9")
	if limitKey(a) != limitKey(b) || limitKey(a) == limitKey(netip.MustParseAddr("2001:db8:1:3::1")) || len(limitKey(a)) != 8 {
		t.Fatal("IPv6 clients are limited per /64")
	}
	if k := limitKey(netip.MustParseAddr("192.0.2.1")); len(k) != 4 || limitKey(netip.Addr{}) != "" {
		t.Fatalf("IPv4 key %q", k)
	}
}

// FuzzClientIP: the client address is the peer's or one from the header,
// the header counts only from a trusted proxy, and nothing a client puts
// in front of what the proxies wrote changes the answer.
func FuzzClientIP(f *testing.F) {
	for _, s := range []string{"6.6.6.6, 203.0.113.9, 10.1.1.1", "10.9.9.9", "unknown", `for="[2001:db8::1]:80"`, "[::1]:80, ,", ""} {
		f.Add("10.0.0.2:80", "1.1.1.1", s, false)
		f.Add("10.0.0.2:80", "", s, true)
		f.Add("198.51.100.7:1", "", s, false)
	}
	f.Fuzz(func(t *testing.T, peer, prefix, header string, forwarded bool) {
		c := ClientIPs{Trusted: testProxies.Trusted, Forwarded: forwarded}
		name := "X-Forwarded-For"
		if forwarded {
			name = "Forwarded"
		}
		r := requestFrom(peer, name, header)
		got := c.Of(r)
		ap, err := netip.ParseAddrPort(peer)
		if err != nil {
			if got.IsValid() {
				t.Fatalf("peer %q unreadable, yet client %v", peer, got)
			}
			return
		}
		if p := ap.Addr().Unmap(); !c.trusted(p) {
			if got != p {
				t.Fatalf("untrusted peer %v, but client %v from %q", p, got, header)
			}
			return
		}
		if got != ap.Addr().Unmap() && !strings.Contains(header, strings.TrimPrefix(got.String(), "::ffff:")) && !containsAddr(header, got, forwarded) {
			t.Fatalf("client %v is neither the peer %v nor in %q", got, ap.Addr(), header)
		}
		if !c.trusted(got) {
			// The answer came from an untrusted hop: a client's own
			// addition on the left cannot change it.
			spoofed := requestFrom(peer, name, prefix+","+header)
			if again := c.Of(spoofed); again != got {
				t.Fatalf("prefix %q changed the client from %v to %v (header %q)", prefix, got, again, header)
			}
		}
	})
}

// containsAddr reports whether one of the header's hops is a.
func containsAddr(header string, a netip.Addr, forwarded bool) bool {
	for _, hop := range strings.Split(header, ",") {
		if b, ok := parseHop(hop, forwarded); ok && b == a {
			return true
		}
	}
	return false
}
