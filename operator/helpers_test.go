package operator

import (
	"net/http"
	"net/netip"
	"strings"
)

// testIssuer is the issuer of the tests' servers.
const testIssuer = "http://127.0.0.1:1"

// throughProxy is the client address as a proxy at 127.0.0.1 tells it in
// X-Forwarded-For (what web.ClientIPs.Of answers for a trusted proxy),
// else the peer's.
func throughProxy(r *http.Request) netip.Addr {
	peer := peerAddr(r)
	if peer != netip.MustParseAddr("127.0.0.1") {
		return peer
	}
	hops := strings.Split(r.Header.Get("X-Forwarded-For"), ",")
	if a, err := netip.ParseAddr(strings.TrimSpace(hops[len(hops)-1])); err == nil {
		return a
	}
	return peer
}
