package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/anteroom/anteroom/internal/rediskey"
	"github.com/anteroom/anteroom/waitingroom"
)

// Access tokens: minted from a code or a refresh token, read back by
// userinfo, introspection and revocation.
//
// Storage contract. A token is one key, anteroom:at:<id> (its refresh token
// anteroom:rt:<digest>, refresh.go), holding a tokenRecord, with a TTL that
// ends at its expiry, which is never after the visitor's session ends. mint
// writes a grant's keys in one pipeline, not a transaction (they hash to
// different Cluster slots): a failure leaves at most keys no client holds a
// token for, which expire. SET is idempotent, so a write sent again is
// harmless. readToken changes nothing and may be repeated; a token is live
// only while its record, its grant (not revoked, revocation.go) and the
// ticket's session in the room (waitingroom.Store.SessionEnd) all say so.

// accessTokenKey names the record of the access token with id (a JWT's
// jti, or the id sealed in an opaque token).
func accessTokenKey(id string) string { return rediskey.AccessToken + id }

// tokenRecord is what Redis keeps of an access or refresh token, so that
// userinfo, introspection and revocation can tell a live token from a
// revoked one.
type tokenRecord struct {
	ClientID string      `json:"client_id"`
	Scopes   []string    `json:"scopes"`
	Expires  time.Time   `json:"exp"`
	AuthTime time.Time   `json:"auth_time"`
	Queue    QueueClaims `json:"queue"`
	// AccessID is the access token issued with this refresh token.
	AccessID string `json:"access_id,omitempty"`
	// Grant names the code exchange the token descends from (the digest
	// of its auth request): revoking the grant revokes the token.
	Grant string `json:"grant,omitempty"`
	// Used marks a refresh token that was rotated out. It is kept until
	// it would have expired (UsedUntil), so that presenting it again,
	// which means it was stolen or its client is confused, revokes its
	// grant (RFC 9700 §4.14.2). Its Expires is zero: a release that knows
	// no Used reads it as expired.
	Used      bool      `json:"used,omitempty"`
	UsedUntil time.Time `json:"used_until,omitzero"`
	// Rotation tells this instance's own mark from another's: go-redis
	// sends a command again when its reply was lost, and the SET … GET
	// that finds the mark it wrote itself is no reuse.
	Rotation string `json:"rotation,omitempty"`
}

// grant extracts what tokens are minted from: the auth request of a code
// exchange, or the record of a refresh token; and the grant they belong to.
func grant(req op.TokenRequest) (q *QueueClaims, clientID, grantID string, err error) {
	switch r := req.(type) {
	case *AuthRequest:
		if r.Queue == nil {
			return nil, "", "", zoidc.ErrInvalidGrant().WithDescription("visitor has not passed the queue")
		}
		return r.Queue, r.ClientID, requestKey(r.ID), nil
	case *refreshRequest:
		if r.reused {
			return nil, "", "", zoidc.ErrInvalidGrant().WithDescription("refresh token already used")
		}
		return &r.rec.Queue, r.rec.ClientID, r.rec.Grant, nil
	}
	return nil, "", "", fmt.Errorf("unsupported token request %T", req)
}

// mint stores the tokens of req, a code exchange or a refresh: an access
// token and, with withRefresh, a refresh token. A code is spent in the same
// step (consumeCodeScript), after the tokens are stored, so that whoever
// replays the code finds them to revoke; if the code was spent already,
// they are deleted again.
func (s *storage) mint(ctx context.Context, req op.TokenRequest, withRefresh bool) (accessID, refresh string, exp time.Time, err error) {
	if a, ok := req.(*AuthRequest); ok && a.replay != nil {
		// The code's own client, authenticated, presented it again: every
		// token of its grant is revoked (RFC 6749 §4.1.2).
		s.revokeGrant(ctx, requestKey(a.ID), a.replay.expires, a.replay.accessID, a.replay.refreshKey)
		return "", "", time.Time{}, zoidc.ErrInvalidGrant().WithDescription("code already used; its tokens are revoked")
	}
	q, clientID, grantID, err := grant(req)
	if err != nil {
		return "", "", time.Time{}, err
	}
	now := s.now()
	// Tokens never outlive the visitor's session: that is the promise a
	// downstream API relies on when it checks exp.
	exp = q.SessionEnd
	if !now.Before(exp) {
		return "", "", time.Time{}, zoidc.ErrInvalidGrant().WithDescription("the visitor's session has ended")
	}
	accessID = randomToken()
	stored := []string{accessTokenKey(accessID)}
	rec := tokenRecord{ClientID: clientID, Scopes: req.GetScopes(), Expires: exp, AuthTime: q.AdmittedAt, Queue: *q, Grant: grantID}
	access, _ := json.Marshal(rec)
	// One key per SET: the keys hash to different Cluster slots, and a
	// pipeline sends them in one round trip either way.
	pipe := s.rdb.Pipeline()
	pipe.Set(ctx, stored[0], access, exp.Sub(now))
	refreshKey := ""
	if withRefresh {
		refresh = randomToken()
		refreshKey = refreshTokenKey(refresh)
		stored = append(stored, refreshKey)
		rec.AccessID = accessID
		r, _ := json.Marshal(rec)
		pipe.Set(ctx, refreshKey, r, exp.Sub(now))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return "", "", time.Time{}, down(ctx, fmt.Errorf("store tokens: %w", err))
	}
	if a, fromCode := req.(*AuthRequest); fromCode {
		c, ok := s.clients.get(a.ClientID)
		if !ok || c.roomGone {
			// Removed at run time since the code was issued: the grant
			// went with it (RFC 6749 §5.2, invalid_grant).
			for _, k := range stored {
				_ = s.rdb.Del(ctx, k).Err()
			}
			return "", "", time.Time{}, zoidc.ErrInvalidGrant().WithDescription("the client or its waiting room no longer exists")
		}
		room := c.room
		keep := room.WaitStart(a.CreatedAt).Add(room.MaxWait)
		n, err := consumeCodeScript.Run(ctx, s.rdb, []string{s.requestRedisKey(a.ID)}, a.code,
			keep.UnixMilli(), now.UnixMilli(), accessID, refreshKey, exp.UnixMilli()).Int()
		if err != nil || n != 1 {
			for _, k := range stored {
				_ = s.rdb.Del(ctx, k).Err()
			}
		}
		if err != nil {
			return "", "", time.Time{}, down(ctx, fmt.Errorf("consume code: %w", err))
		}
		if n != 1 {
			// A concurrent redemption won: this one is a second use of
			// the code all the same, and revokes what the winner got.
			s.revokeGrant(ctx, grantID, exp, "", "")
			return "", "", time.Time{}, zoidc.ErrInvalidGrant().WithDescription("code already used; its tokens are revoked")
		}
	}
	s.issued(IssuedAccessToken)
	if withRefresh {
		s.issued(IssuedRefreshToken)
	}
	return accessID, refresh, exp, nil
}

// CreateAccessToken implements op.Storage.
func (s *storage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	id, _, exp, err := s.mint(ctx, req, false)
	return id, exp, err
}

func (s *storage) readToken(ctx context.Context, key string) (*tokenRecord, error) {
	b, err := s.rdb.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, errors.New("token is not active")
	}
	if err != nil {
		return nil, down(ctx, fmt.Errorf("read token: %w", err))
	}
	var rec tokenRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("decode token: %w", err)
	}
	if rec.Used {
		if !s.now().Before(rec.UsedUntil) {
			return nil, errors.New("token is not active")
		}
		rec.Expires = rec.UsedUntil
		return &rec, errRefreshReused
	}
	if !s.now().Before(rec.Expires) {
		return nil, errors.New("token is not active")
	}
	if rec.Grant != "" {
		switch n, err := s.rdb.Exists(ctx, revokedGrantKey(rec.Grant)).Result(); {
		case err != nil:
			return nil, down(ctx, fmt.Errorf("read token: %w", err))
		case n > 0:
			return nil, errors.New("token is not active")
		}
	}
	if err := s.sessionLive(ctx, &rec.Queue); err != nil {
		return nil, err
	}
	return &rec, nil
}

// sessionLive checks the ticket's session in the room: a token dies with the
// session, including one the relying party ended through end_session.
func (s *storage) sessionLive(ctx context.Context, q *QueueClaims) error {
	id, err := waitingroom.ParseTicketID(q.TicketID())
	if err != nil {
		return errors.New("token is not active")
	}
	ends, ok, err := s.rooms.SessionEnd(ctx, q.Room, id)
	if err != nil {
		return down(ctx, err)
	}
	if !ok || !s.now().Before(ends) {
		return errors.New("the visitor's session has ended")
	}
	return nil
}
