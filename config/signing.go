package config

import "time"

// Signing algorithms Anteroom can sign with.
const (
	AlgorithmRS256 = "RS256"
	AlgorithmES256 = "ES256"
)

// Defaults and limits of signing.
const (
	// defaultRotateEvery is a month: often enough that a key leaked
	// unnoticed is not useful for long, rarely enough that the JWKS holds
	// two keys only briefly.
	defaultRotateEvery = 30 * 24 * time.Hour
	// minRotateEvery keeps the JWKS short: every retired key stays
	// published for as long as the longest session.
	minRotateEvery = time.Hour
	// defaultPublishAhead is above the hour that relying parties commonly
	// cache a JWKS for (mod_auth_openidc's default).
	defaultPublishAhead = 2 * time.Hour
	// minPublishAhead leaves the instances (which re-read the key set
	// every minute) and the max-age that /keys sends (half of this) time
	// to spread a new key before it signs.
	minPublishAhead = 5 * time.Minute
)

// Signing configures the keys that sign ID tokens, access tokens and gate
// sessions. They are kept in Redis, shared by every instance and sealed
// under secrets.cookie_keys; every key is published in the JWKS
// publish_ahead before it signs and stays there until every token it
// signed has expired (the longest session_ttl of the rooms, at least the
// ID token's 10 minutes, plus 5 minutes for clock skew).
type Signing struct {
	// Algorithm is RS256 (the default, which every OpenID Connect relying
	// party supports) or ES256 (smaller tokens, faster signing). A change
	// takes effect like a rotation: a key of the new algorithm is published
	// publish_ahead before it signs.
	Algorithm string `yaml:"algorithm"`
	// RotateEvery is how long each key signs before the next one takes
	// over. The default is 720h (30 days) and the minimum 1h; 0s never
	// rotates.
	RotateEvery *Duration `yaml:"rotate_every"`
	// PublishAhead is how long a new key is in the JWKS before it signs.
	// Set it above the longest time any relying party, edge connector or
	// proxy caches the JWKS; /keys sends a max-age of half of it, at most
	// 1h. The default is 2h, the minimum 5m, and it must be shorter than
	// rotate_every.
	PublishAhead Duration `yaml:"publish_ahead"`
}

// Rotation is the rotation period, 0 when keys never rotate.
func (s Signing) Rotation() time.Duration {
	if s.RotateEvery == nil {
		return defaultRotateEvery
	}
	return s.RotateEvery.D()
}

func (s *Signing) applyDefaults() {
	if s.Algorithm == "" {
		s.Algorithm = AlgorithmRS256
	}
	if s.PublishAhead == 0 {
		s.PublishAhead = Duration(defaultPublishAhead)
	}
}

func (v *validator) signing(s *Signing) {
	switch s.Algorithm {
	case AlgorithmRS256, AlgorithmES256:
	default:
		v.add("signing.algorithm", "must be RS256 or ES256, got %q", s.Algorithm)
	}
	if s.PublishAhead < Duration(minPublishAhead) {
		v.add("signing.publish_ahead", "must be at least %s, got %s", Duration(minPublishAhead), s.PublishAhead)
	}
	if r := s.RotateEvery; r != nil && *r != 0 {
		switch {
		case *r < Duration(minRotateEvery):
			v.add("signing.rotate_every", "must be 0s (never) or at least %s, got %s", Duration(minRotateEvery), *r)
		case s.PublishAhead >= *r:
			v.add("signing.publish_ahead", "must be shorter than signing.rotate_every (%s), got %s", *r, s.PublishAhead)
		}
	}
}
