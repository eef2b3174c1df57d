package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/anteroom/anteroom/config"
)

// withSigning is the design example with a signing section (a YAML flow
// mapping) added.
func withSigning(signing string) string {
	return designConfig + "signing: " + signing + "\n"
}

func TestSigningDefaults(t *testing.T) {
	t.Parallel()
	cases := []struct {
		yaml          string
		alg           string
		rotate, ahead time.Duration
	}{
		{"", "RS256", 720 * time.Hour, 2 * time.Hour},
		{"{algorithm: ES256}", "ES256", 720 * time.Hour, 2 * time.Hour},
		{"{rotate_every: 0s}", "RS256", 0, 2 * time.Hour},
		{"{rotate_every: 168h, publish_ahead: 6h}", "RS256", 168 * time.Hour, 6 * time.Hour},
		{"{rotate_every: 1h, publish_ahead: 5m}", "RS256", time.Hour, 5 * time.Minute},
	}
	for _, tc := range cases {
		src := designConfig
		if tc.yaml != "" {
			src = withSigning(tc.yaml)
		}
		cfg, err := config.Parse([]byte(src), env(designEnv))
		if err != nil {
			t.Fatalf("%q: %v", tc.yaml, err)
		}
		s := cfg.Signing
		if s.Algorithm != tc.alg || s.Rotation() != tc.rotate || s.PublishAhead.D() != tc.ahead {
			t.Errorf("%q: algorithm %s rotation %s publish_ahead %s, want %s %s %s",
				tc.yaml, s.Algorithm, s.Rotation(), s.PublishAhead, tc.alg, tc.rotate, tc.ahead)
		}
	}
}

func TestSigningErrorsNameTheKey(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"{algorithm: HS256}":                        `signing.algorithm: must be RS256 or ES256, got "HS256"`,
		"{algorithm: rs256}":                        `signing.algorithm: must be RS256 or ES256, got "rs256"`,
		"{algorithm: none}":                         `signing.algorithm: must be RS256 or ES256, got "none"`,
		"{rotate_every: 30m}":                       "signing.rotate_every: must be 0s (never) or at least 1h, got 30m",
		"{rotate_every: -1h}":                       "signing.rotate_every: must be 0s (never) or at least 1h, got -1h",
		"{publish_ahead: 1m}":                       "signing.publish_ahead: must be at least 5m, got 1m",
		"{publish_ahead: -1h}":                      "signing.publish_ahead: must be at least 5m, got -1h",
		"{rotate_every: 2h}":                        "signing.publish_ahead: must be shorter than signing.rotate_every (2h), got 2h",
		"{rotate_every: 24h, publish_ahead: 48h}":   "signing.publish_ahead: must be shorter than signing.rotate_every (24h), got 48h",
		"{rotate_every: 720}":                       "signing.rotate_every",
		"{rotate: 24h}":                             "signing.rotate: unknown key",
		"{publish_ahead: 2h, retain_for: 24h}":      "signing.retain_for: unknown key",
		"{algorithm: ES256, publish_ahead: banana}": "signing.publish_ahead",
	}
	for doc, want := range cases {
		_, err := config.Parse([]byte(withSigning(doc)), env(designEnv))
		if err == nil {
			t.Errorf("%s: no error, want %q", doc, want)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%s:\n got %v\nwant %q", doc, err, want)
		}
	}
}
