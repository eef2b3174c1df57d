package oidc

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/redis/go-redis/v9"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/anteroom/anteroom/internal/rediskey"
	"github.com/anteroom/anteroom/keys"
	"github.com/anteroom/anteroom/waitingroom"
)

// codeTTL bounds how long an admitted request waits for its code to be
// issued and the code for its exchange (RFC 6749 §4.1.2: at most 10 minutes).
const codeTTL = 5 * time.Minute

// Errors of the queue side of a flow.
var (
	// ErrUnknownRequest is returned for an auth request id we did not issue.
	ErrUnknownRequest = fmt.Errorf("auth request: %w", waitingroom.ErrUnknownRequest)
	// ErrRequestExpired is returned for an auth request older than its room's max wait.
	ErrRequestExpired = fmt.Errorf("auth request: %w", waitingroom.ErrExpired)
	// ErrRequestAnswered is returned when an auth request was answered
	// with its code already.
	ErrRequestAnswered = fmt.Errorf("auth request: %w", waitingroom.ErrAnswered)
)

// storage is Anteroom's op.Storage. Everything it keeps is in Redis with a
// TTL, so any instance can finish a flow that another one started.
type storage struct {
	rdb     redis.UniversalClient
	rooms   *waitingroom.Store
	keys    *keys.Manager
	box     *keys.Box
	clients map[string]*client
	now     func() time.Time
	// onToken is Options.OnToken (nil: not reported).
	onToken func(kind string)
}

func (s *storage) requestRedisKey(id string) string { return rediskey.AuthRequest + requestKey(id) }
func accessTokenKey(id string) string               { return rediskey.AccessToken + id }
func refreshTokenKey(token string) string           { return refreshTokenKeyPrefix + digest(token) }

const refreshTokenKeyPrefix = rediskey.RefreshToken

// revokedGrantKey marks a grant (the tokens bought with one code, and
// those their refresh tokens were rotated into) as revoked until the
// last of them would have expired anyway.
func revokedGrantKey(grant string) string { return rediskey.RevokedGrant + grant }

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// CreateAuthRequest implements op.Storage. It enforces what the library
// leaves to us: PKCE with S256 only, and required for public clients.
func (s *storage) CreateAuthRequest(ctx context.Context, req *zoidc.AuthRequest, _ string) (op.AuthRequest, error) {
	c, ok := s.clients[req.ClientID]
	if !ok {
		return nil, zoidc.ErrInvalidClient().WithDescription("unknown client")
	}
	switch {
	case req.ResponseType != zoidc.ResponseTypeCode:
		// Every client is offered the other OIDC response types (see
		// client.ResponseTypes) so that they end here, with the error
		// RFC 6749 §4.1.2.1 names for them, not unauthorized_client.
		e := zoidc.ErrInvalidRequest().WithDescription("only response_type=code is supported")
		e.ErrorType = "unsupported_response_type"
		return nil, e
	case req.CodeChallenge != "" && req.CodeChallengeMethod != zoidc.CodeChallengeMethodS256:
		return nil, zoidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	case req.CodeChallenge == "" && (c.cfg.Public() || c.cfg.RequirePKCE):
		return nil, zoidc.ErrInvalidRequest().WithDescription("PKCE is required: send code_challenge with code_challenge_method=S256")
	case len(req.State)+len(req.Nonce) > 2048:
		return nil, zoidc.ErrInvalidRequest().WithDescription("state and nonce are too long")
	}
	a := &AuthRequest{
		ClientID:            req.ClientID,
		RedirectURI:         req.RedirectURI,
		State:               req.State,
		Nonce:               req.Nonce,
		Scopes:              req.Scopes,
		ResponseType:        req.ResponseType,
		ResponseMode:        req.ResponseMode,
		CodeChallenge:       req.CodeChallenge,
		CodeChallengeMethod: req.CodeChallengeMethod,
		Prompt:              req.Prompt,
		MaxAge:              req.MaxAge,
		CreatedAt:           s.now(),
	}
	a.ID = sealRequest(s.box, a)
	return a, nil
}

// open opens a sealed request id; it reads nothing from Redis.
func (s *storage) open(id string) (*AuthRequest, *client, error) {
	a, err := openRequest(s.box, id)
	if err != nil {
		return nil, nil, ErrUnknownRequest
	}
	c, ok := s.clients[a.ClientID]
	if !ok {
		return nil, nil, ErrUnknownRequest
	}
	return a, c, nil
}

// pending opens a sealed request id of a visitor still in the queue and
// checks its age against the room's max wait.
func (s *storage) pending(id string) (*AuthRequest, *client, error) {
	a, c, err := s.open(id)
	if err != nil {
		return nil, nil, err
	}
	if !s.now().Before(c.room.WaitStart(a.CreatedAt).Add(c.room.MaxWait)) {
		return nil, nil, ErrRequestExpired
	}
	return a, c, nil
}

// AuthRequestByID implements op.Storage: the sealed request, with the
// admission record from Redis once there is one.
// A visitor admitted just before the max wait ran out still finishes: the
// admission record, not the request's age, decides then.
func (s *storage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	a, c, err := s.open(id)
	if err != nil {
		return nil, err
	}
	rec, err := s.rdb.HGet(ctx, s.requestRedisKey(id), "rec").Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		if !s.now().Before(c.room.WaitStart(a.CreatedAt).Add(c.room.MaxWait)) {
			return nil, ErrRequestExpired
		}
		return a, nil
	case err != nil:
		return nil, down(ctx, fmt.Errorf("read auth request: %w", err))
	}
	var q QueueClaims
	if err := json.Unmarshal(rec, &q); err != nil {
		return nil, fmt.Errorf("decode auth request: %w", err)
	}
	a.Queue = &q
	return a, nil
}

// answerScript records that the ticket passed the queue for a request and
// attaches the request's one code, in one write: the waiting page answers
// the relying party itself, without a hop through the callback.
// KEYS: request record. ARGV: claims JSON, code digest, ttl ms, the code's
// expiry (unix ms, the provider's clock).
// Returns 1, or 0 when the request was answered already.
var answerScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], 'code') == 1 or redis.call('HEXISTS', KEYS[1], 'used') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'rec', ARGV[1], 'code', ARGV[2], 'code_exp', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`)

// answer records the admitted ticket's claims for request id with the digest
// of its code. A request is answered once: ErrRequestAnswered after that.
func (s *storage) answer(ctx context.Context, id string, q QueueClaims, code string) error {
	rec, _ := json.Marshal(q)
	n, err := answerScript.Run(ctx, s.rdb, []string{s.requestRedisKey(id)}, rec, digest(code), codeTTL.Milliseconds(),
		s.now().Add(codeTTL).UnixMilli()).Int()
	if err != nil {
		return down(ctx, fmt.Errorf("answer auth request: %w", err))
	}
	if n == 0 {
		return ErrRequestAnswered
	}
	s.issued(IssuedCode)
	return nil
}

// claimsOf is what the tokens will say of an admitted ticket.
func claimsOf(t waitingroom.Ticket, r waitingroom.Room) QueueClaims {
	return QueueClaims{
		Subject:    t.ID.String(),
		Room:       t.Room,
		Position:   t.Position,
		QueuedAt:   t.JoinedAt,
		AdmittedAt: t.AdmittedAt,
		SessionEnd: t.SessionEnd(r),
	}
}

// saveCodeScript attaches the one code an admitted request may have, with
// its expiry by the provider's clock (ARGV[3], unix ms): the key's TTL
// follows Redis's clock, which is not the one tokens and sessions use.
var saveCodeScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], 'rec') == 0 then return -1 end
if redis.call('HEXISTS', KEYS[1], 'code') == 1 or redis.call('HEXISTS', KEYS[1], 'used') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'code', ARGV[1], 'code_exp', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

// SaveAuthCode implements op.Storage for the library's callback endpoint,
// which the waiting page no longer sends anyone to (it answers with the
// code itself, see Provider.Finish). A request gets one code: a second
// visit cannot mint another.
func (s *storage) SaveAuthCode(ctx context.Context, id, code string) error {
	n, err := saveCodeScript.Run(ctx, s.rdb, []string{s.requestRedisKey(id)}, digest(code), codeTTL.Milliseconds(),
		s.now().Add(codeTTL).UnixMilli()).Int()
	if err != nil {
		return down(ctx, fmt.Errorf("save code: %w", err))
	}
	if n != 1 {
		return zoidc.ErrInvalidRequest().WithDescription("this authorization request has already been answered; start again")
	}
	s.issued(IssuedCode)
	return nil
}

// peekCodeScript looks a code up without consuming it: the library checks
// the client, PKCE and redirect_uri only after this lookup, so consuming
// here would let a wrong secret or verifier burn the visitor's code.
// Returns {'ok', record, expiry ms}, {'used', access id, refresh key,
// tokens' expiry ms} for a replay, or nil.
var peekCodeScript = redis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'code', 'rec', 'used', 'at', 'rt', 'code_exp', 'te')
if h[1] ~= ARGV[1] then return false end
if h[3] then return {'used', h[4] or '', h[5] or '', h[7] or '0'} end
if not h[2] then return false end
return {'ok', h[2], h[6] or '0'}
`)

// consumeCodeScript spends a code once, when tokens are minted from it:
// of concurrent redemptions that all passed validation, one wins here. It
// records the ids of the tokens the code bought (written just before, so a
// replay can always find and revoke them) and drops the claims, which
// nothing reads again. The spent record then lives as long as the sealed
// request id could be replayed, so the same request can never get a second
// code.
// KEYS: request record. ARGV: code digest, expire-at ms, now ms, access
// token id, refresh token key ("" for none), the tokens' expiry ms.
var consumeCodeScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'code') ~= ARGV[1] or redis.call('HEXISTS', KEYS[1], 'used') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'used', 1, 'at', ARGV[4], 'rt', ARGV[5], 'te', ARGV[6])
redis.call('HDEL', KEYS[1], 'rec')
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) - tonumber(ARGV[3]) then
  redis.call('PEXPIREAT', KEYS[1], ARGV[2])
end
return 1
`)

// AuthRequestByCode implements op.Storage. A code presented again after
// its tokens were minted is refused, and every token of its grant is
// revoked (RFC 6749 §4.1.2, RFC 9700 §4.2.1), including those its refresh
// token was rotated into.
func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	id, err := boxCrypto{s.box}.Decrypt(code)
	if err != nil {
		return nil, zoidc.ErrInvalidGrant().WithDescription("invalid code")
	}
	a, _, err := s.open(id)
	if err != nil {
		return nil, zoidc.ErrInvalidGrant().WithDescription("invalid code")
	}
	res, err := peekCodeScript.Run(ctx, s.rdb, []string{s.requestRedisKey(id)}, digest(code)).StringSlice()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, zoidc.ErrInvalidGrant().WithDescription("invalid or expired code")
	case err != nil:
		return nil, down(ctx, fmt.Errorf("redeem code: %w", err))
	}
	if res[0] == "used" {
		te, _ := strconv.ParseInt(res[3], 10, 64)
		a.replay = &codeReplay{expires: time.UnixMilli(te), accessID: res[1], refreshKey: res[2]}
		return a, nil
	}
	// RFC 6749 §4.1.2: a code is short-lived. Its age is judged by the
	// same clock as everything else, not only by the key's TTL.
	// (A record written before expiries were kept has none: its TTL rules.)
	if exp, _ := strconv.ParseInt(res[2], 10, 64); exp > 0 && !s.now().Before(time.UnixMilli(exp)) {
		return nil, zoidc.ErrInvalidGrant().WithDescription("invalid or expired code")
	}
	var q QueueClaims
	if err := json.Unmarshal([]byte(res[1]), &q); err != nil {
		return nil, fmt.Errorf("decode auth request: %w", err)
	}
	a.Queue = &q
	a.code = digest(code)
	return a, nil
}

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

// DeleteAuthRequest implements op.Storage. The library calls it after a
// code exchange, when consumeCodeScript has dropped the claims already; the
// record keeps the code's digest, its "used" mark and the token ids until its
// TTL so that a replayed code can still revoke them.
func (s *storage) DeleteAuthRequest(context.Context, string) error { return nil }

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

// errRefreshReused is readToken's answer for a rotated-out refresh token.
var errRefreshReused = errors.New("refresh token was used already")

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
		room := s.clients[a.ClientID].room
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
	id, err := waitingroom.ParseTicketID(q.Subject)
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

// TerminateSession implements op.Storage: logging out frees the visitor's
// slot in the room at once.
func (s *storage) TerminateSession(ctx context.Context, userID, clientID string) error {
	c, ok := s.clients[clientID]
	if !ok || userID == "" {
		return nil
	}
	id, err := waitingroom.ParseTicketID(userID)
	if err != nil {
		return nil
	}
	if _, err = s.rooms.EndSession(ctx, c.room.ID, id); err != nil {
		return down(ctx, err)
	}
	return nil
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

// signingKey adapts a keys.Key to op.SigningKey.
type signingKey struct{ k keys.Key }

func (s signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return s.k.Algorithm }
func (s signingKey) Key() any                                    { return s.k.Private }
func (s signingKey) ID() string                                  { return s.k.ID }

// publicKey adapts a keys.Key to op.Key.
type publicKey struct{ k keys.Key }

func (p publicKey) ID() string                         { return p.k.ID }
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return p.k.Algorithm }
func (p publicKey) Use() string                        { return "sig" }
func (p publicKey) Key() any                           { return p.k.Public.Key }

// SigningKey implements op.Storage.
func (s *storage) SigningKey(context.Context) (op.SigningKey, error) {
	return signingKey{s.keys.Signing()}, nil
}

// SignatureAlgorithms implements op.Storage: discovery lists the algorithm
// of every published key, so a key of a newly configured algorithm is
// accepted by relying parties that re-read discovery while it is published
// ahead.
func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return s.keys.Algorithms(), nil
}

// KeySet implements op.Storage.
func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	ks := s.keys.Verification()
	out := make([]op.Key, len(ks))
	for i, k := range ks {
		out[i] = publicKey{k}
	}
	return out, nil
}

// GetClientByClientID implements op.Storage.
func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	c, ok := s.clients[id]
	if !ok {
		return nil, fmt.Errorf("unknown client %q", id)
	}
	return c, nil
}

// AuthorizeClientIDSecret implements op.Storage with a constant-time compare.
func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	c, ok := s.clients[id]
	if !ok || c.cfg.Public() {
		return errors.New("invalid client credentials")
	}
	want := sha256.Sum256([]byte(c.cfg.Secret))
	got := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
		return errors.New("invalid client credentials")
	}
	return nil
}

// SetUserinfoFromScopes implements op.Storage; SetUserinfoFromRequest does the work.
func (s *storage) SetUserinfoFromScopes(context.Context, *zoidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest puts the queue claims into the ID token.
func (s *storage) SetUserinfoFromRequest(_ context.Context, info *zoidc.UserInfo, req op.IDTokenRequest, _ []string) error {
	q, _, _, err := grant(req.(op.TokenRequest))
	if err != nil {
		return err
	}
	setUserinfo(info, q)
	return nil
}

func setUserinfo(info *zoidc.UserInfo, q *QueueClaims) {
	info.Subject = q.Subject
	for k, v := range q.Claims() {
		info.AppendClaims(k, v)
	}
}

// SetUserinfoFromToken implements op.Storage. Provider.userinfo answers the
// userinfo endpoint itself (RFC 6750 errors) and reads the token directly.
func (s *storage) SetUserinfoFromToken(ctx context.Context, info *zoidc.UserInfo, tokenID, subject, _ string) error {
	rec, err := s.readToken(ctx, accessTokenKey(tokenID))
	if err != nil {
		return err
	}
	if rec.Queue.Subject != subject {
		return errors.New("token subject mismatch")
	}
	setUserinfo(info, &rec.Queue)
	return nil
}

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

// GetPrivateClaimsFromScopes implements op.Storage; GetPrivateClaimsFromRequest does the work.
func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

// GetPrivateClaimsFromRequest puts the queue claims into JWT access tokens.
func (s *storage) GetPrivateClaimsFromRequest(_ context.Context, req op.TokenRequest, _ []string) (map[string]any, error) {
	q, _, _, err := grant(req)
	if err != nil {
		return nil, err
	}
	return q.Claims(), nil
}

// GetKeyByIDAndClientID implements op.Storage; JWT client authentication is not offered.
func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("jwt profile is not supported")
}

// ValidateJWTProfileScopes implements op.Storage; the JWT profile grant is not offered.
func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("jwt profile is not supported")
}

// Health implements op.Storage.
func (s *storage) Health(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }

// Interface guards.
var (
	_ op.Storage                        = (*storage)(nil)
	_ op.CanSetUserinfoFromRequest      = (*storage)(nil)
	_ op.CanGetPrivateClaimsFromRequest = (*storage)(nil)
	_ op.RefreshTokenRequest            = (*refreshRequest)(nil)
	_ op.AuthRequest                    = (*AuthRequest)(nil)
)
