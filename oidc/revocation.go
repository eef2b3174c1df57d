package oidc

import (
	"context"
	"strings"
	"time"

	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/anteroom/anteroom/internal/rediskey"
	"github.com/anteroom/anteroom/waitingroom"
)

// Revocation: of one token (RFC 7009), of a whole grant (a replayed code, a
// reused refresh token, a revoked refresh token), and of a session (logout
// through end_session).
//
// Storage contract. Revoking a grant is one key, anteroom:rg:<grant>, that
// readToken checks, so every token descending from one code is revoked by
// one SET however many there are; it lives until the last of them would
// have expired. SET and DEL are idempotent and may be repeated. revokeGrant
// is best effort (its caller refuses the request either way); RevokeToken
// answers a store failure with server_error, which guardOutage turns into a
// 503 the client retries. TerminateSession ends the ticket's session in the
// room (waitingroom.Store.EndSession): every token of the visitor dies with
// it, since readToken checks the session.

// revokedGrantKey marks a grant (the tokens bought with one code, and
// those their refresh tokens were rotated into) as revoked until the
// last of them would have expired anyway.
func revokedGrantKey(grant string) string { return rediskey.RevokedGrant + grant }

// revokeGrant revokes every token of grant, which live until expires at
// the latest, and deletes the named ones (a code's own tokens; records
// from before grants were kept are revoked that way only). It is best
// effort: the caller refuses the request either way.
func (s *storage) revokeGrant(ctx context.Context, grant string, expires time.Time, accessID, refreshKey string) {
	// One key per command (the keys hash to different Cluster slots), in
	// one round trip.
	pipe := s.rdb.Pipeline()
	if ttl := expires.Sub(s.now()); ttl > 0 && grant != "" {
		pipe.Set(ctx, revokedGrantKey(grant), 1, ttl+time.Minute)
	}
	if accessID != "" {
		pipe.Del(ctx, accessTokenKey(accessID))
	}
	if refreshKey != "" {
		pipe.Del(ctx, refreshKey)
	}
	_, _ = pipe.Exec(ctx)
}

// RevokeToken implements op.Storage (RFC 7009). A token of another client
// is refused; an unknown one is not an error.
func (s *storage) RevokeToken(ctx context.Context, tokenOrID, userID, clientID string) *zoidc.Error {
	// tokenOrID is what GetRefreshTokenInfo named a refresh token, an
	// access token's id, or (neither recognised) the token as presented.
	key := tokenOrID
	switch {
	case userID != "" && strings.HasPrefix(tokenOrID, refreshTokenKeyPrefix):
		// Named so by GetRefreshTokenInfo, which the library calls first
		// and which passes the subject along; a token as presented never
		// comes with one.
	case userID != "":
		key = accessTokenKey(tokenOrID)
	default:
		key = refreshTokenKey(tokenOrID)
	}
	rec, err := s.readToken(ctx, key)
	if err != nil {
		return nil
	}
	if rec.ClientID != clientID {
		return zoidc.ErrInvalidClient().WithDescription("token was not issued to this client")
	}
	// RFC 7009 §2.1: revoking a refresh token revokes the access tokens of
	// its grant too.
	if strings.HasPrefix(key, refreshTokenKeyPrefix) && rec.Grant != "" {
		if err := s.rdb.Set(ctx, revokedGrantKey(rec.Grant), 1, rec.Expires.Sub(s.now())+time.Minute).Err(); err != nil {
			_ = down(ctx, err)
			return zoidc.ErrServerError().WithParent(err)
		}
	}
	// One key per DEL: the keys hash to different Cluster slots.
	keys := []string{key}
	if rec.AccessID != "" {
		keys = append(keys, accessTokenKey(rec.AccessID))
	}
	for _, k := range keys {
		if err := s.rdb.Del(ctx, k).Err(); err != nil {
			_ = down(ctx, err)
			return zoidc.ErrServerError().WithParent(err)
		}
	}
	return nil
}

// GetRefreshTokenInfo implements op.Storage. The id it gives a refresh
// token is its Redis key, which RevokeToken tells from an access token's id.
func (s *storage) GetRefreshTokenInfo(ctx context.Context, clientID, token string) (string, string, error) {
	key := refreshTokenKey(token)
	rec, err := s.readToken(ctx, key)
	if err != nil || rec.ClientID != clientID {
		return "", "", op.ErrInvalidRefreshToken
	}
	return rec.Queue.Subject, key, nil
}

// TerminateSession implements op.Storage: logging out frees the visitor's
// slot in the room at once.
func (s *storage) TerminateSession(ctx context.Context, userID, clientID string) error {
	c, ok := s.clients.get(clientID)
	if !ok || c.roomGone || userID == "" {
		return nil // no room, no slot to free
	}
	id, err := waitingroom.ParseTicketID(userID)
	if err != nil {
		// A person's subject (a room with an identity provider): their
		// place is looked up and forgotten with the session.
		return s.terminatePerson(ctx, c.room.ID, userID)
	}
	if _, err = s.rooms.EndSession(ctx, c.room.ID, id); err != nil {
		return down(ctx, err)
	}
	return nil
}
