package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/anteroom/anteroom/waitingroom"
)

// The authorization code (RFC 6749 §4.1): attached to an admitted request,
// looked up at the token endpoint, spent once.
//
// Storage contract. A request's record, anteroom:ar:<requestKey>, is one
// hash, and every write to it is one Lua script on that one key, atomic on
// its own and on a Cluster:
//
//   - answer (the waiting page's Pending.Finish) and SaveAuthCode (the
//     library's callback) attach the request's one code: the check that it
//     has none and the write are one script, so a request never gets two.
//     It may be repeated: a write sent again after its reply was lost
//     (go-redis retries a command whose connection failed) finds its own
//     code, which is random per answer, and succeeds again; another code
//     finds the request answered.
//   - AuthRequestByCode only looks (peekCodeScript), so it may be repeated;
//     the library checks the client, PKCE and redirect_uri after it, and a
//     failed check must not burn the visitor's code.
//   - The code is spent in mint (token.go) after the tokens are stored:
//     consumeCodeScript compares the code's digest and sets the used mark
//     in one step, so of concurrent redemptions exactly one wins. It may be
//     repeated: the mark names the access token the redemption minted
//     (random per redemption), so a consume sent again after its reply was
//     lost recognises its own mark instead of counting as a second
//     redemption and revoking the grant it has just bought.
//   - The spent record keeps the ids of the tokens the code bought for as
//     long as the sealed request id could be replayed, so that a replay
//     revokes them (RFC 6749 §4.1.2, RFC 9700 §4.2.1).

// codeTTL bounds how long an admitted request waits for its code to be
// issued and the code for its exchange (RFC 6749 §4.1.2: at most 10 minutes).
const codeTTL = 5 * time.Minute

// answerScript records that the ticket passed the queue for a request and
// attaches the request's one code, in one write: the waiting page answers
// the relying party itself, without a hop through the callback.
// KEYS: request record. ARGV: claims JSON, code digest, ttl ms, the code's
// expiry (unix ms, the provider's clock).
// Returns 1, or 0 when the request was answered already (with another
// code: the same code is this write sent again).
var answerScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], 'used') == 1 then return 0 end
local had = redis.call('HGET', KEYS[1], 'code')
if had then
  if had == ARGV[2] then return 1 end
  return 0
end
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
// Returns 1, or 0 when another redemption spent the code (a mark naming
// this access token is this consume sent again: 1).
var consumeCodeScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'code') ~= ARGV[1] then return 0 end
if redis.call('HEXISTS', KEYS[1], 'used') == 1 then
  if redis.call('HGET', KEYS[1], 'at') == ARGV[4] then return 1 end
  return 0
end
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

// DeleteAuthRequest implements op.Storage. The library calls it after a
// code exchange, when consumeCodeScript has dropped the claims already; the
// record keeps the code's digest, its "used" mark and the token ids until its
// TTL so that a replayed code can still revoke them.
func (s *storage) DeleteAuthRequest(context.Context, string) error { return nil }
