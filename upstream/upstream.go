// Package upstream is Anteroom's side as a relying party of a site's own
// identity provider (rooms[].identity): the authorization code flow with
// PKCE S256, state and nonce (OIDC Core §3.1), the provider's discovery
// document (OIDC Discovery §4) and keys cached, the ID token validated as
// OIDC Core §3.1.3.7 says, and the room's `require` rules and claim
// allow-list applied to what it vouches for.
//
// It knows nothing of the queue, of Anteroom's own provider or of HTTP
// pages: package web runs the browser's side (where the pending login is
// sealed, and what a person sees), package server builds one Provider per
// upstream configuration, shared by the rooms that name it.
package upstream

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// ErrUnavailable is what an error wraps when the provider could not be
// reached or answered nonsense (discovery, keys, token endpoint): the
// visitor should retry later, and nobody's place is touched.
var ErrUnavailable = errors.New("identity provider unavailable")

// RefusedError is the provider's answer refused: an error it sent back, or
// an ID token that failed validation. Reason is a short fixed phrase for the
// log (never a token or a code).
type RefusedError struct {
	// Reason says why, for the log line.
	Reason string
}

func (e *RefusedError) Error() string { return "identity provider answer refused: " + e.Reason }

func refused(format string, args ...any) error {
	return &RefusedError{Reason: fmt.Sprintf(format, args...)}
}

// Config is one upstream provider as a room names it.
type Config struct {
	// Issuer is the provider's issuer URL, exactly as its ID tokens say.
	Issuer string
	// ClientID and ClientSecret are Anteroom's registration there.
	ClientID, ClientSecret string
	// Scopes are requested at its authorization endpoint (openid is
	// always among them).
	Scopes []string
	// RedirectURL is Anteroom's callback, {issuer}/upstream/callback.
	RedirectURL string
	// HTTPClient talks to the provider (default: one with a 10 s timeout,
	// so that a slow provider shows the visitor a page, not a spinner).
	HTTPClient *http.Client
	// Now is the clock (default time.Now).
	Now func() time.Time
	// MetadataTTL is how long the discovery document is used before it is
	// read again (default 1h); a failed refresh keeps the old one.
	MetadataTTL time.Duration
}

// Provider is one upstream OpenID provider. It is safe for concurrent use.
type Provider struct {
	c    Config
	keys *keySet

	mu      sync.Mutex
	meta    *metadata
	fetched time.Time
}

// metadata is what Anteroom reads of the discovery document (OIDC
// Discovery §3).
type metadata struct {
	Issuer        string   `json:"issuer"`
	Authorization string   `json:"authorization_endpoint"`
	Token         string   `json:"token_endpoint"`
	JWKS          string   `json:"jwks_uri"`
	Algs          []string `json:"id_token_signing_alg_values_supported"`
	Challenges    []string `json:"code_challenge_methods_supported"`
}

// New returns a provider; it contacts nobody until the first login.
func New(c Config) (*Provider, error) {
	if c.Issuer == "" || c.ClientID == "" || c.RedirectURL == "" {
		return nil, errors.New("upstream: issuer, client id and redirect URL are required")
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.MetadataTTL <= 0 {
		c.MetadataTTL = time.Hour
	}
	if !slices.Contains(c.Scopes, oidc.ScopeOpenID) {
		c.Scopes = append([]string{oidc.ScopeOpenID}, c.Scopes...)
	}
	p := &Provider{c: c}
	p.keys = &keySet{http: c.HTTPClient, now: c.Now}
	return p, nil
}

// Issuer is the provider's issuer URL.
func (p *Provider) Issuer() string { return p.c.Issuer }

// liveness is how long a read of the discovery document vouches that the
// provider is up: a sign-in starting later reads it again first, so that
// a person is shown Anteroom's page while the provider is down rather
// than sent to a provider that does not answer.
const liveness = 10 * time.Second

// discover returns the provider's metadata, read at most once per
// MetadataTTL; a failed read keeps what was read before, and fails only
// when there is nothing. With live (a sign-in about to start), a read
// older than liveness is repeated, and its failure is ErrUnavailable.
func (p *Provider) discover(ctx context.Context, live bool) (*metadata, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.c.Now()
	ttl := p.c.MetadataTTL
	if live {
		ttl = min(ttl, liveness)
	}
	if p.meta != nil && now.Sub(p.fetched) < ttl && now.Sub(p.fetched) >= 0 {
		return p.meta, nil
	}
	var m metadata
	err := getJSON(ctx, p.c.HTTPClient, strings.TrimSuffix(p.c.Issuer, "/")+"/.well-known/openid-configuration", &m)
	if err == nil {
		switch {
		case m.Issuer != p.c.Issuer:
			// OIDC Discovery §4.3: the issuer in the document must be
			// exactly the one it was read for.
			err = fmt.Errorf("%w: discovery names issuer %q", ErrUnavailable, m.Issuer)
		case m.Authorization == "" || m.Token == "" || m.JWKS == "":
			err = fmt.Errorf("%w: discovery lacks an endpoint", ErrUnavailable)
		}
	}
	if err != nil {
		if p.meta != nil && !live {
			return p.meta, nil
		}
		return nil, err
	}
	p.meta, p.fetched = &m, now
	p.keys.setURL(m.JWKS)
	return p.meta, nil
}

// oauth2Config is the code flow's configuration at the provider.
func (p *Provider) oauth2Config(m *metadata) *oauth2.Config {
	return &oauth2.Config{ClientID: p.c.ClientID, ClientSecret: p.c.ClientSecret, RedirectURL: p.c.RedirectURL,
		Scopes: p.c.Scopes, Endpoint: oauth2.Endpoint{AuthURL: m.Authorization, TokenURL: m.Token}}
}

// Login is what one pending login must keep, sealed, until the callback:
// the state that ties the answer to it, the nonce its ID token must carry
// and the PKCE verifier its code is redeemed with.
type Login struct {
	State, Nonce, Verifier string
}

// NewLogin draws a login's random values.
func NewLogin() Login {
	return Login{State: random(), Nonce: random(), Verifier: oauth2.GenerateVerifier()}
}

func random() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// AuthURL is where the browser goes to sign in at the provider (OIDC Core
// §3.1.2.1), with state (sealed by the caller: it carries l's values),
// nonce and the PKCE S256 challenge (RFC 7636 §4.3). It fails with
// ErrUnavailable when the provider's discovery cannot be read.
func (p *Provider) AuthURL(ctx context.Context, state string, l Login, prompt string) (string, error) {
	m, err := p.discover(ctx, true)
	if err != nil {
		return "", err
	}
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(l.Verifier), oidc.Nonce(l.Nonce)}
	if prompt != "" {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", prompt))
	}
	return p.oauth2Config(m).AuthCodeURL(state, opts...), nil
}

// Identity is a person the provider vouched for.
type Identity struct {
	// Issuer and Subject identify the person at the provider (OIDC Core
	// §5.7: only the pair is unique and stable).
	Issuer, Subject string
	// Claims are every claim of the validated ID token, for the room's
	// require rules and allow-list; never logged.
	Claims map[string]any
}

// Key is the person's stable identifier in Anteroom: the same for every
// browser and every room, never the same for two people (a SHA-256 over
// issuer and subject, which are unambiguous joined by a NUL: neither may
// contain one). It is Anteroom's `sub` for them, and names their place.
func (i Identity) Key() string { return SubjectOf(i.Issuer, i.Subject) }

// SubjectOf is Identity.Key for an issuer and subject.
func SubjectOf(issuer, sub string) string {
	h := sha256.New()
	io.WriteString(h, "anteroom upstream subject\x00")
	io.WriteString(h, issuer)
	io.WriteString(h, "\x00")
	io.WriteString(h, sub)
	return "u" + base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// Allowed returns the claims of the allow-list that the identity has,
// for Anteroom's ID token and userinfo: nothing else leaves.
func (i Identity) Allowed(names []string) map[string]any {
	var out map[string]any
	for _, n := range names {
		if v, ok := i.Claims[n]; ok {
			if out == nil {
				out = make(map[string]any, len(names))
			}
			out[n] = v
		}
	}
	return out
}

// Exchange finishes a login: it redeems code at the token endpoint with
// the login's PKCE verifier and validates the ID token (OIDC Core
// §3.1.3.7): signature by a key of the provider's JWKS with an algorithm it
// announces, iss exactly the issuer, aud containing the client id (and azp
// the client id when there are several), exp in the future, nonce exactly
// the login's. Errors wrap ErrUnavailable (the provider could not be
// reached: retry) or are a *RefusedError.
func (p *Provider) Exchange(ctx context.Context, code string, l Login) (Identity, error) {
	m, err := p.discover(ctx, false)
	if err != nil {
		return Identity{}, err
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, p.c.HTTPClient)
	tok, err := p.oauth2Config(m).Exchange(ctx, code, oauth2.VerifierOption(l.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
			return Identity{}, refused("token endpoint refused the code: %s", errorCode(re.ErrorCode))
		}
		return Identity{}, fmt.Errorf("%w: token endpoint: %v", ErrUnavailable, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Identity{}, refused("no ID token in the token response")
	}
	return p.Verify(ctx, raw, l.Nonce)
}

// Verify validates an ID token as Exchange does.
func (p *Provider) Verify(ctx context.Context, raw, nonce string) (Identity, error) {
	m, err := p.discover(ctx, false)
	if err != nil {
		return Identity{}, err
	}
	var fetch fetchResult
	ctx = context.WithValue(ctx, fetchKey{}, &fetch)
	v := oidc.NewVerifier(p.c.Issuer, p.keys, &oidc.Config{ClientID: p.c.ClientID, SupportedSigningAlgs: m.Algs, Now: p.c.Now})
	tok, err := v.Verify(ctx, raw)
	if err != nil {
		if fetch.err != nil {
			return Identity{}, fmt.Errorf("%w: keys: %v", ErrUnavailable, fetch.err)
		}
		var exp *oidc.TokenExpiredError
		switch {
		case errors.As(err, &exp):
			return Identity{}, refused("ID token expired")
		case strings.Contains(err.Error(), "different provider"):
			return Identity{}, refused("ID token of another issuer")
		case strings.Contains(err.Error(), "expected audience"):
			return Identity{}, refused("ID token for another audience")
		case strings.Contains(err.Error(), "verify signature"), strings.Contains(err.Error(), "malformed jwt"):
			return Identity{}, refused("ID token signature invalid")
		}
		return Identity{}, refused("ID token invalid")
	}
	if subtle.ConstantTimeCompare([]byte(tok.Nonce), []byte(nonce)) != 1 || nonce == "" {
		return Identity{}, refused("ID token nonce mismatch")
	}
	claims := map[string]any{}
	if err := tok.Claims(&claims); err != nil {
		return Identity{}, refused("ID token claims unreadable")
	}
	if len(tok.Audience) > 1 {
		// OIDC Core §3.1.3.7 items 4 and 5: several audiences need an
		// azp, and it must be this client.
		if azp, _ := claims["azp"].(string); azp != p.c.ClientID {
			return Identity{}, refused("ID token azp is not this client")
		}
	}
	if tok.Subject == "" || strings.ContainsRune(tok.Subject, 0) {
		return Identity{}, refused("ID token without a usable sub")
	}
	return Identity{Issuer: p.c.Issuer, Subject: tok.Subject, Claims: claims}, nil
}

// errorCode keeps a provider's error code fit for the log: codes are short
// lowercase words; anything else is someone's crafted text.
func errorCode(e string) string {
	if e == "" || len(e) > 40 || strings.IndexFunc(e, func(c rune) bool { return (c < 'a' || c > 'z') && c != '_' }) >= 0 {
		return "an unknown error"
	}
	return e
}

// ErrorCode is errorCode for callers that log a callback's error parameter.
func ErrorCode(e string) string { return errorCode(e) }

// getJSON reads a JSON document; anything but a 200 with JSON is
// ErrUnavailable.
func getJSON(ctx context.Context, c *http.Client, url string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: %s answered %d", ErrUnavailable, url, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(into); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrUnavailable, url, err)
	}
	return nil
}

// claimString is a claim's value as a require rule compares it: strings
// as they are, booleans and numbers as JSON writes them.
func claimString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case json.Number:
		return x.String(), true
	}
	return "", false
}
