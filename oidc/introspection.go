package oidc

import (
	"context"
	"errors"

	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
)

// Token introspection (RFC 7662). Storage contract: it reads the token as
// userinfo does (readToken), changes nothing and may be repeated.

// SetIntrospectionFromToken implements op.Storage: a client may introspect
// the tokens issued to it.
func (s *storage) SetIntrospectionFromToken(ctx context.Context, resp *zoidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	rec, err := s.readToken(ctx, accessTokenKey(tokenID))
	if err != nil {
		return err
	}
	if rec.Queue.Subject != subject || rec.ClientID != clientID {
		return errors.New("token not issued to this client")
	}
	resp.Subject = subject
	resp.ClientID = rec.ClientID
	resp.Scope = rec.Scopes
	resp.Audience = []string{rec.ClientID}
	resp.Expiration = zoidc.FromTime(rec.Expires)
	resp.IssuedAt = zoidc.FromTime(rec.AuthTime)
	resp.TokenType = zoidc.BearerToken
	resp.Claims = rec.Queue.Claims()
	return nil
}
