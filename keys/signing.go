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

	"github.com/anteroom/anteroom/internal/rediskey"
)

// DefaultRedisKey is where the signing key record lives unless
// Options.RedisKey says otherwise.
const DefaultRedisKey = rediskey.SigningKeys

// DefaultRefreshEvery is how often Run re-reads the record unless
// Options.RefreshEvery says otherwise.
const DefaultRefreshEvery = time.Minute

// DefaultPublishAhead is how long a new key is in the JWKS before it signs,
// unless Options.PublishAhead says otherwise: above the hour for which
// relying parties commonly cache a JWKS (mod_auth_openidc's default), and
// twice CacheMaxAge's hour.
const DefaultPublishAhead = 2 * time.Hour

// DefaultRetain is how long a key stays published after a newer key has
// taken over, unless Options.Retain says otherwise. A day outlives every
// token of a default configuration; the wiring derives the real value from
// the rooms' session lengths.
const DefaultRetain = 24 * time.Hour

// ClockSkew is the margin that callers deriving Options.Retain add to the
// longest life of a token: for instances and relying parties whose clocks
// disagree by up to this much, and for instances of a version that signs
// with the record's first key, which follow a switch only at their next
// refresh.
const ClockSkew = 5 * time.Minute

// MaxCacheAge caps CacheMaxAge: a JWKS cached for an hour at most still
// lets an operator pull a compromised key from every cache within the hour.
const MaxCacheAge = time.Hour

// rsaBits is the RSA modulus size for new keys: the common floor that OIDC
// relying parties accept.
const rsaBits = 2048

// recordVersion is bumped only for changes old readers would misread;
// additions such as rotation windows are new fields, which readers ignore.
const recordVersion = 1

// maxCreateAttempts bounds the get-or-create loop, which only repeats when
// someone deletes the record while instances race to create it.
const maxCreateAttempts = 3

// maxWriteAttempts bounds the compare-and-set loop of a change: it repeats
// only when another instance changed the record in between, and then the
// change is usually no longer due.
const maxWriteAttempts = 3

// Key is one signing key: its private half, the public JWK published in the
// JWKS, and its window.
type Key struct {
	ID        string                  // kid: RFC 7638 SHA-256 thumbprint, base64url without padding
	Algorithm jose.SignatureAlgorithm // RS256 or ES256
	Private   crypto.Signer           // *rsa.PrivateKey or *ecdsa.PrivateKey
	Public    jose.JSONWebKey         // Use "sig", Algorithm and KeyID set
	Created   time.Time
	// NotBefore is when the key starts signing; it is published from the
	// moment it is in the record, PublishAhead earlier. Zero only in a
	// record written before rotation existed.
	NotBefore time.Time
	// NotAfter is when the key leaves the JWKS: Retain after a newer key
	// took over from it. Zero while no newer key is scheduled.
	NotAfter time.Time
}

// live reports whether k is still published at now.
func (k Key) live(now time.Time) bool { return k.NotAfter.IsZero() || now.Before(k.NotAfter) }

// Options configures a Manager; the zero value is usable and never rotates.
type Options struct {
	// Algorithm is what this instance signs with: jose.RS256 (the default,
	// which every OIDC relying party must support) or jose.ES256. Anything
	// else is an error. A record whose newest key has another algorithm
	// gets a new key of this one, PublishAhead before it signs.
	Algorithm jose.SignatureAlgorithm
	// RotateEvery is how long each key signs before the next takes over;
	// 0 never rotates on a schedule.
	RotateEvery time.Duration
	// PublishAhead is how long a new key is in the JWKS before it signs, so
	// that every instance and every relying party's JWKS cache has it by
	// then; default DefaultPublishAhead. It must be shorter than
	// RotateEvery.
	PublishAhead time.Duration
	// Retain is how long a key stays in the JWKS after a newer key took
	// over from it: the longest life of anything it signed, plus ClockSkew;
	// default DefaultRetain. Instances with different values extend a
	// key's stay to the longest, never shorten it.
	Retain time.Duration
	// RedisKey is where the record lives; default DefaultRedisKey.
	RedisKey string
	// Now is the clock that stamps new keys and decides which key signs
	// and which are published; default time.Now.
	Now func() time.Time
	// RefreshEvery is Run's period; default DefaultRefreshEvery.
	RefreshEvery time.Duration
	// Logger receives rotations, Run's failures and warnings; default
	// slog.Default().
	Logger *slog.Logger
}

// record is the JSON stored at the Redis key. Each key has a window: it
// signs from not_before until a newer key's not_before, and is published
// until not_after. The writer puts the key that signs at the time of
// writing first, for readers that predate windows (they sign with the
// first key and publish all). A record without windows, from before
// rotation, signs with its first key.
type record struct {
	Version int         `json:"version"`
	Keys    []recordKey `json:"keys"`
}

type recordKey struct {
	KID       string    `json:"kid"`
	Alg       string    `json:"alg"`
	Created   time.Time `json:"created"`
	NotBefore time.Time `json:"not_before,omitzero"`
	NotAfter  time.Time `json:"not_after,omitzero"`
	// Private is the private JWK sealed by the Box with the kid as
	// additional data, base64url: a Redis dump alone does not leak it, and a
	// sealed key cannot be passed off under another kid.
	Private string `json:"private"`
}

// keySet is one decoded record; raw lets Refresh skip unchanged records,
// compare-and-set against them, and put the record back verbatim if Redis
// loses it.
type keySet struct {
	raw  string
	keys []Key
	// stale: some private key was sealed under a secret that is no longer
	// the first, so the record must be sealed again before the operator
	// drops that secret.
	stale bool
}

// signer returns the index of the key that signs at now: of the published
// keys whose not_before has come, the one with the latest; a tie goes to
// the earlier in the record, so a record without windows signs with its
// first key. When none has started (this instance's clock is behind the
// one that created the record), the earliest signs.
func (s *keySet) signer(now time.Time) int {
	best := -1
	for i, k := range s.keys {
		if k.live(now) && !k.NotBefore.After(now) && (best < 0 || k.NotBefore.After(s.keys[best].NotBefore)) {
			best = i
		}
	}
	if best >= 0 {
		return best
	}
	for i, k := range s.keys {
		if k.live(now) && (best < 0 || k.NotBefore.Before(s.keys[best].NotBefore)) {
			best = i
		}
	}
	return max(best, 0) // decode guarantees a live newest key; 0 is unreachable
}

// newest returns the index of the key with the latest not_before (the
// first of a tie): the one the next rotation follows.
func (s *keySet) newest() int {
	best := 0
	for i, k := range s.keys {
		if k.NotBefore.After(s.keys[best].NotBefore) {
			best = i
		}
	}
	return best
}

// successor returns when the first key newer than keys[i] starts signing,
// which is when keys[i] stops.
func successor(keys []Key, i int) (time.Time, bool) {
	var next time.Time
	for _, k := range keys {
		if k.NotBefore.After(keys[i].NotBefore) && (next.IsZero() || k.NotBefore.Before(next)) {
			next = k.NotBefore
		}
	}
	return next, !next.IsZero()
}

// published returns the keys published at now, the signing key first.
func (s *keySet) published(now time.Time) []Key {
	sig := s.signer(now)
	out := make([]Key, 0, len(s.keys))
	out = append(out, s.keys[sig])
	for i, k := range s.keys {
		if i != sig && k.live(now) {
			out = append(out, k)
		}
	}
	return out
}

// Manager keeps the key set that every instance shares: the first instance
// to start creates it in Redis, every other one reads it, so all sign with
// the same key and serve the same JWKS. Whichever instance first sees that
// a change is due (a rotation, a key to retire, a record to seal again)
// makes it, with a compare-and-set on the record, and the others follow at
// their next refresh. Which key signs is decided from each key's window by
// each instance's own clock, so instances switch together without talking
// to each other.
type Manager struct {
	rdb  redis.UniversalClient
	box  *Box
	opts Options
	log  *slog.Logger

	current   atomic.Pointer[keySet]
	refreshMu sync.Mutex // one Refresh at a time, so an older read never replaces a newer one
	counts    changeCounts
	// retired are the kids this instance retired (Retire): should one come
	// back in the record (Redis lost the retirement, and an instance that
	// had not followed put back the record it held), Refresh retires it
	// again. Guarded by refreshMu.
	retired map[string]bool

	// afterRefresh, when set by a test, is called after each refresh in Run.
	afterRefresh func(error)
	// beforeWrite, when set by a test, is called between planning a change
	// and writing it, so a test can make instances race for the record.
	beforeWrite func()
}

// NewManager loads the shared key set from Redis, creating it with a fresh
// key of opts.Algorithm if no instance has yet, then makes any change that
// is due (see Refresh). Creation is race-free: every instance that finds
// no record generates a key and offers it with SET NX, and the losers
// adopt the winner's.
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
	if opts.PublishAhead <= 0 {
		opts.PublishAhead = DefaultPublishAhead
	}
	if opts.Retain <= 0 {
		opts.Retain = DefaultRetain
	}
	switch {
	case opts.RotateEvery < 0:
		return nil, fmt.Errorf("new key manager: negative rotation period %s", opts.RotateEvery)
	case opts.RotateEvery > 0 && opts.PublishAhead >= opts.RotateEvery:
		return nil, fmt.Errorf("new key manager: publish ahead %s must be shorter than the rotation period %s", opts.PublishAhead, opts.RotateEvery)
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
	if err := m.maintain(ctx, set); err != nil {
		return nil, fmt.Errorf("new key manager: %w", err)
	}
	return m, nil
}

// now reads the clock without its monotonic reading, so times compare and
// serialize alike.
func (m *Manager) now() time.Time { return m.opts.Now().UTC().Round(0) }

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
		now := m.now()
		key, err := m.generate(now, now)
		if err != nil {
			return nil, err
		}
		set, err := m.encode([]Key{key})
		if err != nil {
			return nil, err
		}
		won, err := m.rdb.SetNX(ctx, m.opts.RedisKey, set.raw, 0).Result()
		if err != nil {
			return nil, fmt.Errorf("create %s: %w", m.opts.RedisKey, err)
		}
		if won {
			m.counts.add("created")
			m.log.Info("created signing key", "kid", key.ID, "alg", key.Algorithm, "redis_key", m.opts.RedisKey)
			return set, nil
		}
		// Another instance created it first: loop to read and adopt theirs.
	}
	return nil, fmt.Errorf("create %s: record keeps disappearing", m.opts.RedisKey)
}

// generate makes a new key of the configured algorithm that signs from
// notBefore.
func (m *Manager) generate(created, notBefore time.Time) (Key, error) {
	var priv crypto.Signer
	var err error
	switch m.opts.Algorithm {
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		priv, err = rsa.GenerateKey(rand.Reader, rsaBits)
	}
	if err != nil {
		return Key{}, fmt.Errorf("generate %s key: %w", m.opts.Algorithm, err)
	}
	key, err := newKey(priv, m.opts.Algorithm, created)
	if err != nil {
		return Key{}, err
	}
	key.NotBefore = notBefore
	return key, nil
}

// encode seals every key under the box's first secret and serializes the
// record, keys in the given order.
func (m *Manager) encode(keys []Key) (*keySet, error) {
	rec := record{Version: recordVersion, Keys: make([]recordKey, len(keys))}
	for i, k := range keys {
		private, err := jose.JSONWebKey{Key: k.Private, KeyID: k.ID, Algorithm: string(k.Algorithm), Use: "sig"}.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("encode signing key %s: %w", k.ID, err)
		}
		rec.Keys[i] = recordKey{
			KID: k.ID, Alg: string(k.Algorithm), Created: k.Created, NotBefore: k.NotBefore, NotAfter: k.NotAfter,
			Private: base64.RawURLEncoding.EncodeToString(m.box.Seal(private, []byte(k.ID))),
		}
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encode key record: %w", err)
	}
	return &keySet{raw: string(raw), keys: keys}, nil
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
		key, stale, err := m.open(rk)
		if err != nil {
			return nil, err
		}
		if !rk.NotAfter.IsZero() && !rk.NotAfter.After(rk.NotBefore) {
			return nil, fmt.Errorf("decode %s: key %s leaves the JWKS (%s) before it starts signing (%s)",
				m.opts.RedisKey, rk.KID, rk.NotAfter.Format(time.RFC3339), rk.NotBefore.Format(time.RFC3339))
		}
		key.NotBefore, key.NotAfter = rk.NotBefore.UTC(), rk.NotAfter.UTC()
		set.keys = append(set.keys, key)
		set.stale = set.stale || stale
	}
	// The newest key signs until a newer one exists; one that retires
	// would leave nothing to sign with.
	if n := set.keys[set.newest()]; !n.NotAfter.IsZero() {
		return nil, fmt.Errorf("decode %s: newest key %s has not_after %s, so nothing would sign after it",
			m.opts.RedisKey, n.ID, n.NotAfter.Format(time.RFC3339))
	}
	return set, nil
}

// open unseals one stored key and checks it is the key its kid names; stale
// reports that it was sealed under a secret that is no longer the first.
func (m *Manager) open(rk recordKey) (Key, bool, error) {
	sealed, err := base64.RawURLEncoding.DecodeString(rk.Private)
	if err != nil {
		return Key{}, false, fmt.Errorf("open signing key %s: decode base64: %w", rk.KID, err)
	}
	plain, stale, err := m.box.OpenStale(sealed, []byte(rk.KID))
	if err != nil {
		return Key{}, false, fmt.Errorf("open signing key %s: cookie_keys do not match the ones that sealed it "+
			"(list the previous cookie key second until every instance has run with both): %w", rk.KID, err)
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(plain); err != nil {
		return Key{}, false, fmt.Errorf("open signing key %s: decode JWK: %w", rk.KID, err)
	}
	priv, ok := jwk.Key.(crypto.Signer)
	if !ok || jwk.IsPublic() {
		return Key{}, false, fmt.Errorf("open signing key %s: sealed JWK holds %T, not a private key", rk.KID, jwk.Key)
	}
	key, err := newKey(priv, jose.SignatureAlgorithm(rk.Alg), rk.Created)
	if err != nil {
		return Key{}, false, fmt.Errorf("open signing key %s: %w", rk.KID, err)
	}
	if key.ID != rk.KID {
		return Key{}, false, fmt.Errorf("open signing key %s: key's thumbprint is %s", rk.KID, key.ID)
	}
	return key, stale, nil
}

// Signing returns the key to sign with now: the newest key whose
// not_before has come by this instance's clock. It reads memory only, so
// it is safe on every request path.
func (m *Manager) Signing() Key {
	set := m.current.Load()
	if len(set.keys) == 1 { // most of the time: no clock to read
		return set.keys[0]
	}
	return set.keys[set.signer(m.now())]
}

// Verification returns every published key, signing key first, for the
// JWKS and for verifying tokens this deployment issued: the key signing
// now, keys scheduled to sign next, and keys that stopped signing less than
// Retain ago. The slice is the caller's.
func (m *Manager) Verification() []Key {
	return m.current.Load().published(m.now())
}

// Published reports whether the key kid is published now, without copying
// the set: a cache of tokens asks on every hit, so that retiring a key
// retires what it signed.
func (m *Manager) Published(kid string) bool {
	for _, k := range m.current.Load().keys {
		if k.ID == kid {
			// Only a retiring key needs the clock.
			return k.NotAfter.IsZero() || k.live(m.now())
		}
	}
	return false
}

// KeyState is what a published key does now.
type KeyState string

// The states of a published key, as metrics and the admin API name them.
const (
	StateSigning  KeyState = "signing"  // signs now
	StateNext     KeyState = "next"     // published ahead; signs from its NotBefore
	StateRetiring KeyState = "retiring" // stopped signing; published until what it signed has expired
)

// PublishedKey is a published key and what it does now.
type PublishedKey struct {
	Key
	State KeyState
}

// Status returns every published key with its state, signing key first,
// for operators: metrics and the admin API.
func (m *Manager) Status() []PublishedKey {
	now := m.now()
	keys := m.current.Load().published(now)
	out := make([]PublishedKey, len(keys))
	for i, k := range keys {
		out[i] = PublishedKey{Key: k, State: StateRetiring}
		switch {
		case i == 0: // published puts the signing key first
			out[i].State = StateSigning
		case k.NotBefore.After(now):
			out[i].State = StateNext
		}
	}
	return out
}

// JWKS returns the public halves of every published key.
func (m *Manager) JWKS() jose.JSONWebKeySet {
	keys := m.Verification()
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, len(keys))}
	for i, k := range keys {
		set.Keys[i] = k.Public
	}
	return set
}

// Algorithms returns the algorithms of the published keys, the signing
// key's first, for discovery's id_token_signing_alg_values_supported: a
// relying party that checks a token's alg against it accepts a key
// scheduled with a new algorithm from the moment the key is published.
// RS256 is always listed, as OpenID Connect Discovery 1.0 requires.
func (m *Manager) Algorithms() []jose.SignatureAlgorithm {
	var out []jose.SignatureAlgorithm
	for _, k := range m.Verification() {
		if !slices.Contains(out, k.Algorithm) {
			out = append(out, k.Algorithm)
		}
	}
	if !slices.Contains(out, jose.RS256) {
		out = append(out, jose.RS256)
	}
	return out
}

// CacheMaxAge is how long a client may cache the JWKS: half of
// PublishAhead, so a scheduled key reaches every cache well before it
// signs, and at most MaxCacheAge.
func (m *Manager) CacheMaxAge() time.Duration {
	return min(m.opts.PublishAhead/2, MaxCacheAge)
}

// Refresh re-reads the record from Redis so this instance follows changes
// made by others, then makes any change that has come due, with a
// compare-and-set so that of several instances doing so at once exactly
// one succeeds and the others adopt its record:
//
//   - a new key when the newest one has signed for RotateEvery less
//     PublishAhead (or has another algorithm than configured), which
//     starts signing PublishAhead later;
//   - not_after for keys a newer one has taken over from, Retain after
//     it did; keys past it are removed;
//   - the key that signs now moved first, for readers that predate
//     windows;
//   - every private key sealed again under the first cookie key, when
//     one was sealed under another.
//
// On error the current set stays in use. If the record is gone (Redis lost
// its data), Refresh puts back the set this instance holds rather than
// creating a key, so instances converge on keys that tokens in flight were
// signed with.
func (m *Manager) Refresh(ctx context.Context) error {
	m.refreshMu.Lock()
	defer m.refreshMu.Unlock()
	set, err := m.load(ctx)
	if err != nil {
		return fmt.Errorf("refresh keys: %w", err)
	}
	for _, k := range set.keys {
		if !m.retired[k.ID] {
			continue
		}
		m.log.Warn("a retired signing key is back in the record (Redis lost its retirement); retiring it again",
			"kid", k.ID, "redis_key", m.opts.RedisKey)
		err := m.write(ctx, set, func(set *keySet, now time.Time) (*keySet, []change, error) {
			return m.planRetire(set, k.ID, now)
		})
		if err != nil && !errors.Is(err, ErrUnknownKey) {
			return fmt.Errorf("refresh keys: retire %s again: %w", k.ID, err)
		}
		set = m.current.Load()
	}
	if err := m.maintain(ctx, set); err != nil {
		return fmt.Errorf("refresh keys: %w", err)
	}
	return nil
}

// load reads the record and adopts it if it changed, putting back the set
// in use if the record is missing. The caller holds refreshMu.
func (m *Manager) load(ctx context.Context) (*keySet, error) {
	cur := m.current.Load()
	raw, err := m.rdb.Get(ctx, m.opts.RedisKey).Result()
	if errors.Is(err, redis.Nil) {
		won, setErr := m.rdb.SetNX(ctx, m.opts.RedisKey, cur.raw, 0).Result()
		if setErr != nil {
			return nil, fmt.Errorf("restore missing %s: %w", m.opts.RedisKey, setErr)
		}
		if won {
			m.log.Warn("signing key record was missing from Redis; restored it", "redis_key", m.opts.RedisKey, "kid", m.Signing().ID)
			raw, err = cur.raw, nil
		} else {
			raw, err = m.rdb.Get(ctx, m.opts.RedisKey).Result()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", m.opts.RedisKey, err)
	}
	if raw == cur.raw {
		return cur, nil
	}
	set, err := m.decode(raw)
	if err != nil {
		return nil, err
	}
	m.adopt(set)
	return set, nil
}

// adopt makes set the one in use and logs how the published keys changed.
func (m *Manager) adopt(set *keySet) {
	prev := m.current.Swap(set)
	if prev == nil {
		return
	}
	kids := func(s *keySet) []string {
		out := make([]string, len(s.keys))
		for i, k := range s.keys {
			out[i] = k.ID
		}
		slices.Sort(out)
		return out
	}
	if before, after := kids(prev), kids(set); !slices.Equal(before, after) {
		m.log.Info("signing keys changed", "keys", after, "previous", before, "signing", set.keys[set.signer(m.now())].ID)
	}
}

// maintain makes the changes that are due on set, retrying on a record
// that another instance changed meanwhile.
func (m *Manager) maintain(ctx context.Context, set *keySet) error {
	return m.write(ctx, set, m.plan)
}

// write replaces the record set with what plan makes of it (nothing when
// plan returns nil), with a compare-and-set. When another instance changed
// the record in between, it adopts theirs and plans again from it: a
// change is only ever made to the record it was planned on, so no
// instance writes back a key that another removed.
func (m *Manager) write(ctx context.Context, set *keySet, plan func(*keySet, time.Time) (*keySet, []change, error)) error {
	for attempt := 1; ; attempt++ {
		next, changes, err := plan(set, m.now())
		if err != nil || next == nil {
			return err
		}
		if m.beforeWrite != nil {
			m.beforeWrite()
		}
		won, err := casScript.Run(ctx, m.rdb, []string{m.opts.RedisKey}, set.raw, next.raw).Bool()
		if err != nil {
			return fmt.Errorf("write %s: %w", m.opts.RedisKey, err)
		}
		if won {
			m.current.Store(next)
			m.report(changes)
			return nil
		}
		if attempt == maxWriteAttempts {
			return fmt.Errorf("write %s: changed by other instances %d times in a row; will try again", m.opts.RedisKey, attempt)
		}
		// Another instance wrote first: adopt its record and see whether
		// anything is still due.
		raw, err := m.rdb.Get(ctx, m.opts.RedisKey).Result()
		if err != nil {
			return fmt.Errorf("read %s: %w", m.opts.RedisKey, err)
		}
		if set, err = m.decode(raw); err != nil {
			return err
		}
		m.adopt(set)
	}
}

// casScript replaces the record only if it is still the one the change was
// planned on. One key, so it runs on Redis Cluster as anywhere.
// KEYS: record. ARGV: expected record, new record.
var casScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
`)

// change is one thing a write did, for logs and metrics.
type change struct {
	kind string // scheduled, retired, resealed, upgraded, revoked
	key  Key
	// signing is, for revoked, the key that signs after it.
	signing string
}

// report logs and counts the changes this instance wrote.
func (m *Manager) report(changes []change) {
	for _, c := range changes {
		m.counts.add(c.kind)
		switch c.kind {
		case "scheduled":
			m.log.Info("scheduled signing key", "kid", c.key.ID, "alg", c.key.Algorithm,
				"not_before", c.key.NotBefore, "redis_key", m.opts.RedisKey)
		case "retired":
			m.log.Info("retired signing key", "kid", c.key.ID, "alg", c.key.Algorithm,
				"not_after", c.key.NotAfter, "redis_key", m.opts.RedisKey)
		case "resealed":
			m.log.Info("sealed signing keys again under the first cookie key", "redis_key", m.opts.RedisKey)
		case "upgraded":
			m.log.Info("gave signing keys rotation windows", "signing", c.key.ID, "redis_key", m.opts.RedisKey)
		case "revoked":
			m.log.Warn("revoked signing key: removed from the JWKS at once", "kid", c.key.ID, "alg", c.key.Algorithm,
				"signing", c.signing, "redis_key", m.opts.RedisKey)
		}
	}
}

// plan returns the record set should become at now, with what changed, or
// nil when nothing is due. It is pure: the same set and time give the
// same plan on every instance (bar the new key's random material), which
// is what keeps instances from undoing each other's writes.
func (m *Manager) plan(set *keySet, now time.Time) (*keySet, []change, error) {
	keys := slices.Clone(set.keys)
	var changes []change
	dirty := set.stale
	if set.stale {
		changes = append(changes, change{kind: "resealed"})
	}

	// A record from before rotation: its first key has signed since it was
	// created; the others were only published, and are retired like keys
	// a newer one took over from just now.
	if slices.ContainsFunc(keys, func(k Key) bool { return k.NotBefore.IsZero() }) {
		if keys[0].NotBefore.IsZero() {
			keys[0].NotBefore = keys[0].Created
			if keys[0].NotBefore.IsZero() {
				keys[0].NotBefore = now
			}
		}
		for i := 1; i < len(keys); i++ {
			if keys[i].NotBefore.IsZero() {
				keys[i].NotBefore = keys[0].NotBefore
				if keys[i].NotAfter.IsZero() {
					keys[i].NotAfter = now.Add(m.opts.Retain)
				}
			}
		}
		dirty = true
		changes = append(changes, change{kind: "upgraded", key: keys[0]})
	}

	if notBefore, due := m.due(keys, now); due {
		key, err := m.generate(now, notBefore)
		if err != nil {
			return nil, nil, err
		}
		keys = append(keys, key)
		dirty = true
		changes = append(changes, change{kind: "scheduled", key: key})
	}

	// A key stays published for Retain after a newer one takes over. Only
	// ever extended, so the instance whose tokens live longest decides.
	for i := range keys {
		if next, ok := successor(keys, i); ok {
			if want := next.Add(m.opts.Retain); keys[i].NotAfter.Before(want) {
				keys[i].NotAfter = want
				dirty = true
			}
		}
	}

	kept := keys[:0:0]
	for _, k := range keys {
		if k.live(now) {
			kept = append(kept, k)
			continue
		}
		dirty = true
		changes = append(changes, change{kind: "retired", key: k})
	}

	// The key that signs now goes first, for readers that predate windows;
	// never back to an older key, so instances whose clocks straddle a
	// switch do not take turns reordering.
	s := &keySet{keys: kept}
	if i := s.signer(now); i != 0 && kept[i].NotBefore.After(kept[0].NotBefore) {
		kept = slices.Concat(kept[i:i+1], kept[:i], kept[i+1:])
		dirty = true
	}

	if !dirty {
		return nil, nil, nil
	}
	next, err := m.encode(kept)
	if err != nil {
		return nil, nil, err
	}
	return next, changes, nil
}

// ErrUnknownKey is returned (wrapped) by Retire for a kid the record does
// not hold: never issued here, or already gone.
var ErrUnknownKey = errors.New("no such signing key")

// Retire removes the key kid from the shared record at once, for a key
// that leaked: it is no longer published, so nothing it signed verifies
// against this deployment's JWKS, and it never signs again. If it signs
// now, or is published ahead to sign next, a new key of the configured
// algorithm signs in its place from now on, without being published ahead
// first: the point is to stop trusting the old key now. A relying party
// that fetches the JWKS again when it meets an unknown kid (go-oidc does)
// accepts the new key at once; one that does not, when its cached JWKS
// expires (CacheMaxAge). Retiring the only key replaces it the same way;
// a retiring key is only removed.
//
// It reads the record afresh and writes it with the compare-and-set of
// every change, planning again if another instance wrote in between, so a
// rotation racing it cannot write the key back. This instance adopts the
// new record at once, the others at their next Refresh. It returns the
// key that signs afterwards.
func (m *Manager) Retire(ctx context.Context, kid string) (Key, error) {
	m.refreshMu.Lock()
	defer m.refreshMu.Unlock()
	set, err := m.load(ctx)
	if err != nil {
		return Key{}, fmt.Errorf("retire signing key %s: %w", kid, err)
	}
	err = m.write(ctx, set, func(set *keySet, now time.Time) (*keySet, []change, error) {
		return m.planRetire(set, kid, now)
	})
	if err != nil {
		return Key{}, fmt.Errorf("retire signing key %s: %w", kid, err)
	}
	if m.retired == nil {
		m.retired = map[string]bool{}
	}
	m.retired[kid] = true
	return m.Signing(), nil
}

// planRetire returns the record set becomes at now without the key kid,
// with a new key signing from now if kid signs now or was to sign later,
// and whatever else plan finds due.
func (m *Manager) planRetire(set *keySet, kid string, now time.Time) (*keySet, []change, error) {
	i := slices.IndexFunc(set.keys, func(k Key) bool { return k.ID == kid })
	if i < 0 {
		return nil, nil, fmt.Errorf("%w %q: not in %s (never issued, or already gone)", ErrUnknownKey, kid, m.opts.RedisKey)
	}
	gone := set.keys[i]
	keys := slices.Delete(slices.Clone(set.keys), i, i+1)
	if i == set.signer(now) || gone.NotBefore.After(now) {
		key, err := m.generate(now, now)
		if err != nil {
			return nil, nil, err
		}
		// First: it signs now, and readers that predate windows sign
		// with the first key.
		keys = slices.Insert(keys, 0, key)
	}
	// The newest key must be open-ended (decode refuses a record whose
	// newest key retires). It can only have an end when the key that
	// took over from it is the one removed.
	if n := (&keySet{keys: keys}).newest(); !keys[n].NotAfter.IsZero() {
		keys[n].NotAfter = time.Time{}
	}
	// plan adds what is due on the result (a key whose successor is gone
	// has its stay extended, never shortened), and seals it.
	next, changes, err := m.plan(&keySet{keys: keys, stale: set.stale}, now)
	if err == nil && next == nil {
		next, err = m.encode(keys)
	}
	if err != nil {
		return nil, nil, err
	}
	signing := next.keys[next.signer(now)].ID
	return next, append(changes, change{kind: "revoked", key: gone, signing: signing}), nil
}

// due reports whether keys need a new key at now, and when it would start
// signing: never sooner than PublishAhead from now, so it is published for
// at least that long even after an outage that let a rotation slip.
func (m *Manager) due(keys []Key, now time.Time) (time.Time, bool) {
	newest := keys[(&keySet{keys: keys}).newest()]
	earliest := now.Add(m.opts.PublishAhead)
	if newest.Algorithm != m.opts.Algorithm {
		// The configured algorithm changed. A pending key of the other
		// one (scheduled by an instance still on the old configuration)
		// signs first; a rolling change of configuration thus adds at
		// most one key.
		return earliest, !newest.NotBefore.After(now)
	}
	if m.opts.RotateEvery <= 0 {
		return time.Time{}, false
	}
	next := newest.NotBefore.Add(m.opts.RotateEvery)
	if now.Before(next.Add(-m.opts.PublishAhead)) {
		return time.Time{}, false
	}
	if next.Before(earliest) {
		next = earliest
	}
	return next, true
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
