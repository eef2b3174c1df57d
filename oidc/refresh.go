package oidc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/anteroom/anteroom/internal/rediskey"
)

// Refresh tokens (scope offline_access, RFC 6749 §6), rotated at every use.
//
// Storage contract. A refresh token is kept by its digest,
// anteroom:rt:<digest>, never as presented. Rotation must be atomic: the
// token is marked used with one SET … XX GET before its successor exists,
// so of two concurrent refreshes exactly one reads the unused record, and
// the other, a reuse, revokes the grant (RFC 9700 §4.14.2). The mark carries
// a random Rotation, so a SET sent again after its reply was lost recognises
// its own mark and is no reuse. When minting the successor fails, the old
// record is put back (SET XX), so the retry the 503 asks for is no reuse
// either. The used mark stays until the token would have expired.

// refreshTokenKeyPrefix starts every refresh token's key: RevokeToken tells
// a key GetRefreshTokenInfo named from an access token's id by it.
const refreshTokenKeyPrefix = rediskey.RefreshToken

// refreshTokenKey names the record of a refresh token by its digest: the
// token itself is never stored.
func refreshTokenKey(token string) string { return refreshTokenKeyPrefix + digest(token) }

// errRefreshReused is readToken's answer for a rotated-out refresh token.
var errRefreshReused = errors.New("refresh token was used already")

// CreateAccessAndRefreshTokens implements op.Storage. A refresh token is
// used once: it is marked used (one SET … GET, so of two concurrent
// refreshes one finds the mark) before the new one exists, and a second
// use revokes the grant.
func (s *storage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	rr, ok := req.(*refreshRequest)
	if !ok || current == "" {
		return s.mint(ctx, req, true)
	}
	if rr.reused {
		// Its own client, authenticated, presented a rotated-out token:
		// stolen, or the client lost track. Either way no token of the
		// grant can be trusted.
		s.revokeGrant(ctx, rr.rec.Grant, rr.rec.Expires, "", "")
		return "", "", time.Time{}, zoidc.ErrInvalidGrant().WithDescription("refresh token already used; its grant is revoked")
	}
	if rr.rec.Grant == "" {
		// Minted before tokens had grants: the chain from here on shares
		// one, named after this token, so reuse revokes its successors.
		rr.rec.Grant = "rt-" + digest(current)
	}
	key := refreshTokenKey(current)
	used := rr.rec
	used.Used, used.UsedUntil, used.Expires, used.AccessID = true, rr.rec.Expires, time.Time{}, ""
	used.Rotation = randomToken()
	mark, _ := json.Marshal(used)
	old, err := s.rdb.SetArgs(ctx, key, mark, redis.SetArgs{Mode: "XX", KeepTTL: true, Get: true}).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return "", "", time.Time{}, zoidc.ErrInvalidGrant().WithDescription("invalid refresh token")
	case err != nil:
		return "", "", time.Time{}, down(ctx, fmt.Errorf("rotate refresh token: %w", err))
	}
	var was tokenRecord
	if bytes.Equal(old, mark) {
		// Our own mark: the first reply was lost and go-redis sent the
		// command again. What it replaced is what was read.
		old, _ = json.Marshal(rr.rec)
	} else if json.Unmarshal(old, &was) != nil || was.Used {
		s.revokeGrant(ctx, rr.rec.Grant, rr.rec.Expires, "", "")
		return "", "", time.Time{}, zoidc.ErrInvalidGrant().WithDescription("refresh token already used; its grant is revoked")
	}
	accessID, refresh, exp, err := s.mint(ctx, req, true)
	if err != nil {
		// Nothing was rotated: the token is as it was, so that the retry
		// a 503 asks for is not taken for a reuse.
		_ = s.rdb.SetArgs(ctx, key, old, redis.SetArgs{Mode: "XX", KeepTTL: true}).Err()
	}
	return accessID, refresh, exp, err
}

// refreshRequest is a refresh token presented at the token endpoint.
type refreshRequest struct {
	rec    tokenRecord
	scopes []string
	// reused is set for a rotated-out token: minting from it revokes the
	// grant instead, once the library has checked the client.
	reused bool
}

func (r *refreshRequest) GetAMR() []string            { return nil }
func (r *refreshRequest) GetAudience() []string       { return []string{r.rec.ClientID} }
func (r *refreshRequest) GetAuthTime() time.Time      { return r.rec.AuthTime }
func (r *refreshRequest) GetClientID() string         { return r.rec.ClientID }
func (r *refreshRequest) GetScopes() []string         { return r.scopes }
func (r *refreshRequest) GetSubject() string          { return r.rec.Queue.Subject }
func (r *refreshRequest) SetCurrentScopes(s []string) { r.scopes = s }

// TokenRequestByRefreshToken implements op.Storage. A refresh token dies
// with the visitor's session, including one ended early through end_session.
func (s *storage) TokenRequestByRefreshToken(ctx context.Context, token string) (op.RefreshTokenRequest, error) {
	rec, err := s.readToken(ctx, refreshTokenKey(token))
	if errors.Is(err, errRefreshReused) {
		// Revoked in CreateAccessAndRefreshTokens, once the library has
		// checked that the presenting client is the token's: another
		// client naming it must not revoke a grant it does not own.
		return &refreshRequest{rec: *rec, scopes: rec.Scopes, reused: true}, nil
	}
	if err != nil {
		return nil, zoidc.ErrInvalidGrant().WithDescription("invalid refresh token").WithParent(err)
	}
	return &refreshRequest{rec: *rec, scopes: rec.Scopes}, nil
}
