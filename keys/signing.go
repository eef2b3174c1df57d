package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/redis/go-redis/v9"
)

// DefaultRedisKey is where the signing key record lives unless
// Options.RedisKey says otherwise.
const DefaultRedisKey = "anteroom:keys"

// DefaultRefreshEvery is how often Run re-reads the record unless
// Options.RefreshEvery says otherwise.
const DefaultRefreshEvery = time.Minute

// rsaBits is the RSA modulus size for new keys: the common floor that OIDC
// relying parties accept.
const rsaBits = 2048

// recordVersion is bumped only for changes old readers would misread;
// additions such as rotation windows are new fields, which readers ignore.
const recordVersion = 1

// maxCreateAttempts bounds the get-or-create loop, which only repeats when
// someone deletes the record while instances race to create it.
const maxCreateAttempts = 3

// Key is one signing key: its private half and the public JWK published in
// the JWKS.
type Key struct {
	ID        string                  // kid: RFC 7638 SHA-256 thumbprint, base64url without padding
	Algorithm jose.SignatureAlgorithm // RS256 or ES256
	Private   crypto.Signer           // *rsa.PrivateKey or *ecdsa.PrivateKey
	Public    jose.JSONWebKey         // Use "sig", Algorithm and KeyID set
	Created   time.Time
}

// Options configures a Manager; the zero value is usable.
type Options struct {
	// Algorithm is used when this instance creates the key set: jose.RS256
	// (the default, which every OIDC relying party must support) or
	// jose.ES256. Anything else is an error.
	Algorithm jose.SignatureAlgorithm
	// RedisKey is where the record lives; default DefaultRedisKey.
	RedisKey string
	// Now stamps new keys; default time.Now.
	Now func() time.Time
	// RefreshEvery is Run's period; default DefaultRefreshEvery.
	RefreshEvery time.Duration
	// Logger receives Run's failures and warnings; default slog.Default().
	Logger *slog.Logger
}

// record is the JSON stored at the Redis key. Keys[0] is the key to sign
// with; the others are published for verification only. Readers ignore
// fields they do not know, so rotation can add fields (not_before,
// not_after) and keys without a version bump, provided the writer keeps the
// key that should sign now in first place for readers that predate it.
type record struct {
	Version int         `json:"version"`
	Keys    []recordKey `json:"keys"`
}

type recordKey struct {
	KID     string    `json:"kid"`
	Alg     string    `json:"alg"`
	Created time.Time `json:"created"`
	// Private is the private JWK sealed by the Box with the kid as
	// additional data, base64url: a Redis dump alone does not leak it, and a
	// sealed key cannot be passed off under another kid.
	Private string `json:"private"`
}

// keySet is one decoded record; raw lets Refresh skip unchanged records and
// put the record back verbatim if Redis loses it.
type keySet struct {
	raw  string
	keys []Key
}

// Manager keeps the key set that every instance shares: the first instance
// to start creates it in Redis, every other one reads it, so all sign with
// the same key and serve the same JWKS.
type Manager struct {
	rdb  redis.UniversalClient
	box  *Box
	opts Options
	log  *slog.Logger

	current   atomic.Pointer[keySet]
	refreshMu sync.Mutex // one Refresh at a time, so an older read never replaces a newer one

	// afterRefresh, when set by a test, is called after each refresh in Run.
	afterRefresh func(error)
}

// NewManager loads the shared key set from Redis, creating it with a fresh
// key of opts.Algorithm if no instance has yet. Creation is race-free: every
// instance that finds no record generates a key and offers it with SET NX,
// and the losers adopt the winner's.
//
// If the stored set was created with another algorithm than
// opts.Algorithm, the stored one is used and a warning logged: changing the
// algorithm of a running deployment needs key rotation, which this version
// does not do.
//
// It fails if the stored private keys cannot be opened by box, which means
// the configured secrets are not the ones that sealed them.
func NewManager(ctx context.Context, rdb redis.UniversalClient, box *Box, opts Options) (*Manager, error) {
	if rdb == nil {
		return nil, errors.New("new key manager: nil redis client")
	}
	if box == nil {
		return nil, errors.New("new key manager: nil box")
	}
	switch opts.Algorithm {
	case "":
		opts.Algorithm = jose.RS256
	case jose.RS256, jose.ES256:
	default:
		return nil, fmt.Errorf("new key manager: unsupported signing algorithm %q (want %s or %s)", opts.Algorithm, jose.RS256, jose.ES256)
	}
	if opts.RedisKey == "" {
		opts.RedisKey = DefaultRedisKey
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RefreshEvery <= 0 {
		opts.RefreshEvery = DefaultRefreshEvery
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	m := &Manager{rdb: rdb, box: box, opts: opts, log: opts.Logger}

	set, err := m.getOrCreate(ctx)
	if err != nil {
		return nil, fmt.Errorf("new key manager: %w", err)
	}
	m.current.Store(set)
	if k := set.keys[0]; k.Algorithm != opts.Algorithm {
		m.log.Warn("signing key algorithm differs from configuration; using the stored key until rotation is supported",
			"kid", k.ID, "stored", k.Algorithm, "configured", opts.Algorithm, "redis_key", opts.RedisKey)
	}
	return m, nil
}

// getOrCreate reads the record, or creates it if there is none.
func (m *Manager) getOrCreate(ctx context.Context) (*keySet, error) {
	for range maxCreateAttempts {
		raw, err := m.rdb.Get(ctx, m.opts.RedisKey).Result()
		if err == nil {
			return m.decode(raw)
		}
		if !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("read %s: %w", m.opts.RedisKey, err)
		}
		set, err := m.generate()
		if err != nil {
			return nil, err
		}
		won, err := m.rdb.SetNX(ctx, m.opts.RedisKey, set.raw, 0).Result()
		if err != nil {
			return nil, fmt.Errorf("create %s: %w", m.opts.RedisKey, err)
		}
		if won {
			m.log.Info("created signing key", "kid", set.keys[0].ID, "alg", set.keys[0].Algorithm, "redis_key", m.opts.RedisKey)
			return set, nil
		}
		// Another instance created it first: loop to read and adopt theirs.
	}
	return nil, fmt.Errorf("create %s: record keeps disappearing", m.opts.RedisKey)
}

// generate makes a new one-key set, sealed and serialized for Redis.
func (m *Manager) generate() (*keySet, error) {
	var priv crypto.Signer
	var err error
	switch m.opts.Algorithm {
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		priv, err = rsa.GenerateKey(rand.Reader, rsaBits)
	}
	if err != nil {
		return nil, fmt.Errorf("generate %s key: %w", m.opts.Algorithm, err)
	}
	key, err := newKey(priv, m.opts.Algorithm, m.opts.Now().UTC().Round(0))
	if err != nil {
		return nil, err
	}
	private, err := jose.JSONWebKey{Key: priv, KeyID: key.ID, Algorithm: string(key.Algorithm), Use: "sig"}.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("encode signing key %s: %w", key.ID, err)
	}
	rec := record{Version: recordVersion, Keys: []recordKey{{
		KID:     key.ID,
		Alg:     string(key.Algorithm),
		Created: key.Created,
		Private: base64.RawURLEncoding.EncodeToString(m.box.Seal(private, []byte(key.ID))),
	}}}
	raw, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encode key record: %w", err)
	}
	return &keySet{raw: string(raw), keys: []Key{key}}, nil
}

// newKey checks that priv suits alg and fills in the derived fields.
func newKey(priv crypto.Signer, alg jose.SignatureAlgorithm, created time.Time) (Key, error) {
	switch k := priv.(type) {
	case *rsa.PrivateKey:
		if alg != jose.RS256 {
			return Key{}, fmt.Errorf("%s key is RSA", alg)
		}
		if bits := k.N.BitLen(); bits < rsaBits {
			return Key{}, fmt.Errorf("RSA key is %d bits, want at least %d", bits, rsaBits)
		}
		// A key decoded from its JWK carries the CRT values but not the
		// precomputation crypto/rsa caches beside them; without it every
		// signature would redo that work (about a sixth of its cost).
		k.Precompute()
	case *ecdsa.PrivateKey:
		if alg != jose.ES256 || k.Curve != elliptic.P256() {
			return Key{}, fmt.Errorf("%s key is ECDSA on %s", alg, k.Curve.Params().Name)
		}
	default:
		return Key{}, fmt.Errorf("unsupported key type %T for %s", priv, alg)
	}
	pub := jose.JSONWebKey{Key: priv.Public(), Algorithm: string(alg), Use: "sig"}
	thumb, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return Key{}, fmt.Errorf("thumbprint: %w", err)
	}
	pub.KeyID = base64.RawURLEncoding.EncodeToString(thumb)
	return Key{ID: pub.KeyID, Algorithm: alg, Private: priv, Public: pub, Created: created}, nil
}

// decode parses a record and opens its private keys.
func (m *Manager) decode(raw string) (*keySet, error) {
	var rec record
	if err := json.Unmarshal([]byte(raw), &rec); err != nil {
		return nil, fmt.Errorf("decode %s: %w", m.opts.RedisKey, err)
	}
	if rec.Version != recordVersion {
		return nil, fmt.Errorf("decode %s: record version %d, this build reads version %d", m.opts.RedisKey, rec.Version, recordVersion)
	}
	if len(rec.Keys) == 0 {
		return nil, fmt.Errorf("decode %s: record has no keys", m.opts.RedisKey)
	}
	set := &keySet{raw: raw, keys: make([]Key, 0, len(rec.Keys))}
	for _, rk := range rec.Keys {
		key, err := m.open(rk)
		if err != nil {
			return nil, err
		}
		set.keys = append(set.keys, key)
	}
	return set, nil
}

// open unseals one stored key and checks it is the key its kid names.
func (m *Manager) open(rk recordKey) (Key, error) {
	sealed, err := base64.RawURLEncoding.DecodeString(rk.Private)
	if err != nil {
		return Key{}, fmt.Errorf("open signing key %s: decode base64: %w", rk.KID, err)
	}
	plain, err := m.box.Open(sealed, []byte(rk.KID))
	if err != nil {
		return Key{}, fmt.Errorf("open signing key %s: cookie_keys do not match the ones that sealed it: %w", rk.KID, err)
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(plain); err != nil {
		return Key{}, fmt.Errorf("open signing key %s: decode JWK: %w", rk.KID, err)
	}
	priv, ok := jwk.Key.(crypto.Signer)
	if !ok || jwk.IsPublic() {
		return Key{}, fmt.Errorf("open signing key %s: sealed JWK holds %T, not a private key", rk.KID, jwk.Key)
	}
	key, err := newKey(priv, jose.SignatureAlgorithm(rk.Alg), rk.Created)
	if err != nil {
		return Key{}, fmt.Errorf("open signing key %s: %w", rk.KID, err)
	}
	if key.ID != rk.KID {
		return Key{}, fmt.Errorf("open signing key %s: key's thumbprint is %s", rk.KID, key.ID)
	}
	return key, nil
}

// Signing returns the key to sign with now. It reads memory only, so it is
// safe on every request path.
func (m *Manager) Signing() Key {
	return m.current.Load().keys[0]
}

// Verification returns every published key, signing key first, for the
// JWKS and for verifying tokens this deployment issued. The slice is the
// caller's.
func (m *Manager) Verification() []Key {
	return slices.Clone(m.current.Load().keys)
}

// Published reports whether the key kid is in the set, without copying it:
// a cache of tokens asks on every hit, so that retiring a key retires what
// it signed.
func (m *Manager) Published(kid string) bool {
	for _, k := range m.current.Load().keys {
		if k.ID == kid {
			return true
		}
	}
	return false
}

// JWKS returns the public halves of every published key.
func (m *Manager) JWKS() jose.JSONWebKeySet {
	keys := m.current.Load().keys
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, len(keys))}
	for i, k := range keys {
		set.Keys[i] = k.Public
	}
	return set
}

// Refresh re-reads the record from Redis so this instance follows changes
// made by others. On error the current set stays in use. If the record is
// gone (Redis lost its data), Refresh puts back the set this instance holds
// rather than creating a key, so instances converge on keys that tokens in
// flight were signed with.
func (m *Manager) Refresh(ctx context.Context) error {
	m.refreshMu.Lock()
	defer m.refreshMu.Unlock()
	cur := m.current.Load()
	raw, err := m.rdb.Get(ctx, m.opts.RedisKey).Result()
	if errors.Is(err, redis.Nil) {
		won, setErr := m.rdb.SetNX(ctx, m.opts.RedisKey, cur.raw, 0).Result()
		if setErr != nil {
			return fmt.Errorf("refresh keys: restore missing %s: %w", m.opts.RedisKey, setErr)
		}
		if won {
			m.log.Warn("signing key record was missing from Redis; restored it", "redis_key", m.opts.RedisKey, "kid", cur.keys[0].ID)
			return nil
		}
		raw, err = m.rdb.Get(ctx, m.opts.RedisKey).Result()
	}
	if err != nil {
		return fmt.Errorf("refresh keys: read %s: %w", m.opts.RedisKey, err)
	}
	if raw == cur.raw {
		return nil
	}
	set, err := m.decode(raw)
	if err != nil {
		return fmt.Errorf("refresh keys: %w", err)
	}
	m.current.Store(set)
	if set.keys[0].ID != cur.keys[0].ID {
		m.log.Info("signing key changed", "kid", set.keys[0].ID, "previous", cur.keys[0].ID)
	}
	return nil
}

// Run refreshes every RefreshEvery until ctx is done. Failures are logged
// and the last good set stays in use, so a Redis outage does not stop
// signing.
func (m *Manager) Run(ctx context.Context) {
	ticker := time.NewTicker(m.opts.RefreshEvery)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		err := m.Refresh(ctx)
		if err != nil && ctx.Err() == nil {
			m.log.Error("refresh signing keys failed; keeping the current set", "err", err, "kid", m.Signing().ID)
		}
		if m.afterRefresh != nil {
			m.afterRefresh(err)
		}
	}
}
