package waitingroom

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// TicketID is a ticket's random 128-bit identity. It is the visitor's OIDC
// subject, so it is unguessable and says nothing about the visitor.
type TicketID [16]byte

// NewTicketID draws a fresh random id.
func NewTicketID() TicketID {
	var id TicketID
	_, _ = rand.Read(id[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return id
}

// String is the id in unpadded base64url, as used in Redis and as the token subject.
func (id TicketID) String() string { return base64.RawURLEncoding.EncodeToString(id[:]) }

// ParseTicketID reads the String form back, and only it.
func ParseTicketID(s string) (TicketID, error) {
	var id TicketID
	if base64.RawURLEncoding.DecodedLen(len(s)) != len(id) {
		return id, fmt.Errorf("parse ticket id: want %d bytes", len(id))
	}
	for i := 0; i < len(s); i++ {
		// The decoder skips line breaks, which would give one id many
		// spellings.
		if c := s[i]; !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return id, fmt.Errorf("parse ticket id: %q is not base64url", c)
		}
	}
	// Strict: the last character's unused bits must be zero, so that
	// every id has one spelling (it names Redis keys and token subjects).
	if _, err := base64.RawURLEncoding.Strict().Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("parse ticket id: %w", err)
	}
	return id, nil
}

// Ticket is a visitor's place in one room. The caller keeps it in an
// authenticated cookie, which is why a status poll needs no Redis: the
// position is in the ticket, the counter in the process's cache.
type Ticket struct {
	ID   TicketID
	Room string
	// Position is the ticket's place in the queue; 0 for a visitor of the
	// pre-queue until the room opens and draws it (see Counters.Resolve).
	Position int64
	// PreQueue is the arrival number of a visitor who joined before the
	// room opened, 0 for everyone else.
	PreQueue int64
	JoinedAt time.Time
	// AdmittedAt is zero until the ticket has passed the queue.
	AdmittedAt time.Time
	// Skipped records that the counter passed the ticket over while its
	// page was silent (Admit said ErrSkipped): until Store.Released says
	// so, reaching its position does not admit it.
	Skipped bool
	// Epoch is the room's epoch when the ticket joined (Counters.Epoch);
	// 0 for a ticket from before epochs, which is never stale.
	Epoch int64
	// ServingAtJoin is the serving counter when the ticket took its
	// position, so that the waiting page shows progress since the
	// visitor's own join (VisitorStatus.Progress), not since the room
	// began. It rides in the cookie, costing Redis nothing; 0 for a
	// pre-queue ticket (drawn when the counter starts) and for tickets
	// of earlier versions.
	ServingAtJoin int64
	// sessionEnds is when the admitted session ends as Admit recorded it
	// (a scheduled event may give it another length than the room's);
	// zero for a ticket read from a cookie, whose session is the room's.
	sessionEnds time.Time
}

// Stale reports whether the ticket waits in an earlier epoch of the room
// than c's: Redis lost the room, nobody remembered it, and the position
// means nothing any more. An admitted ticket is never stale: its cookie
// proves the admission.
func (t Ticket) Stale(c Counters) bool {
	return !t.Admitted() && t.Epoch != 0 && c.Epoch != 0 && t.Epoch != c.Epoch
}

// Admitted reports whether the ticket has passed the queue.
func (t Ticket) Admitted() bool { return !t.AdmittedAt.IsZero() }

// Expired reports whether the ticket can no longer be used in room r at now:
// a waiting ticket older than the room's max wait, or an admitted one whose
// session has ended. Expired tickets join again at the back.
func (t Ticket) Expired(r Room, now time.Time) bool {
	return !now.Before(t.ExpiresAt(r))
}

// ExpiresAt is when the ticket stops being usable in room r: the end of its
// session once admitted, else max wait after it joined, or after the room
// opened for a visitor of the pre-queue (whose wait starts at opening).
func (t Ticket) ExpiresAt(r Room) time.Time {
	if t.Admitted() {
		return t.AdmittedAt.Add(r.SessionTTL)
	}
	return r.WaitStart(t.JoinedAt).Add(r.MaxWait)
}

// SessionEnd is when an admitted ticket's session ends in room r.
func (t Ticket) SessionEnd(r Room) time.Time {
	if !t.sessionEnds.IsZero() {
		return t.sessionEnds
	}
	return t.AdmittedAt.Add(r.SessionTTL)
}

// ticketVersion 4 added ServingAtJoin, 3 the epoch; tickets of versions 3
// and 2 still decode, with ServingAtJoin 0 (and epoch 0 for 2).
const (
	ticketVersion   = 4
	ticketVersionV3 = 3
	ticketVersionV2 = 2
	// epochBytes is the epoch's size in the encoding (epochBits).
	epochBytes = epochBits / 8
)

// flagSkipped marks Ticket.Skipped in the encoding's flags.
const flagSkipped = 1

// MarshalBinary encodes the ticket compactly (it rides in a cookie on every
// poll): version, id, varint position, unix-millisecond times, pre-queue
// number, flags, serving at join, the epoch in 6 bytes, room last.
func (t Ticket) MarshalBinary() ([]byte, error) {
	if t.Epoch < 0 || t.Epoch >= 1<<epochBits {
		return nil, fmt.Errorf("marshal ticket: epoch %d out of range", t.Epoch)
	}
	b := make([]byte, 0, 1+16+6*binary.MaxVarintLen64+epochBytes+len(t.Room))
	b = append(b, ticketVersion)
	b = append(b, t.ID[:]...)
	b = binary.AppendVarint(b, t.Position)
	b = binary.AppendVarint(b, t.JoinedAt.UnixMilli())
	var admitted int64
	if t.Admitted() {
		admitted = t.AdmittedAt.UnixMilli()
	}
	b = binary.AppendVarint(b, admitted)
	b = binary.AppendVarint(b, t.PreQueue)
	var flags int64
	if t.Skipped {
		flags |= flagSkipped
	}
	b = binary.AppendVarint(b, flags)
	b = binary.AppendVarint(b, t.ServingAtJoin)
	var e [8]byte
	binary.BigEndian.PutUint64(e[:], uint64(t.Epoch))
	b = append(b, e[8-epochBytes:]...)
	b = append(b, t.Room...)
	return b, nil
}

var errBadTicket = errors.New("malformed ticket")

// UnmarshalBinary decodes what MarshalBinary wrote.
func (t *Ticket) UnmarshalBinary(b []byte) error {
	if len(b) < 1+16 || (b[0] != ticketVersion && b[0] != ticketVersionV3 && b[0] != ticketVersionV2) {
		return errBadTicket
	}
	version := b[0]
	var nt Ticket
	copy(nt.ID[:], b[1:17])
	b = b[17:]
	var vals [6]int64
	n := len(vals)
	if version != ticketVersion {
		n-- // no serving at join
	}
	for i := range vals[:n] {
		v, n := binary.Varint(b)
		if n <= 0 {
			return errBadTicket
		}
		vals[i] = v
		b = b[n:]
	}
	position, joined, admitted, prequeue, flags, servingAtJoin := vals[0], vals[1], vals[2], vals[3], vals[4], vals[5]
	if version != ticketVersionV2 {
		if len(b) < epochBytes {
			return errBadTicket
		}
		var e [8]byte
		copy(e[8-epochBytes:], b[:epochBytes])
		nt.Epoch = int64(binary.BigEndian.Uint64(e[:]))
		b = b[epochBytes:]
	}
	if position < 0 || prequeue < 0 || (position == 0 && prequeue == 0) || flags&^flagSkipped != 0 || len(b) == 0 ||
		servingAtJoin < 0 {
		return errBadTicket
	}
	nt.ServingAtJoin = servingAtJoin
	nt.Position = position
	nt.PreQueue = prequeue
	nt.Skipped = flags&flagSkipped != 0
	nt.JoinedAt = time.UnixMilli(joined)
	if admitted != 0 {
		nt.AdmittedAt = time.UnixMilli(admitted)
	}
	nt.Room = string(b)
	*t = nt
	return nil
}
