package config

import (
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written as "30m", "6h" or "1h30m" in YAML.
//
// It exists because yaml.v3 would otherwise read a bare integer as
// nanoseconds, so "session_ttl: 30" would silently mean 30ns.
type Duration time.Duration

// D returns d as a time.Duration, sparing callers a conversion at every use.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d the way an operator would write it: "30m" rather than
// time.Duration's "30m0s", so error messages and marshalled files read like
// the configuration they came from.
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2] // "30m0s" -> "30m"
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2] // "6h0m" -> "6h"
	}
	return s
}

// UnmarshalYAML parses a Go duration string. A unit is required (except for
// 0) so that a number is never taken to mean nanoseconds.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("invalid duration: expected a string such as 30m")
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("invalid duration %q (want e.g. 90s, 30m, 1h30m)", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes d in the same form UnmarshalYAML reads, so a marshalled
// Config loads back unchanged.
func (d Duration) MarshalYAML() (any, error) {
	return d.String(), nil
}
