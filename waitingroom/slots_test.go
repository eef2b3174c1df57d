package waitingroom_test

import (
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/anteroom/anteroom/waitingroom"
)

// slotRooms are rooms whose hash tags ({r:launch}, {r:other}, {r:sale})
// hash to slots 16274, 8557 and 810: on a Cluster whose slots redis-cli
// spread over three masters, one room on each.
var slotRooms = []string{"launch", "other", "sale"}

// testRoomsInDifferentSlots runs what touches several rooms in one call (the
// cache's pipelined refresh, a scheduler step, a heartbeat flush) and then
// each room's own scripts, on rooms in different hash slots: on a Cluster,
// on different masters, so a command or pipeline that mixed two rooms'
// keys would fail there.
func testRoomsInDifferentSlots(e *env) {
	if c, ok := e.rdb.(*redis.ClusterClient); ok {
		masters := map[string]bool{}
		for _, room := range slotRooms {
			m, err := c.MasterForKey(e.ctx, e.prefix+":{r:"+room+"}:tail")
			if err != nil {
				e.t.Fatalf("MasterForKey(%s): %v", room, err)
			}
			masters[m.Options().Addr] = true
		}
		if len(masters) != len(slotRooms) {
			e.t.Fatalf("rooms %v live on %d masters, want one each", slotRooms, len(masters))
		}
	}
	const grace = 10 * time.Second
	var rooms []waitingroom.Room
	for _, id := range slotRooms {
		r := rateRoom(id, 60)
		r.AbandonAfter = grace
		rooms = append(rooms, r)
	}
	s := e.store(rooms...)
	sc := waitingroom.NewScheduler(s, "a", time.Second)
	admitted, skipped := map[string]int64{}, map[string]int64{}
	sc.OnAdvance = func(room string, n int64) { admitted[room] += n }
	sc.OnSkip = func(room string, n int64) { skipped[room] += n }
	beats := waitingroom.NewHeartbeats(s)
	cache := waitingroom.NewCache(s, 0)

	// Three visitors a room; the safety net may let the first in. Then the
	// join's own sign of life grows old: only the last visitor's page
	// beats, and only the flush can tell the scheduler so.
	last := map[string]visitor{}
	bases := map[string]int64{}
	for _, room := range slotRooms {
		vs := e.fill(s, room, 3)
		last[room] = vs[2]
		bases[room] = e.base(s, room, 60)
	}
	e.clock.Add(2*grace + time.Second)
	for _, room := range slotRooms {
		beats.Beat(room, last[room].ticket.Position)
	}
	if err := beats.Flush(e.ctx); err != nil {
		e.t.Fatalf("Heartbeats.Flush over three rooms: %v", err)
	}
	e.step(sc)
	for _, room := range slotRooms {
		if admitted[room] != 1 || skipped[room] != 2-bases[room] {
			e.t.Fatalf("room %s: the tick admitted %d and skipped %d, want 1 (the beating page) and %d (the silent ones)",
				room, admitted[room], skipped[room], 2-bases[room])
		}
		e.wantServing(s, room, 3, "room "+room+" after the tick")
	}

	if err := cache.Refresh(e.ctx); err != nil {
		e.t.Fatalf("Cache.Refresh over three rooms: %v", err)
	}
	for _, room := range slotRooms {
		got, ok := cache.Get(room)
		want := e.status(s, room)
		want.Active = 0
		if !ok || got != want {
			e.t.Fatalf("cached %s = %+v, %v; want %+v", room, got, ok, want)
		}
	}

	for _, room := range slotRooms {
		v := last[room]
		tk, err := s.Admit(e.ctx, v.ticket, v.request)
		if err != nil {
			e.t.Fatalf("Admit in %s: %v", room, err)
		}
		if c := e.status(s, room); c.Active != 1 {
			e.t.Fatalf("room %s: active = %d after an admission, want 1", room, c.Active)
		}
		if ended, err := s.EndSession(e.ctx, room, tk.ID); err != nil || !ended {
			e.t.Fatalf("EndSession in %s = %v, %v", room, ended, err)
		}
	}
	for _, room := range slotRooms {
		if c := e.status(s, room); c.Active != 0 || c.Serving != 3 || c.Tail != 3 {
			e.t.Fatalf("room %s after the sessions ended: %+v", room, c)
		}
	}
}
