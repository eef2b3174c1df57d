package waitingroom_test

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/anteroom/anteroom/waitingroom"
)

func mustMarshal(t testing.TB, tk waitingroom.Ticket) []byte {
	t.Helper()
	b, err := tk.MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary(%+v): %v", tk, err)
	}
	return b
}

func sampleTickets() []waitingroom.Ticket {
	id := waitingroom.TicketID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	return []waitingroom.Ticket{
		{ID: id, Room: "launch", Position: 1, JoinedAt: t0},
		{ID: waitingroom.NewTicketID(), Room: "launch", Position: 123456789, JoinedAt: t0, AdmittedAt: t0.Add(90 * time.Minute)},
		{ID: waitingroom.NewTicketID(), Room: "ünïcode room {r:x}", Position: math.MaxInt64, JoinedAt: time.UnixMilli(0), AdmittedAt: time.UnixMilli(1)},
		{ID: waitingroom.TicketID{}, Room: "x", Position: 1, JoinedAt: time.UnixMilli(-1)},
		{ID: id, Room: "launch", PreQueue: 17, JoinedAt: t0},
		{ID: id, Room: "launch", Position: 9, JoinedAt: t0, Skipped: true},
		{ID: id, Room: "launch", Position: 9, JoinedAt: t0, Epoch: 1},
		{ID: id, Room: "launch", Position: 9, JoinedAt: t0, Epoch: 1<<48 - 1},
		{ID: id, Room: "launch", Position: 100_000, JoinedAt: t0, Epoch: 3, ServingAtJoin: 99_000},
	}
}

func TestTicketRoundTrip(t *testing.T) {
	for _, tk := range sampleTickets() {
		b := mustMarshal(t, tk)
		var got waitingroom.Ticket
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatalf("UnmarshalBinary(Marshal(%+v)): %v", tk, err)
		}
		if !sameTicket(got, tk) {
			t.Fatalf("round trip: got %+v, want %+v", got, tk)
		}
	}
}

func TestTicketMarshalCompact(t *testing.T) {
	tk := waitingroom.Ticket{ID: waitingroom.NewTicketID(), Room: "launch", Position: 1_000_000, JoinedAt: t0}
	b := mustMarshal(t, tk)
	// version + id + 6 varints (≤ 10 bytes each) + 6-byte epoch + room
	if len(b) > 1+16+6*binary.MaxVarintLen64+6+len(tk.Room) || b[0] != 4 || !bytes.Equal(b[1:17], tk.ID[:]) || !bytes.HasSuffix(b, []byte("launch")) {
		t.Fatalf("encoding %x does not have the documented shape", b)
	}
	// Times are kept to the millisecond; that is what a cookie carries.
	fine := tk
	fine.JoinedAt = t0.Add(999 * time.Microsecond)
	var got waitingroom.Ticket
	if err := got.UnmarshalBinary(mustMarshal(t, fine)); err != nil || !got.JoinedAt.Equal(t0) {
		t.Fatalf("sub-millisecond time decoded as %v, %v; want %v", got.JoinedAt, err, t0)
	}
	// A zero AdmittedAt stays not admitted.
	if got.Admitted() {
		t.Fatal("a waiting ticket decodes as admitted")
	}
}

func TestTicketUnmarshalRejects(t *testing.T) {
	good := mustMarshal(t, waitingroom.Ticket{ID: waitingroom.NewTicketID(), Room: "launch", Position: 5, JoinedAt: t0})
	head := good[:17]
	withVarints := func(vals ...int64) []byte {
		b := append([]byte(nil), head...)
		for _, v := range vals {
			b = binary.AppendVarint(b, v)
		}
		return b
	}
	cases := map[string][]byte{
		"nil":                                nil,
		"empty":                              {},
		"version only":                       {1},
		"short id":                           good[:16],
		"version 0":                          append([]byte{0}, good[1:]...),
		"version 1":                          append([]byte{1}, good[1:]...),
		"version 5":                          append([]byte{5}, good[1:]...),
		"negative serving at join":           append(append(withVarints(5, t0.UnixMilli(), 0, 0, 0, -1), make([]byte, 6)...), "launch"...),
		"no varints":                         head,
		"truncated varint":                   append(append([]byte(nil), head...), 0x80),
		"one varint":                         withVarints(5),
		"two varints":                        withVarints(5, t0.UnixMilli()),
		"third varint cut":                   append(withVarints(5, t0.UnixMilli()), 0xff),
		"three varints":                      withVarints(5, t0.UnixMilli(), 0),
		"fourth varint cut":                  append(withVarints(5, t0.UnixMilli(), 0), 0xff),
		"overflowing varint":                 append(append([]byte(nil), head...), bytes.Repeat([]byte{0xff}, 11)...),
		"no room":                            withVarints(5, t0.UnixMilli(), 0, 0),
		"zero position, no pre-queue number": append(withVarints(0, t0.UnixMilli(), 0, 0), "launch"...),
		"negative position":                  append(withVarints(-5, t0.UnixMilli(), 0, 0), "launch"...),
		"negative pre-queue number":          append(withVarints(0, t0.UnixMilli(), 0, -3), "launch"...),
		"good without the room":              good[:len(good)-len("launch")],
	}
	for name, b := range cases {
		before := waitingroom.Ticket{Room: "untouched", Position: 42}
		tk := before
		if err := tk.UnmarshalBinary(b); err == nil {
			t.Errorf("%s (%x): accepted as %+v", name, b, tk)
			continue
		}
		if tk != before {
			t.Errorf("%s: a rejected input changed the ticket to %+v", name, tk)
		}
	}
}

// A cookie written before tickets carried the room's epoch (version 2)
// still decodes, with epoch 0, which is never stale; an epoch that does not
// fit 48 bits is refused rather than cut.
func TestTicketVersion2AndEpochRange(t *testing.T) {
	tk := waitingroom.Ticket{ID: waitingroom.NewTicketID(), Room: "launch", Position: 7, JoinedAt: t0, Epoch: 99}
	b := mustMarshal(t, tk)
	// Version 3 is version 4 without the serving at join (one byte for
	// 0) before the epoch; version 2 is version 3 without the epoch's six
	// bytes before the room.
	v3 := append([]byte{3}, b[1:len(b)-len("launch")-6-1]...)
	v3 = append(v3, b[len(b)-len("launch")-6:]...)
	var got waitingroom.Ticket
	if err := got.UnmarshalBinary(v3); err != nil || !sameTicket(got, tk) {
		t.Fatalf("version 3 ticket decoded as %+v, %v; want %+v", got, err, tk)
	}
	v2 := append([]byte{2}, b[1:len(b)-len("launch")-6-1]...)
	v2 = append(v2, "launch"...)
	if err := got.UnmarshalBinary(v2); err != nil {
		t.Fatalf("version 2 ticket: %v", err)
	}
	want := tk
	want.Epoch = 0
	if !sameTicket(got, want) {
		t.Fatalf("version 2 ticket decoded as %+v, want %+v", got, want)
	}
	if got.Stale(waitingroom.Counters{Epoch: 5}) {
		t.Fatal("a ticket without an epoch is stale")
	}
	for _, e := range []int64{-1, 1 << 48} {
		tk.Epoch = e
		if _, err := tk.MarshalBinary(); err == nil {
			t.Errorf("epoch %d marshalled", e)
		}
	}
}

func TestTicketStale(t *testing.T) {
	waiting := waitingroom.Ticket{Room: "launch", Position: 3, JoinedAt: t0, Epoch: 7}
	if waiting.Stale(waitingroom.Counters{Epoch: 7}) || waiting.Stale(waitingroom.Counters{}) {
		t.Fatal("a ticket of the room's epoch (or of a room read without one) is stale")
	}
	if !waiting.Stale(waitingroom.Counters{Epoch: 8}) {
		t.Fatal("a waiting ticket of another epoch is not stale")
	}
	admitted := waiting
	admitted.AdmittedAt = t0
	if admitted.Stale(waitingroom.Counters{Epoch: 8}) {
		t.Fatal("an admitted ticket of another epoch is stale: its cookie proves the admission")
	}
	st := waitingroom.StatusOf(waiting, manualRoom("launch"), waitingroom.Counters{State: waitingroom.StateOpen, Serving: 5, Tail: 9, Epoch: 8}, 0, t0)
	if st.State != waitingroom.VisitorExpired {
		t.Fatalf("status of a stale ticket = %q, want expired (the page reloads and joins again)", st.State)
	}
}

func TestTicketExpired(t *testing.T) {
	r := manualRoom("launch")
	waiting := waitingroom.Ticket{Room: "launch", Position: 1, JoinedAt: t0}
	if waiting.Expired(r, t0.Add(r.MaxWait-time.Millisecond)) || !waiting.Expired(r, t0.Add(r.MaxWait)) {
		t.Fatal("a waiting ticket must expire exactly at JoinedAt + MaxWait")
	}
	admitted := waiting
	admitted.AdmittedAt = t0.Add(r.MaxWait - time.Minute)
	// Admitted, the session TTL counts, not the max wait.
	if admitted.Expired(r, t0.Add(r.MaxWait)) {
		t.Fatal("an admitted ticket expired by its max wait")
	}
	end := admitted.SessionEnd(r)
	if !end.Equal(admitted.AdmittedAt.Add(r.SessionTTL)) {
		t.Fatalf("SessionEnd = %v", end)
	}
	if admitted.Expired(r, end.Add(-time.Millisecond)) || !admitted.Expired(r, end) {
		t.Fatal("an admitted ticket must expire exactly at its session end")
	}
}

func TestTicketID(t *testing.T) {
	seen := map[waitingroom.TicketID]bool{}
	for range 1000 {
		id := waitingroom.NewTicketID()
		if seen[id] {
			t.Fatal("NewTicketID repeated an id")
		}
		seen[id] = true
		s := id.String()
		if len(s) != 22 || strings.ContainsAny(s, "+/=") {
			t.Fatalf("String() = %q, want 22 characters of unpadded base64url", s)
		}
		back, err := waitingroom.ParseTicketID(s)
		if err != nil || back != id {
			t.Fatalf("ParseTicketID(%q) = %v, %v", s, back, err)
		}
	}
	for _, bad := range []string{"", "short", strings.Repeat("A", 21), strings.Repeat("A", 23), strings.Repeat("A", 21) + "*", strings.Repeat("A", 20) + "=="} {
		if _, err := waitingroom.ParseTicketID(bad); err == nil {
			t.Errorf("ParseTicketID(%q) accepted", bad)
		}
	}
}

// FuzzTicketUnmarshal: UnmarshalBinary never panics, and whatever it accepts
// re-marshals to bytes that decode to the same ticket.
func FuzzTicketUnmarshal(f *testing.F) {
	for _, tk := range sampleTickets() {
		f.Add(mustMarshal(f, tk))
	}
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add(append([]byte{1}, make([]byte, 16)...))
	f.Add(append(append([]byte{1}, make([]byte, 16)...), 0x80, 0x00, 0x02, 0x02, 'r'))
	f.Fuzz(func(t *testing.T, b []byte) {
		var tk waitingroom.Ticket
		if err := tk.UnmarshalBinary(b); err != nil {
			return
		}
		if tk.Position < 0 || (tk.Position == 0 && tk.PreQueue <= 0) || tk.Room == "" {
			t.Fatalf("accepted %x as %+v: a position (or a pre-queue number) and a room must be set", b, tk)
		}
		again, err := tk.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary of an accepted ticket %+v: %v", tk, err)
		}
		var back waitingroom.Ticket
		if err := back.UnmarshalBinary(again); err != nil {
			t.Fatalf("re-marshalled %x of accepted %x does not decode: %v", again, b, err)
		}
		if !sameTicket(back, tk) {
			t.Fatalf("accepted %x as %+v, but its re-marshalled %x decodes to %+v", b, tk, again, back)
		}
	})
}

// FuzzParseTicketID: a ticket id (a token's subject, a Redis key part)
// parses only from its one canonical spelling, and back to it.
func FuzzParseTicketID(f *testing.F) {
	f.Add(waitingroom.NewTicketID().String())
	f.Add(strings.Repeat("A", 21) + "B")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := waitingroom.ParseTicketID(s)
		if err == nil && id.String() != s {
			t.Fatalf("ParseTicketID(%q) = %v, which is spelt %q", s, id, id.String())
		}
	})
}
