package gate

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/anteroom/anteroom/keys"
)

// Audience is the gate session token's aud claim. Edge connectors and
// downstream APIs check it, so a session token is never mistaken for an ID
// or access token issued to a relying party.
const Audience = "anteroom-gate"

// sessionClaims is the gate session: a compact JWT signed with Anteroom's
// own signing key, so anyone holding the public JWKS can verify it and no
// secret ever leaves Anteroom.
type sessionClaims struct {
	jwt.Claims
	Room     string `json:"room"`
	Position int64  `json:"queue_position,omitempty"`
}

// signedWith signs claims with key as a compact JWT.
func signedWith(key keys.Key, claims any) (string, error) {
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: key.Algorithm, Key: jose.JSONWebKey{Key: key.Private, KeyID: key.ID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("create signer: %w", err)
	}
	return jwt.Signed(signer).Claims(claims).Serialize()
}

var errToken = errors.New("invalid token")

// verifyJWT checks raw's signature against the published keys, decodes
// its claims into out and returns the signing key's id. The algorithm is
// pinned to the key's own: a token that names another (alg none, HS256
// keyed with the public key) fails.
func verifyJWT(raw string, published []keys.Key, out any) (string, error) {
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil || len(tok.Headers) != 1 {
		return "", errToken
	}
	h := tok.Headers[0]
	for _, k := range published {
		if k.ID == h.KeyID && string(k.Algorithm) == h.Algorithm {
			if err := tok.Claims(k.Public.Key, out); err != nil {
				return "", errToken
			}
			return k.ID, nil
		}
	}
	return "", errToken
}

// session is what /gate/auth needs of a verified session token.
type session struct {
	sub, room, kid string
	position       int64
	exp            time.Time
	// checked is when the store last said the session was live (or when
	// a check was last started); ended, that the store said it was over.
	checked time.Time
	ended   bool
	// headers are the values of X-Anteroom-Sub, -Room and -Position,
	// built once when the session is verified and shared by every answer
	// (net/http copies header values when it writes them; nothing else
	// writes to them), so a cached answer allocates none.
	headers *[3][]string
}

// sessionHeaders builds the header values /gate/auth answers s with.
func sessionHeaders(s session) *[3][]string {
	return &[3][]string{{s.sub}, {s.room}, {strconv.FormatInt(s.position, 10)}}
}

// sessionCache remembers verified session tokens until they expire, so the
// hot path of /gate/auth costs a map lookup and a hash, not a signature
// check. It is keyed by the token's SHA-256 (a token is ~1 KB) and
// bounded: when full, expired entries go first, then everything (a cache
// miss only costs one verification).
type sessionCache struct {
	mu      sync.RWMutex
	entries map[[32]byte]session
	limit   int
}

func newSessionCache(limit int) *sessionCache {
	return &sessionCache{entries: make(map[[32]byte]session), limit: limit}
}

// sessionKey is a token's key in the cache, computed once per request:
// hashing a ~1 KB token is the largest part of a cached answer.
func sessionKey(token string) [32]byte { return sha256.Sum256([]byte(token)) }

func (c *sessionCache) get(k [32]byte, now time.Time) (session, bool) {
	c.mu.RLock()
	s, ok := c.entries[k]
	c.mu.RUnlock()
	if !ok || !now.Before(s.exp) {
		return session{}, false
	}
	return s, true
}

// claimCheck reports whether the session of key k is due for a check in
// the store (its last one is every or more old) and, if so, marks it
// checked now: of the requests that find it due at once, one asks the
// store, the others are answered from memory meanwhile.
func (c *sessionCache) claimCheck(k [32]byte, now time.Time, every time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.entries[k]
	if !ok || now.Sub(s.checked) < every {
		return false
	}
	s.checked = now
	c.entries[k] = s
	return true
}

// end remembers that the session of key k was ended in the store.
func (c *sessionCache) end(k [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.entries[k]; ok {
		s.ended = true
		c.entries[k] = s
	}
}

func (c *sessionCache) put(k [32]byte, s session, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.limit {
		for k, v := range c.entries {
			if !now.Before(v.exp) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= c.limit {
			clear(c.entries)
		}
	}
	c.entries[k] = s
}
