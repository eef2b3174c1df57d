package waitingroom

import (
	"context"
	"fmt"
)

// roomSet is the rooms a Store serves, with what it keeps per room. A set
// is never changed once published: SetRooms builds a new one and swaps it
// in, so the hot path (a join, a poll) reads the rooms with one atomic
// load and no lock, however often an operator adds a room.
type roomSet struct {
	rooms map[string]Room
	order []string
	// keys are each room's key names, built once: every script call
	// names several.
	keys map[string]roomKeys
	// batches pipeline concurrent joins, one batcher per room: a room's
	// keys live on one Cluster node, so a batch never waits on another.
	batches map[string]*batcher
	// floors is what this instance remembers of each room's counters, so
	// they never go back when Redis loses writes (counterfloor.go).
	floors map[string]*counterFloor
}

// newRoomSet validates rooms and builds their set. A room that old has
// too keeps its batcher and counter floor: what this instance remembers of
// a room outlives a change of its settings.
func (s *Store) newRoomSet(old *roomSet, rooms []Room) (*roomSet, error) {
	if old == nil {
		old = &roomSet{}
	}
	set := &roomSet{rooms: make(map[string]Room, len(rooms)), keys: make(map[string]roomKeys, len(rooms)),
		batches: make(map[string]*batcher, len(rooms)), floors: make(map[string]*counterFloor, len(rooms))}
	for _, r := range rooms {
		if err := r.validate(); err != nil {
			return nil, err
		}
		if _, dup := set.rooms[r.ID]; dup {
			return nil, fmt.Errorf("room %q configured twice", r.ID)
		}
		set.rooms[r.ID] = r
		set.order = append(set.order, r.ID)
		if _, ok := old.rooms[r.ID]; ok {
			set.keys[r.ID], set.batches[r.ID], set.floors[r.ID] = old.keys[r.ID], old.batches[r.ID], old.floors[r.ID]
			continue
		}
		set.keys[r.ID] = s.buildKeys(r.ID)
		set.batches[r.ID] = newBatcher(s.rdb)
		set.floors[r.ID] = new(counterFloor)
	}
	return set, nil
}

// floor is what this instance remembers of room's counters. A room removed
// while a request for it was under way gets a floor of its own, which
// remembers nothing and is dropped with the request.
func (s *Store) floor(room string) *counterFloor {
	if m, ok := s.cur.Load().floors[room]; ok {
		return m
	}
	return new(counterFloor)
}

// SetRooms replaces the rooms the store serves with rooms, as the operator
// changes them at run time (package catalog keeps them in Redis): a new
// room or a room whose settings changed is seeded (see Seed: its state
// and policy are written unless the same settings were seeded before, so a
// change made since through the admin API survives), and a room left out
// is no longer served. Its keys stay in Redis: the tickets in visitors'
// cookies still name positions in it, and a room created again with the
// same id continues its counters, which never go back.
//
// Nothing is swapped in unless every room is valid and seeded.
func (s *Store) SetRooms(ctx context.Context, rooms []Room) error {
	s.setMu.Lock()
	defer s.setMu.Unlock()
	old := s.cur.Load()
	set, err := s.newRoomSet(old, rooms)
	if err != nil {
		return err
	}
	for _, id := range set.order {
		r := set.rooms[id]
		if prev, ok := old.rooms[id]; ok && prev.equal(r) {
			continue
		}
		if err := s.seedIn(ctx, set, r); err != nil {
			return err
		}
	}
	s.cur.Store(set)
	return nil
}
