package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse: Parse never panics or runs away (aliases, merges), a file it
// accepts is valid and its defaults are settled, and a file it refuses is
// refused with errors that each name their key on one line, unless the
// document as a whole is not a YAML mapping. CI runs it for a few seconds
// (.ci/fuzz); seeds and past failures are in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`issuer: https://queue.example.com
redis: {url: redis://127.0.0.1:6379/0}
secrets: {cookie_keys: ["${KEY}"]}
admin: {token: "${TOKEN}"}
rooms:
  - id: launch
    admission: {rate_per_minute: 600, max_active: 2000}
    session_ttl: 30m
    max_wait: 6h
    opens_at: 2026-12-01T09:00:00+01:00
    abandon_after: 2m
    origin_health: {url: https://shop.example.com/healthz}
clients:
  - {id: shop, secret: "${SECRET}", redirect_uris: [https://shop.example.com/cb], room: launch}
gate:
  dynamic_paths: [/checkout]
  rules:
    - {path_prefix: /static/, action: bypass}
    - {user_agent: good_bots, action: bypass}
    - {path_regex: "^/stores", header: {name: X-A, regex: "^1$"}, action: block}
    - {path_prefix: /, action: queue, room: launch}
`,
		"a: &a [*a]",
		"base: &b {id: x}\nrooms: [{<<: *b}, {<<: [*b, *b]}]",
		"rooms:\n  - id: launch\n    session_ttl: 30\n    admission: {rate_per_minute: .nan}",
		"issuer: ${",
		"\"k\\ney\": 1",
		"--- {}\n--- {}",
		"[]",
		"",
	} {
		f.Add([]byte(s))
	}
	lookup := func(name string) (string, bool) {
		switch name {
		case "KEY":
			return "0123456789abcdef0123456789abcdef", true
		case "TOKEN", "SECRET":
			return "a-secret-of-16-chars-or-more", true
		}
		return "", false
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, lookup)
		if err == nil {
			if verr := c.Validate(); verr != nil {
				t.Fatalf("Parse accepted a config that Validate refuses: %v", verr)
			}
			again := *c
			again.ApplyDefaults()
			if !reflect.DeepEqual(&again, c) {
				t.Fatalf("defaults changed on a second ApplyDefaults")
			}
			return
		}
		if _, derr := parseDocument(data); derr != nil {
			return // not a single YAML mapping: there is no key to name
		}
		for _, e := range leaves(err) {
			var fe *fieldError
			if !errors.As(e, &fe) || fe.path == "" {
				t.Fatalf("error %q names no key", e)
			}
			if strings.ContainsAny(e.Error(), "\r\n") {
				t.Fatalf("error %q takes more than one line", e)
			}
		}
	})
}

// leaves flattens errors.Join.
func leaves(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leaves(e)...)
		}
		return out
	}
	return []error{err}
}
