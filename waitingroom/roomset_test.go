package waitingroom_test

import (
	"errors"
	"slices"

	"github.com/anteroom/anteroom/waitingroom"
)

// Rooms added, changed and removed at run time (SetRooms): what an
// operator's API call does to every instance's store.
func testSetRooms(e *env) {
	s := e.store(rateRoom("launch", 60))
	cache := waitingroom.NewCache(s, 0)
	if _, err := s.Join(e.ctx, "sale", "r0", nil); !errors.Is(err, waitingroom.ErrUnknownRoom) {
		e.t.Fatalf("Join before the room exists: %v, want ErrUnknownRoom", err)
	}

	// Added: seeded, served, cached.
	if err := s.SetRooms(e.ctx, []waitingroom.Room{rateRoom("launch", 60), manualRoom("sale")}); err != nil {
		e.t.Fatalf("SetRooms: %v", err)
	}
	if got := s.Rooms(); !slices.Equal(got, []string{"launch", "sale"}) {
		e.t.Fatalf("Rooms = %v", got)
	}
	e.fill(s, "sale", 3)
	if c := e.status(s, "sale"); c.Tail != 3 || c.State != waitingroom.StateOpen || !c.Policy.Manual() {
		e.t.Fatalf("status of the added room = %+v", c)
	}
	if err := cache.Refresh(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	if c, ok := cache.Get("sale"); !ok || c.Tail != 3 {
		e.t.Fatalf("cache of the added room = %+v, %v", c, ok)
	}

	// Changed: the new settings are seeded; the queue stays.
	if err := s.SetRooms(e.ctx, []waitingroom.Room{rateRoom("launch", 60), rateRoom("sale", 120)}); err != nil {
		e.t.Fatalf("SetRooms (change): %v", err)
	}
	if c := e.status(s, "sale"); c.Policy.RatePerMinute != 120 || c.Tail != 3 {
		e.t.Fatalf("status after the change = %+v, want 120/min and the same tail", c)
	}

	// Removed: no longer served, but its counters are kept for a room
	// created again with its id.
	if err := s.SetRooms(e.ctx, []waitingroom.Room{rateRoom("launch", 60)}); err != nil {
		e.t.Fatalf("SetRooms (remove): %v", err)
	}
	if _, err := s.Join(e.ctx, "sale", "r9", nil); !errors.Is(err, waitingroom.ErrUnknownRoom) {
		e.t.Fatalf("Join in a removed room: %v, want ErrUnknownRoom", err)
	}
	if err := cache.Refresh(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	if _, ok := cache.Get("sale"); ok {
		e.t.Fatal("the cache still serves a removed room")
	}
	if err := s.SetRooms(e.ctx, []waitingroom.Room{rateRoom("launch", 60), manualRoom("sale")}); err != nil {
		e.t.Fatal(err)
	}
	if j := e.join(s, "sale", "again", nil); j.Ticket.Position != 4 {
		e.t.Fatalf("first join in the room created again: position %d, want 4 (counters never go back)", j.Ticket.Position)
	}

	// Invalid: nothing changes.
	bad := manualRoom("other")
	bad.MaxWait = 0
	if err := s.SetRooms(e.ctx, []waitingroom.Room{bad}); err == nil {
		e.t.Fatal("SetRooms took an invalid room")
	}
	if got := s.Rooms(); !slices.Equal(got, []string{"launch", "sale"}) {
		e.t.Fatalf("Rooms after a refused SetRooms = %v", got)
	}
}
