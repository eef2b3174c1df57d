// Package config loads and validates Anteroom's one YAML file.
//
// The file is strict on purpose: a misspelt key in a waiting room is a
// silent outage (a room that admits everyone, or nobody), so unknown keys
// are rejected, every error names the key it is about in the form
// rooms[0].admission.rate_per_minute, and Validate reports every problem
// at once rather than one per restart.
//
// Secrets are kept out of the file with ${NAME} references to environment
// variables, which are substituted in values (never in keys) before the
// document is decoded.
package config

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// Defaults filled in by ApplyDefaults, as the design document gives them.
const (
	// defaultListen binds to loopback: Anteroom is meant to sit behind a
	// TLS-terminating proxy, and a fresh install should not be reachable
	// around it.
	defaultListen = "127.0.0.1:8080"
	// defaultDialTimeout lets a request fail fast on a dead Redis rather
	// than hold a connection open.
	defaultDialTimeout = 2 * time.Second
	// defaultReadTimeout and defaultWriteTimeout keep a slow Redis from
	// piling up goroutines behind every queued visitor.
	defaultReadTimeout  = time.Second
	defaultWriteTimeout = time.Second
	// defaultRequestTimeout bounds one request's Redis work, retries
	// included, so that a stalled Redis answers visitors with a quick
	// "try again" instead of holding them.
	defaultRequestTimeout = 3 * time.Second
	// defaultSessionTTL is long enough for a checkout.
	defaultSessionTTL = 30 * time.Minute
	// defaultMaxWait keeps a place through a long launch-day queue.
	defaultMaxWait = 6 * time.Hour
	// defaultAbandonAfter is long enough for a page in a background tab,
	// whose timers browsers slow to once a minute, and short enough that
	// closed tabs stop holding up a busy room for long.
	defaultAbandonAfter = 2 * time.Minute
)

// Room states, as package waitingroom defines them. They are repeated here
// so that config does not depend on the queue's implementation.
const (
	stateOpen        = "open"
	statePaused      = "paused"
	stateClosed      = "closed"
	statePassthrough = "passthrough"
)

// Config is the whole configuration file.
type Config struct {
	// Issuer is the OpenID Connect issuer identifier that relying parties
	// are configured with and that appears in every ID token. It may carry a
	// path, for when Anteroom is mounted under a shop's own domain.
	Issuer string `yaml:"issuer"`
	// Listen is the address the HTTP server binds to. The default is
	// loopback because Anteroom is meant to run behind a TLS-terminating
	// proxy.
	Listen string `yaml:"listen"`
	// Redis is where the queues live; every replica must share it.
	Redis Redis `yaml:"redis"`
	// Secrets holds the keys that must be the same on every replica.
	Secrets Secrets `yaml:"secrets"`
	// Signing configures the token signing keys and their rotation.
	Signing Signing `yaml:"signing"`
	// Admin controls the admin API.
	Admin Admin `yaml:"admin"`
	// Rooms are the waiting rooms; each client belongs to exactly one.
	Rooms []Room `yaml:"rooms"`
	// Clients are the OpenID Connect relying parties allowed to send
	// visitors through a room.
	Clients []Client `yaml:"clients"`
	// Gate configures the built-in nginx auth_request gate; nil (no gate
	// key) disables it.
	Gate *Gate `yaml:"gate"`
	// Web configures the visitor's pages: an operator's own templates,
	// static files and translations.
	Web Web `yaml:"web"`
	// Limits bound what one client can make Anteroom do: joins per
	// address, logins per ticket, and which proxies report addresses.
	Limits Limits `yaml:"limits"`
	// Debug configures diagnostics: the profiler's listener.
	Debug Debug `yaml:"debug"`
	// Ops configures the operator's listener: metrics, health checks,
	// the admin API and the dashboard apart from the public one.
	Ops Ops `yaml:"ops"`
}

// Secrets holds key material shared by all replicas.
type Secrets struct {
	// CookieKeys are the secrets from which the keys for cookies and for
	// everything Anteroom seals (including the signing keys it keeps in
	// Redis) are derived. The first seals and every one opens, so a secret
	// is rotated by putting the new one first and removing the old one only
	// once nothing sealed under it is still in use. Each must be at least
	// 32 bytes, the AES-256 key size, so a derived key is never weaker than
	// the cipher.
	CookieKeys []string `yaml:"cookie_keys"`
}

// Admin configures the admin API.
type Admin struct {
	// Token is the bearer token for the admin API. Empty disables the API
	// altogether, so an install that never uses it has nothing to attack;
	// otherwise it must be at least 16 characters.
	Token string `yaml:"token"`
	// Tokens are named admin tokens, each a viewer's (reads only) or an
	// operator's (reads and changes); the audit log records a change by
	// the name of the token that made it. admin.token, when set, is an
	// operator's token named "admin" beside them.
	Tokens []AdminToken `yaml:"tokens"`
}

// AdminToken is one named admin token.
type AdminToken struct {
	// Name identifies the token in the audit log and on the dashboard:
	// ^[a-z0-9][a-z0-9_-]{0,31}$, unique.
	Name string `yaml:"name"`
	// Token is the bearer token, at least 16 characters; keep it out of
	// the file with a ${NAME} reference.
	Token string `yaml:"token"`
	// Role is viewer (reads the admin API and the dashboard) or operator
	// (changes as well).
	Role string `yaml:"role"`
}

// Room is one waiting room.
type Room struct {
	// ID names the room in Redis keys (inside a {r:<id>} hash tag), cookie
	// names and URLs, which is why it is restricted to
	// ^[a-z0-9][a-z0-9_-]{0,31}$: nothing in it needs escaping anywhere.
	ID string `yaml:"id"`
	// Name is shown to visitors on the waiting page. It defaults to ID.
	Name string `yaml:"name"`
	// Message is optional text shown on the waiting page, for telling
	// visitors what they are waiting for.
	Message string `yaml:"message"`
	// State is the state the room starts in: open (the default), paused,
	// closed or passthrough, with the meanings package waitingroom gives
	// them. The admin API changes it at run time for every instance, so the
	// file only seeds it.
	State string `yaml:"state"`
	// Admission decides how fast visitors leave the queue.
	Admission Admission `yaml:"admission"`
	// SessionTTL is how long an admitted visitor stays active (unless the
	// relying party logs them out first), which frees their slot for
	// capacity-based admission; access tokens never outlive it. The default
	// is 30m and the minimum 1m.
	SessionTTL Duration `yaml:"session_ttl"`
	// MaxWait is how long tickets and pending auth requests live, so an
	// abandoned place in the queue does not hold Redis memory forever. The
	// default is 6h and the minimum 1m.
	MaxWait Duration `yaml:"max_wait"`
	// OnError is what the gate does with a request for this room while
	// Redis cannot be reached: fail_closed (the default) refuses it, so an
	// outage never opens the doors; fail_open lets it through, for a site
	// that would rather be overrun than unavailable.
	OnError string `yaml:"on_error"`
	// OpensAt schedules the room's opening, as RFC 3339 with a time zone
	// (2026-12-01T09:00:00+01:00). Visitors who arrive before it join a
	// pre-queue and are given random positions among themselves at opening,
	// so nobody gains by arriving at 08:59:59 or by refreshing; later
	// arrivals queue behind them. Empty: open from the start.
	OpensAt string `yaml:"opens_at"`
	// ClosesAt stops new joins (RFC 3339); visitors already queued are
	// still admitted. Empty: never.
	ClosesAt string `yaml:"closes_at"`
	// AbandonAfter is the grace period after which a waiting visitor whose
	// page has shown no sign of life (status polls, the event stream) is
	// passed over when the counter advances, so admissions go to live
	// people; a visitor who comes back is let in at the next chance and
	// keeps their place. The default is 2m and the minimum 30s; 0s turns
	// it off.
	AbandonAfter *Duration `yaml:"abandon_after"`
	// OriginHealth, when set, probes the site the room protects and slows
	// or pauses admission while it struggles.
	OriginHealth *OriginHealth `yaml:"origin_health"`
	// Queueing is fifo (the default: in arrival order) or random: a
	// lottery among everyone waiting at each admission, where arriving
	// early buys nothing.
	Queueing string `yaml:"queueing"`
	// Challenge asks new visitors for a proof of work before a place
	// (off by default).
	Challenge Challenge `yaml:"challenge"`
	// Identity, when set, makes visitors sign in at the site's own OpenID
	// provider before they take a place: one place per person (identity.go).
	Identity *Identity `yaml:"identity"`
	// Lanes are priority lanes: a visitor who enters a priority code
	// (issued by the admin API) moves into the code's lane, keeping their
	// place in arrival order, and the lanes share admissions by weight
	// while each has visitors. The lane "standard" is everyone without a
	// code (weight 1 unless listed). Empty: one queue. Needs fifo.
	Lanes []Lane `yaml:"lanes"`
}

// Lane is one priority lane of a room.
type Lane struct {
	// ID names the lane in codes and the admin API, like a room's id.
	ID string `yaml:"id"`
	// Weight is the lane's share of admissions, 1 to 1000.
	Weight int `yaml:"weight"`
}

// Schedule returns the parsed opens_at and closes_at (zero when empty).
// Validate has checked them.
func (r Room) Schedule() (opens, closes time.Time) {
	opens, _ = time.Parse(time.RFC3339, r.OpensAt)
	closes, _ = time.Parse(time.RFC3339, r.ClosesAt)
	return opens, closes
}

// Abandonment is the grace period of abandonment, 0 when it is off.
func (r Room) Abandonment() time.Duration {
	if r.AbandonAfter == nil {
		return defaultAbandonAfter
	}
	return r.AbandonAfter.D()
}

// Admission is a room's admission policy. A room may combine a rate and a
// capacity; with neither it is manual.
type Admission struct {
	// RatePerMinute admits this many visitors per minute, smoothly, which
	// protects a backend whose cost is in the burst of arrivals. It may be
	// fractional. It is a pointer so that "not set" differs from an
	// invalid 0.
	RatePerMinute *float64 `yaml:"rate_per_minute"`
	// MaxActive is how many admitted visitors may be active at once, which
	// protects a backend whose cost is in concurrent sessions.
	// It is a pointer so that "not set" differs from an invalid 0.
	MaxActive *int `yaml:"max_active"`
}

// Manual reports whether neither rate nor capacity is set, in which case
// only the admin API admits visitors.
func (a Admission) Manual() bool {
	return a.RatePerMinute == nil && a.MaxActive == nil
}

// Client is one OpenID Connect relying party.
type Client struct {
	// ID is the OAuth client_id. It is limited to URL-unreserved characters
	// so it travels unescaped in query strings and HTTP Basic credentials.
	ID string `yaml:"id"`
	// Secret is the client secret. Empty makes the client public (a
	// single-page or native app that cannot keep a secret), which then
	// must use PKCE with S256 and may only redirect to https or loopback.
	Secret string `yaml:"secret"`
	// RedirectURIs are the exact redirect_uri values the client may use;
	// they are compared byte for byte, as OAuth 2.0 Security BCP requires.
	RedirectURIs []string `yaml:"redirect_uris"`
	// PostLogoutRedirectURIs are the exact post_logout_redirect_uri values
	// the client may use after RP-initiated logout.
	PostLogoutRedirectURIs []string `yaml:"post_logout_redirect_uris"`
	// Room is the ID of the room this client's visitors queue in.
	Room string `yaml:"room"`
	// RequirePKCE makes PKCE mandatory for a confidential client too, as
	// OAuth 2.1 recommends; public clients always require it.
	RequirePKCE bool `yaml:"require_pkce"`
}

// Public reports whether the client has no secret, which makes PKCE with
// S256 mandatory for it.
func (c Client) Public() bool { return c.Secret == "" }

// Load reads the file at path, substitutes ${NAME} references from the
// process environment, decodes it with unknown keys rejected, fills in
// defaults and validates the result. Every line of a returned error is
// prefixed with path so that it points at the file as well as the key.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := Parse(data, os.LookupEnv)
	if err != nil {
		return nil, prefixErrors(path, err)
	}
	return c, nil
}

// Parse is Load for a file already in memory. lookupEnv resolves ${NAME}
// references; it is os.LookupEnv in production and a map in tests, so that
// tests do not depend on, or race over, the process environment.
func Parse(data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	root, err := parseDocument(data)
	if err != nil {
		return nil, err
	}
	if errs := substituteEnv(root, "", lookupEnv); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	c := new(Config)
	if err := decodeInto(root, c); err != nil {
		return nil, err
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// ApplyDefaults fills in every unset field that has a default. Zero is
// "unset", so an explicit 0s timeout also gets the default. It is separate
// from Validate so that a Config built in code (such as by anteroom demo)
// gets the same defaults as one read from a file.
func (c *Config) ApplyDefaults() {
	if c.Listen == "" {
		c.Listen = defaultListen
	}
	if c.Redis.DialTimeout == 0 {
		c.Redis.DialTimeout = Duration(defaultDialTimeout)
	}
	if c.Redis.ReadTimeout == 0 {
		c.Redis.ReadTimeout = Duration(defaultReadTimeout)
	}
	if c.Redis.WriteTimeout == 0 {
		c.Redis.WriteTimeout = Duration(defaultWriteTimeout)
	}
	c.Signing.applyDefaults()
	if c.Redis.RequestTimeout == 0 {
		c.Redis.RequestTimeout = Duration(defaultRequestTimeout)
	}
	for i := range c.Rooms {
		c.Rooms[i].applyDefaults()
	}
	if c.Gate != nil {
		c.Gate.ApplyDefaults()
	}
	c.Limits.applyDefaults()
}

// applyDefaults fills in the room's unset fields that have a default.
func (r *Room) applyDefaults() {
	if r.Name == "" {
		r.Name = r.ID
	}
	if r.State == "" {
		r.State = stateOpen
	}
	if r.SessionTTL == 0 {
		r.SessionTTL = Duration(defaultSessionTTL)
	}
	if r.MaxWait == 0 {
		r.MaxWait = Duration(defaultMaxWait)
	}
	if r.OnError == "" {
		r.OnError = OnErrorFailClosed
	}
	if r.OriginHealth != nil {
		r.OriginHealth.applyDefaults()
	}
	r.Challenge.applyDefaults()
	if r.Identity != nil {
		r.Identity.applyDefaults()
	}
}

// Room looks a room up by ID. The pointer is into c.Rooms, so it stays
// valid as long as c is not re-sliced.
func (c *Config) Room(id string) (*Room, bool) {
	for i := range c.Rooms {
		if c.Rooms[i].ID == id {
			return &c.Rooms[i], true
		}
	}
	return nil, false
}

// Client looks a client up by ID. The pointer is into c.Clients, so it
// stays valid as long as c is not re-sliced.
func (c *Config) Client(id string) (*Client, bool) {
	for i := range c.Clients {
		if c.Clients[i].ID == id {
			return &c.Clients[i], true
		}
	}
	return nil, false
}

// prefixErrors puts the file name in front of every line of err, joined
// errors included, so each line reads like a compiler diagnostic.
func prefixErrors(path string, err error) error {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = fmt.Errorf("%s: %w", path, e)
	}
	return errors.Join(out...)
}
