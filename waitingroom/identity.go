package waitingroom

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Identity-bound places (rooms[].identity): one place per person, whatever
// the browser. The caller (package web, after the site's own provider
// vouched for the person) names the person by a stable key; the room keeps
// one record per person: a field in one of 256 hashes,
// {r:<room>}:i:<the first byte of a hash of the key, in hex>, named by the
// next 14 bytes of that hash, holding when the record expires (6 bytes,
// big-endian unix ms, so that Lua compares expiries as strings) and the
// person's ticket as Ticket.MarshalBinary writes it. Every browser of the
// person gets a cookie with a copy of that ticket, so a status poll still
// needs no Redis, and the admission, the session and the max_active slot
// are the ticket's, shared by all of them.
//
// A field in a hash costs about 60% of a key with a TTL (README: what a
// waiting person costs), but fields have no TTL of their own: every write
// sweeps a few random fields of its hash and deletes those expired
// (sweepLua), and a hash expires as a whole when its last record would.
//
// Storage contract. A person's record is written only once they take a
// place (nothing while they sign in). Two browsers of one person signing in
// at once must not take two places: the first claims the record (a marker
// with its own expiry, compare-and-set in claimIdentityScript) before it
// joins, and the other waits for the record to hold the ticket. A claim
// whose holder died runs out after identityClaimTTL. Every write is one
// script on one hash, so it may be repeated.

// identityClaim starts the value of a record whose person is joining.
const identityClaim = "-"

// identityClaimTTL bounds a claim whose instance died mid-join.
const identityClaimTTL = 10 * time.Second

// identityPoll is how often a browser waiting for another's join looks.
const identityPoll = 50 * time.Millisecond

// ErrIdentityBusy is returned when another join of the same person held
// the claim for longer than a join can take.
var ErrIdentityBusy = errors.New("another sign-in of the same person is joining")

// identity locates person's record in room k: its hash and field.
func (k roomKeys) identity(person string) (key, field string) {
	sum := sha256.Sum256([]byte(person))
	return k.tag + "i:" + hex.EncodeToString(sum[:1]), string(sum[1:15])
}

// expiryBytes is t in unix ms, 6 bytes big-endian: ordered as strings.
func expiryBytes(t time.Time) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(max(0, t.UnixMilli())))
	return string(b[2:])
}

// sweepLua deletes the expired among a few random fields of the hash
// KEYS[1] (ARGV[1]: now, as expiryBytes), and keeps the hash as long as
// ARGV[2] ms at least.
const sweepLua = `
local some = redis.call('HRANDFIELD', KEYS[1], 3, 'WITHVALUES')
for i = 1, #some, 2 do
  local v = some[i + 1]
  local at = string.sub(v, 1, 6)
  if string.sub(v, 1, 1) == '-' then at = string.sub(v, 2, 7) end
  if at < ARGV[1] then redis.call('HDEL', KEYS[1], some[i]) end
end
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
`

// claimIdentityScript takes the record for a join when it holds what the
// caller read (ARGV[4]; "" for nothing): the compare-and-set that lets one
// of two concurrent sign-ins of a person join.
// KEYS: hash. ARGV: now, claim TTL ms, field, value read, claim value.
// Returns 1 or 0.
var claimIdentityScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], ARGV[3])
if (v == false and ARGV[4] == '') or v == ARGV[4] then
  redis.call('HSET', KEYS[1], ARGV[3], ARGV[5])
` + sweepLua + `
  return 1
end
return 0
`)

// setIdentityScript replaces the record when it holds the ticket named
// ARGV[4] (its 16 raw id bytes, which follow the expiry and the version
// byte) or a claim; it never replaces another person's ticket.
// KEYS: hash. ARGV: now, TTL ms, field, ticket id bytes, new value ("":
// delete), whether a claim may be replaced ("1" or "").
var setIdentityScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], ARGV[3])
if v == false then return 0 end
local claimed = string.sub(v, 1, 1) == '-'
if not (claimed and ARGV[6] == '1') and (claimed or string.sub(v, 8, 23) ~= ARGV[4]) then return 0 end
if ARGV[5] == '' then
  redis.call('HDEL', KEYS[1], ARGV[3])
  return 1
end
redis.call('HSET', KEYS[1], ARGV[3], ARGV[5])
` + sweepLua + `
return 1
`)

// decodeRecord reads a record's value: a ticket, or a claim (claimed) that
// lasts until until.
func decodeRecord(v string) (t Ticket, until time.Time, claimed, ok bool) {
	if strings.HasPrefix(v, identityClaim) {
		v = v[1:]
		claimed = true
	}
	if len(v) < 6 {
		return Ticket{}, time.Time{}, false, false
	}
	var b [8]byte
	copy(b[2:], v[:6])
	until = time.UnixMilli(int64(binary.BigEndian.Uint64(b[:])))
	if claimed {
		return Ticket{}, until, true, true
	}
	if t.UnmarshalBinary([]byte(v[6:])) != nil {
		return Ticket{}, time.Time{}, false, false
	}
	return t, until, false, true
}

// JoinIdentity places person (a stable key naming one person, such as
// upstream.Identity.Key) in room for request and binds the request to the
// person's ticket: the ticket they hold already, from any browser, while it
// is usable; else a new place. Errors are Join's, or ErrIdentityBusy.
func (s *Store) JoinIdentity(ctx context.Context, room, request, person string, opts ...JoinOption) (Joined, error) {
	r, err := s.room(room)
	if err != nil {
		return Joined{}, err
	}
	key, field := s.keys(room).identity(person)
	deadline := s.now().Add(identityClaimTTL)
	for {
		v, err := s.rdb.HGet(ctx, key, field).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return Joined{}, fmt.Errorf("join room %q: %w", room, err)
		}
		now := s.now()
		have, until, claimed, ok := decodeRecord(v)
		if ok && claimed && now.Before(until) {
			if !now.Before(deadline) {
				return Joined{}, ErrIdentityBusy
			}
			select {
			case <-ctx.Done():
				return Joined{}, ctx.Err()
			case <-time.After(identityPoll):
			}
			continue
		}
		if ok && !claimed && have.Room == room && !have.Expired(r, now) {
			j, err := s.Join(ctx, room, request, &have, opts...)
			if err != nil {
				return Joined{}, err
			}
			if j.New {
				// Redis lost the room: Join moved the request to a new
				// place, which is the person's now.
				if err := s.setIdentity(ctx, r, key, field, have.ID, j.Ticket, false); err != nil {
					return Joined{}, err
				}
			}
			return j, nil
		}
		claim := identityClaim + expiryBytes(now.Add(identityClaimTTL))
		n, err := claimIdentityScript.Run(ctx, s.rdb, []string{key}, expiryBytes(now), identityClaimTTL.Milliseconds(),
			field, v, claim).Int()
		if err != nil {
			return Joined{}, fmt.Errorf("join room %q: %w", room, err)
		}
		if n != 1 {
			continue // another sign-in of the person got there first
		}
		j, err := s.Join(ctx, room, request, nil, opts...)
		if err != nil {
			_ = setIdentityScript.Run(context.WithoutCancel(ctx), s.rdb, []string{key}, expiryBytes(now), 0, field, "", "", "1").Err()
			return Joined{}, err
		}
		if err := s.setIdentity(ctx, r, key, field, TicketID{}, j.Ticket, true); err != nil {
			return Joined{}, err
		}
		return j, nil
	}
}

// setIdentity records t as the person's ticket where the record holds
// ticket was (or, with claimed, this sign-in's claim), until t can no
// longer be used.
func (s *Store) setIdentity(ctx context.Context, r Room, key, field string, was TicketID, t Ticket, claimed bool) error {
	b, err := t.MarshalBinary()
	if err != nil {
		return err
	}
	now := s.now()
	until := t.ExpiresAt(r)
	ttl := max(1, until.Sub(now).Milliseconds())
	replaceClaim := ""
	if claimed {
		replaceClaim = "1"
	}
	if err := setIdentityScript.Run(ctx, s.rdb, []string{key}, expiryBytes(now), ttl, field, string(was[:]),
		expiryBytes(until)+string(b), replaceClaim).Err(); err != nil {
		return fmt.Errorf("record place in room %q: %w", r.ID, err)
	}
	return nil
}

// IdentityAdmitted records that person's ticket t was admitted, so that
// their other browsers hold the admission too, until the session ends.
// A record that names another ticket is left alone.
func (s *Store) IdentityAdmitted(ctx context.Context, person string, t Ticket) error {
	r, err := s.room(t.Room)
	if err != nil {
		return err
	}
	key, field := s.keys(t.Room).identity(person)
	return s.setIdentity(ctx, r, key, field, t.ID, t, false)
}

// ForgetIdentity removes person's record in room while it names ticket id:
// the ticket's session is over (or was ended), and the person's next
// sign-in takes a new place.
func (s *Store) ForgetIdentity(ctx context.Context, room, person string, id TicketID) error {
	if _, err := s.room(room); err != nil {
		return err
	}
	key, field := s.keys(room).identity(person)
	if err := setIdentityScript.Run(ctx, s.rdb, []string{key}, expiryBytes(s.now()), 0, field, string(id[:]), "", "").Err(); err != nil {
		return fmt.Errorf("forget place in room %q: %w", room, err)
	}
	return nil
}

// IdentityTicket returns the ticket person holds in room, if any (the
// relying party's end_session names the person, not a browser).
func (s *Store) IdentityTicket(ctx context.Context, room, person string) (Ticket, bool, error) {
	r, err := s.room(room)
	if err != nil {
		return Ticket{}, false, err
	}
	key, field := s.keys(room).identity(person)
	v, err := s.rdb.HGet(ctx, key, field).Result()
	if errors.Is(err, redis.Nil) {
		return Ticket{}, false, nil
	}
	if err != nil {
		return Ticket{}, false, fmt.Errorf("read place in room %q: %w", room, err)
	}
	t, _, claimed, ok := decodeRecord(v)
	if !ok || claimed || t.Room != room || t.Expired(r, s.now()) {
		return Ticket{}, false, nil
	}
	return t, true, nil
}
