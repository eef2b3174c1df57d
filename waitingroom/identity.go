package waitingroom

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Identity-bound places (rooms[].identity): one place per person, whatever
// the browser. The caller (package web, after the site's own provider
// vouched for the person) names the person by a stable key; the room keeps
// one record per key, {r:<room>}:i:<120-bit hash of the key>, holding the
// person's ticket as Ticket.MarshalBinary writes it, with a TTL that ends
// when the ticket can no longer be used. Every browser of the person gets a
// cookie with a copy of that ticket, so a status poll still needs no Redis,
// and the admission, the session and the max_active slot are the ticket's,
// shared by all of them.
//
// Storage contract. A person's record is written only once they take a
// place (nothing while they sign in). Two browsers of one person signing in
// at once must not take two places: the first claims the record (SET of a
// marker, compare-and-set in claimIdentityScript) before it joins, and the
// other waits for the record to hold the ticket. A claim whose holder died
// runs out after identityClaimTTL. Every write is a script or one command
// on the one key, so it may be repeated.

// identityClaim marks a record whose person is joining right now.
const identityClaim = "-"

// identityClaimTTL bounds a claim whose instance died mid-join.
const identityClaimTTL = 10 * time.Second

// identityPoll is how often a browser waiting for another's join looks.
const identityPoll = 50 * time.Millisecond

// ErrIdentityBusy is returned when another join of the same person held
// the claim for longer than a join can take.
var ErrIdentityBusy = errors.New("another sign-in of the same person is joining")

// identityKey names the record of person in room k.
func (k roomKeys) identity(person string) string {
	sum := sha256.Sum256([]byte(person))
	return k.tag + "i:" + base64.RawURLEncoding.EncodeToString(sum[:15])
}

// claimIdentityScript takes the record for a join when it holds what the
// caller read (ARGV[1]; "" for nothing): the compare-and-set that lets one
// of two concurrent sign-ins of a person join.
// KEYS: record. ARGV: value read, claim TTL ms, claim marker. Returns 1 or 0.
var claimIdentityScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if (v == false and ARGV[1] == '') or v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[2])
  return 1
end
return 0
`)

// setIdentityScript replaces the record when it holds the ticket named
// ARGV[1] (its 16 raw id bytes, which follow the version byte) or the
// claim marker; it never replaces another ticket.
// KEYS: record. ARGV: ticket id bytes, new value ("": delete), TTL ms, marker.
var setIdentityScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == false then return 0 end
if v ~= ARGV[4] and string.sub(v, 2, 17) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1
`)

// JoinIdentity places person (a stable key naming one person, such as
// upstream.Identity.Key) in room for request and binds the request to the
// person's ticket: the ticket they hold already, from any browser, while it
// is usable; else a new place. Errors are Join's, or ErrIdentityBusy.
func (s *Store) JoinIdentity(ctx context.Context, room, request, person string, opts ...JoinOption) (Joined, error) {
	r, err := s.room(room)
	if err != nil {
		return Joined{}, err
	}
	key := s.keys(room).identity(person)
	deadline := s.now().Add(identityClaimTTL)
	for {
		v, err := s.rdb.Get(ctx, key).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return Joined{}, fmt.Errorf("join room %q: %w", room, err)
		}
		if v == identityClaim {
			if !s.now().Before(deadline) {
				return Joined{}, ErrIdentityBusy
			}
			select {
			case <-ctx.Done():
				return Joined{}, ctx.Err()
			case <-time.After(identityPoll):
			}
			continue
		}
		var have Ticket
		if v != "" && have.UnmarshalBinary([]byte(v)) == nil && have.Room == room && !have.Expired(r, s.now()) {
			j, err := s.Join(ctx, room, request, &have, opts...)
			if err != nil {
				return Joined{}, err
			}
			if j.New {
				// Redis lost the room: Join moved the request to a new
				// place, which is the person's now.
				if err := s.setIdentity(ctx, r, key, have.ID, j.Ticket); err != nil {
					return Joined{}, err
				}
			}
			return j, nil
		}
		ok, err := claimIdentityScript.Run(ctx, s.rdb, []string{key}, v, identityClaimTTL.Milliseconds(), identityClaim).Int()
		if err != nil {
			return Joined{}, fmt.Errorf("join room %q: %w", room, err)
		}
		if ok != 1 {
			continue // another sign-in of the person got there first
		}
		j, err := s.Join(ctx, room, request, nil, opts...)
		if err != nil {
			_ = setIdentityScript.Run(context.WithoutCancel(ctx), s.rdb, []string{key}, "", "", 0, identityClaim).Err()
			return Joined{}, err
		}
		if err := s.setIdentity(ctx, r, key, TicketID{}, j.Ticket); err != nil {
			return Joined{}, err
		}
		return j, nil
	}
}

// setIdentity records t as the person's ticket where the record holds
// ticket was (or the claim marker), until t can no longer be used.
func (s *Store) setIdentity(ctx context.Context, r Room, key string, was TicketID, t Ticket) error {
	b, err := t.MarshalBinary()
	if err != nil {
		return err
	}
	ttl := max(1, t.ExpiresAt(r).Sub(s.now()).Milliseconds())
	if err := setIdentityScript.Run(ctx, s.rdb, []string{key}, string(was[:]), b, ttl, identityClaim).Err(); err != nil {
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
	return s.setIdentity(ctx, r, s.keys(t.Room).identity(person), t.ID, t)
}

// ForgetIdentity removes person's record in room while it names ticket id:
// the ticket's session is over (or was ended), and the person's next
// sign-in takes a new place.
func (s *Store) ForgetIdentity(ctx context.Context, room, person string, id TicketID) error {
	if _, err := s.room(room); err != nil {
		return err
	}
	if err := setIdentityScript.Run(ctx, s.rdb, []string{s.keys(room).identity(person)}, string(id[:]), "", 0, "\x00").Err(); err != nil {
		return fmt.Errorf("forget place in room %q: %w", room, err)
	}
	return nil
}

// IdentityTicket returns the ticket person holds in room, if any (the
// relying party's end_session names the person, not a browser).
func (s *Store) IdentityTicket(ctx context.Context, room, person string) (Ticket, bool, error) {
	if _, err := s.room(room); err != nil {
		return Ticket{}, false, err
	}
	v, err := s.rdb.Get(ctx, s.keys(room).identity(person)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Ticket{}, false, nil
	}
	if err != nil {
		return Ticket{}, false, fmt.Errorf("read place in room %q: %w", room, err)
	}
	var t Ticket
	if t.UnmarshalBinary(v) != nil || t.Room != room {
		return Ticket{}, false, nil
	}
	return t, true, nil
}
