package config

import "net"

// Debug configures diagnostics for operators.
type Debug struct {
	// Listen, when set, serves Go's profiler (net/http/pprof) under
	// /debug/pprof/ on this address, apart from the public listener so that
	// the proxy in front of Anteroom never exposes it. It must be a loopback
	// address: a CPU profile costs the instance CPU on demand, and profiles
	// name the code's internals. Empty (the default): off.
	Listen string `yaml:"listen"`
}

func (v *validator) debug(d *Debug) {
	const p = "debug.listen"
	if d.Listen == "" {
		return
	}
	host, _, err := net.SplitHostPort(d.Listen)
	if err != nil {
		v.add(p, "must be host:port, got %q", d.Listen)
		return
	}
	if !isLoopbackHost(host) {
		v.add(p, "must be a loopback address (127.0.0.1, ::1 or localhost), got %q", host)
	}
}
