package config

import (
	"net"
	"strconv"
)

// Ops configures where the operator's endpoints are served.
type Ops struct {
	// Listen, when set, serves the operator's endpoints on this address:
	// /metrics, /healthz, /readyz, the admin API (/admin/v1/…) and the
	// dashboard (/admin/), and takes them off the public listener, so
	// that the proxy in front of Anteroom cannot expose them whatever it
	// forwards. Unlike debug.listen it may be any address: a Kubernetes
	// probe or a Prometheus scrape reaches a pod by its own IP, so there
	// it is ":9090" or "0.0.0.0:9090", kept off the Service and the
	// Ingress. Empty (the default): everything is served on listen, as
	// before, which itself defaults to loopback.
	Listen string `yaml:"listen"`
}

// Separate reports whether operations have their own listener.
func (o Ops) Separate() bool { return o.Listen != "" }

func (v *validator) ops(o *Ops, listen, debug string) {
	const p = "ops.listen"
	if o.Listen == "" {
		return
	}
	_, port, err := net.SplitHostPort(o.Listen)
	if err != nil {
		v.add(p, "must be host:port, got %q", o.Listen)
		return
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		v.add(p, "port must be a number from 0 to 65535, got %q", port)
		return
	}
	// Port 0 picks a free port, so two such listeners never collide.
	if port == "0" {
		return
	}
	if sameAddr(o.Listen, listen) {
		v.add(p, "must differ from listen (%s): the point is a listener the public proxy does not reach", listen)
	}
	if debug != "" && sameAddr(o.Listen, debug) {
		v.add(p, "must differ from debug.listen (%s)", debug)
	}
}

// sameAddr reports whether two host:port addresses would bind the same
// port on a common interface: the same port, and the same host or either
// host unspecified (all interfaces).
func sameAddr(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || pa != pb {
		return false
	}
	wildcard := func(h string) bool {
		ip := net.ParseIP(h)
		return h == "" || ip != nil && ip.IsUnspecified()
	}
	return ha == hb || wildcard(ha) || wildcard(hb)
}
