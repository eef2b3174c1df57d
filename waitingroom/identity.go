package waitingroom

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
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
// A field in a hash costs about a third of a key with a TTL (README: what a
// waiting person costs), but fields have no TTL of their own: every write
// sweeps a few random fields of its hash and deletes those expired
// (setIdentityScript), and a hash expires as a whole when its last record
// would.
//
// Storage contract. A person's record is written only once they take a
// place (nothing while they sign in). Two browsers of one person signing in
// at once must not take two places: the first claims the record (a marker
// with its own expiry, compare-and-set in setIdentityScript) before it
// joins, and the other waits for the record to hold the ticket. A claim
// whose holder died runs out after identityClaimTTL. Every write is one
// script on one hash that changes the record only if it is still what was
// read, so a write sent again after its reply was lost changes nothing.

// identityClaim follows the expiry in the value of a record whose person
// is joining (a ticket's encoding starts with its version byte instead).
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

// expiryBytes is t in unix ms, 6 bytes big-endian: ordered as strings, so
// that a value, which starts with its expiry, is less than now's exactly
// when it has expired.
func expiryBytes(t time.Time) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(max(0, t.UnixMilli())))
	return string(b[2:])
}

// setIdentityScript is the one write to a person's record: it replaces
// the value (deletes it, for "") only if it is still what the caller read
// (ARGV[4]; "" for none), so that of concurrent sign-ins of one person one
// claims the record, and nobody overwrites a record that changed since.
// Records have no TTL of their own (fields of a hash): each write deletes
// the expired among a few random fields of the hash, and keeps the hash as
// long as its new record needs.
// KEYS: hash. ARGV: now (expiryBytes), TTL ms, field, value read, new value.
// Returns 1, or 0 when the record changed since it was read.
var setIdentityScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], ARGV[3]) or ''
if v ~= ARGV[4] then return 0 end
if ARGV[5] == '' then
  redis.call('HDEL', KEYS[1], ARGV[3])
  return 1
end
redis.call('HSET', KEYS[1], ARGV[3], ARGV[5])
local some = redis.call('HRANDFIELD', KEYS[1], 3, 'WITHVALUES')
for i = 1, #some, 2 do
  if some[i + 1] < ARGV[1] then redis.call('HDEL', KEYS[1], some[i]) end
end
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
`)

// decodeRecord reads a record's value: a ticket, or a claim (claimed), and
// when it expires.
func decodeRecord(v string) (t Ticket, until time.Time, claimed, ok bool) {
	if len(v) < 7 {
		return Ticket{}, time.Time{}, false, false
	}
	var b [8]byte
	copy(b[2:], v[:6])
	until = time.UnixMilli(int64(binary.BigEndian.Uint64(b[:])))
	if v[6:] == identityClaim {
		return Ticket{}, until, true, true
	}
	if t.UnmarshalBinary([]byte(v[6:])) != nil {
		return Ticket{}, time.Time{}, false, false
	}
	return t, until, false, true
}

// casIdentity runs setIdentityScript; it reports whether the record was
// still old.
func (s *Store) casIdentity(ctx context.Context, key, field, old, value string, ttl time.Duration) (bool, error) {
	n, err := setIdentityScript.Run(ctx, s.rdb, []string{key}, expiryBytes(s.now()), max(1, ttl.Milliseconds()),
		field, old, value).Int()
	return n == 1, err
}

// ticketRecord is t's record: its expiry, then the ticket.
func ticketRecord(r Room, t Ticket) (string, error) {
	b, err := t.MarshalBinary()
	if err != nil {
		return "", err
	}
	return expiryBytes(t.ExpiresAt(r)) + string(b), nil
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
				if err := s.recordIdentity(ctx, r, key, field, v, j.Ticket); err != nil {
					return Joined{}, err
				}
			}
			return j, nil
		}
		claim := expiryBytes(now.Add(identityClaimTTL)) + identityClaim
		won, err := s.casIdentity(ctx, key, field, v, claim, identityClaimTTL)
		if err != nil {
			return Joined{}, fmt.Errorf("join room %q: %w", room, err)
		}
		if !won {
			continue // another sign-in of the person got there first
		}
		j, err := s.Join(ctx, room, request, nil, opts...)
		if err != nil {
			_, _ = s.casIdentity(context.WithoutCancel(ctx), key, field, claim, "", 0)
			return Joined{}, err
		}
		if err := s.recordIdentity(ctx, r, key, field, claim, j.Ticket); err != nil {
			return Joined{}, err
		}
		return j, nil
	}
}

// recordIdentity replaces the record old (as read) with t's, until t can
// no longer be used.
func (s *Store) recordIdentity(ctx context.Context, r Room, key, field, old string, t Ticket) error {
	value, err := ticketRecord(r, t)
	if err != nil {
		return err
	}
	if _, err := s.casIdentity(ctx, key, field, old, value, t.ExpiresAt(r).Sub(s.now())); err != nil {
		return fmt.Errorf("record place in room %q: %w", r.ID, err)
	}
	return nil
}

// updateIdentity applies change to person's record while it names ticket
// id: with a ticket, the record becomes that ticket's; with nil, it goes.
// A record naming another ticket (or none) is left alone.
func (s *Store) updateIdentity(ctx context.Context, r Room, person string, id TicketID, t *Ticket) error {
	key, field := s.keys(r.ID).identity(person)
	for range 3 {
		v, err := s.rdb.HGet(ctx, key, field).Result()
		if errors.Is(err, redis.Nil) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("update place in room %q: %w", r.ID, err)
		}
		have, _, claimed, ok := decodeRecord(v)
		if !ok || claimed || have.ID != id {
			return nil
		}
		value, ttl := "", time.Duration(0)
		if t != nil {
			if value, err = ticketRecord(r, *t); err != nil {
				return err
			}
			ttl = t.ExpiresAt(r).Sub(s.now())
		}
		won, err := s.casIdentity(ctx, key, field, v, value, ttl)
		if err != nil {
			return fmt.Errorf("update place in room %q: %w", r.ID, err)
		}
		if won {
			return nil
		}
	}
	return nil // changed under us three times: another browser's update stands
}

// IdentityAdmitted records that person's ticket t was admitted, so that
// their other browsers hold the admission too, until the session ends.
// A record that names another ticket is left alone.
func (s *Store) IdentityAdmitted(ctx context.Context, person string, t Ticket) error {
	r, err := s.room(t.Room)
	if err != nil {
		return err
	}
	return s.updateIdentity(ctx, r, person, t.ID, &t)
}

// ForgetIdentity removes person's record in room while it names ticket id:
// the ticket's session is over (or was ended), and the person's next
// sign-in takes a new place.
func (s *Store) ForgetIdentity(ctx context.Context, room, person string, id TicketID) error {
	r, err := s.room(room)
	if err != nil {
		return err
	}
	return s.updateIdentity(ctx, r, person, id, nil)
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
