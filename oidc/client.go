package oidc

import (
	"context"
	"fmt"
	"time"

	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/anteroom/anteroom/config"
	"github.com/anteroom/anteroom/waitingroom"
)

// client is a relying party from the configuration. Its login step is the
// waiting page of its room.
type client struct {
	cfg      config.Client
	room     waitingroom.Room
	loginURL func(id string) string
	// gate marks the built-in gate's client, which signs a session of its
	// own from the ID token and never uses the access token.
	gate bool
	// public: the client has no secret; else secretHash is its SHA-256.
	public     bool
	secretHash [32]byte
	// roomGone: the client's room was deleted at run time (room is then
	// the zero Room); its relying party is refused with access_denied.
	roomGone bool
}

func (c *client) GetID() string                    { return c.cfg.ID }
func (c *client) RedirectURIs() []string           { return c.cfg.RedirectURIs }
func (c *client) PostLogoutRedirectURIs() []string { return c.cfg.PostLogoutRedirectURIs }

// ApplicationType tells the library which redirect URIs to accept.
// Confidential clients are web apps; a public client is treated as a
// user-agent app, and DevMode below lets its configured loopback http URIs
// through (config validation allows no other http URI for it).
func (c *client) ApplicationType() op.ApplicationType {
	if c.public {
		return op.ApplicationTypeUserAgent
	}
	return op.ApplicationTypeWeb
}

func (c *client) AuthMethod() zoidc.AuthMethod {
	if c.public {
		return zoidc.AuthMethodNone
	}
	return zoidc.AuthMethodBasic
}

// ResponseTypes lists every OIDC response type, though Anteroom answers
// only code: the library would refuse the others with unauthorized_client,
// and CreateAuthRequest refuses them with unsupported_response_type, the
// error RFC 6749 §4.1.2.1 gives for a type the server does not support.
func (c *client) ResponseTypes() []zoidc.ResponseType {
	return []zoidc.ResponseType{zoidc.ResponseTypeCode, zoidc.ResponseTypeIDToken, zoidc.ResponseTypeIDTokenOnly,
		"code id_token", "code token", "code id_token token", "token", "none"}
}

func (c *client) GrantTypes() []zoidc.GrantType {
	return []zoidc.GrantType{zoidc.GrantTypeCode, zoidc.GrantTypeRefreshToken}
}

func (c *client) LoginURL(id string) string { return c.loginURL(id) }

// AccessTokenType is JWT, so that downstream APIs verify access tokens with
// the JWKS alone; except for the gate's client, whose access token nobody
// ever sees: an opaque one spares a signature on every gate login.
func (c *client) AccessTokenType() op.AccessTokenType {
	if c.gate {
		return op.AccessTokenTypeBearer
	}
	return op.AccessTokenTypeJWT
}

// MaxIDTokenLifetime bounds every ID token's life. The ID token proves the
// login to the relying party; how long the visit lasts is the access
// token's business. A signing key stays published at least this long after
// it stops signing.
const MaxIDTokenLifetime = 10 * time.Minute

// IDTokenLifetime is MaxIDTokenLifetime, or the session if it is shorter.
func (c *client) IDTokenLifetime() time.Duration       { return min(c.room.SessionTTL, MaxIDTokenLifetime) }
func (c *client) DevMode() bool                        { return c.public }
func (c *client) IsScopeAllowed(string) bool           { return false }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *client) ClockSkew() time.Duration             { return 0 }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

var _ op.Client = (*client)(nil)

// GetClientByClientID implements op.Storage.
func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	c, ok := s.clients.get(id)
	if !ok {
		return nil, fmt.Errorf("unknown client %q", id)
	}
	return c, nil
}
