package waitingroom_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/anteroom/anteroom/waitingroom"
)

// Redis lost the room.

func testNoSeedRecovery(e *env) {
	s := e.store(rateRoom("launch", 60))
	e.fill(s, "launch", 3)
	flush := e.flushAll

	flush()
	// This instance remembers the three positions it handed out: the room
	// is seeded again and carries on after them (dataloss_test.go).
	j, err := s.Join(e.ctx, "launch", "after-flush", nil)
	if err != nil {
		e.t.Fatalf("Join after FLUSHALL: %v", err)
	}
	if !j.New || j.Ticket.Position != 4 {
		e.t.Fatalf("Join after FLUSHALL = %+v, want a new ticket at 4 (room re-seeded, nothing handed out again)", j)
	}
	if c := e.status(s, "launch"); c.State != waitingroom.StateOpen || c.Policy.RatePerMinute != 60 || c.Tail != 4 {
		e.t.Fatalf("status after re-seed = %+v, want open, 60/min, tail 4", c)
	}

	flush()
	e.join(s, "launch", "x1", nil)
	e.join(s, "launch", "x2", nil)
	sc := waitingroom.NewScheduler(s, "a", time.Second)
	e.step(sc)
	flush()
	e.fill(s, "launch", 5)
	e.clock.Add(time.Second)
	if err := sc.Step(e.ctx); err != nil {
		e.t.Fatalf("Step after FLUSHALL: %v", err)
	}
	e.clock.Add(time.Second)
	e.step(sc)
	if !sc.Leading("launch") {
		e.t.Fatal("scheduler does not lead after re-seed")
	}
	if c := e.status(s, "launch"); c.Serving < 1 {
		e.t.Fatalf("status %+v: the scheduler admits nobody after FLUSHALL", c)
	}

	flush()
	if err := sc.Step(e.ctx); err != nil {
		e.t.Fatalf("Step as the first command after FLUSHALL: %v", err)
	}
	if c := e.status(s, "launch"); c.State != waitingroom.StateOpen {
		e.t.Fatalf("state after a tick re-seeded = %q, want open", c.State)
	}

	flush()
	if err := s.SetState(e.ctx, "launch", waitingroom.StatePaused); err != nil {
		e.t.Fatalf("SetState after FLUSHALL: %v", err)
	}
	if c := e.status(s, "launch"); c.State != waitingroom.StatePaused {
		e.t.Fatalf("state = %q, want paused", c.State)
	}

	// The counter does not go back either: a ticket it had reached is
	// admitted after the flush, the one behind it still waits.
	serving := e.serving(s, "launch")
	flush()
	reached := waitingroom.Ticket{ID: waitingroom.NewTicketID(), Room: "launch", Position: serving, JoinedAt: e.clock.Now()}
	if _, err := s.Admit(e.ctx, reached, "old-request"); err != nil {
		e.t.Fatalf("Admit after FLUSHALL of a ticket the counter had reached: %v", err)
	}
	behind := waitingroom.Ticket{ID: waitingroom.NewTicketID(), Room: "launch", Position: serving + 1, JoinedAt: e.clock.Now()}
	if _, err := s.Admit(e.ctx, behind, "old-request-2"); !errors.Is(err, waitingroom.ErrNotAdmitted) {
		e.t.Fatalf("Admit after FLUSHALL: %v, want ErrNotAdmitted", err)
	}
}

// Visitors keep their cookies when Redis loses the room, so tickets can
// carry positions past the re-seeded tail. DESIGN.md: the counter "never goes
// back, and never passes tail".
func testPassthroughAfterDataLoss(e *env) {
	r := manualRoom("launch")
	r.State = waitingroom.StatePassthrough
	s := e.store(r)
	old := e.fill(s, "launch", 5)[4] // position 5, admitted at once
	e.flushAll()
	if _, err := s.Admit(e.ctx, old.ticket, old.request); err != nil {
		e.t.Fatalf("Admit of an old ticket in a passthrough room: %v", err)
	}
	c := e.status(s, "launch")
	if c.Serving > c.Tail {
		e.t.Errorf("after admitting an old ticket: serving %d passed tail %d", c.Serving, c.Tail)
	}
	for i := range 3 {
		j := e.join(s, "launch", fmt.Sprintf("new-%d", i), nil)
		if j.Serving < c.Serving {
			e.t.Fatalf("join %d in passthrough moved serving back from %d to %d", i, c.Serving, j.Serving)
		}
		c.Serving = j.Serving
	}
}

// Seeding.

func testSeedKeepsAdminChanges(e *env) {
	r := rateRoom("launch", 60)
	s := e.store(r)
	e.fill(s, "launch", 3)
	e.advance(s, "launch", 1)
	serving := e.serving(s, "launch")
	if err := s.SetPolicy(e.ctx, "launch", waitingroom.Policy{RatePerMinute: 120, MaxActive: 7}); err != nil {
		e.t.Fatal(err)
	}
	if err := s.SetState(e.ctx, "launch", waitingroom.StatePaused); err != nil {
		e.t.Fatal(err)
	}
	// The epoch is the room's, kept by every seed that finds it.
	want := waitingroom.Counters{State: waitingroom.StatePaused, Policy: waitingroom.Policy{RatePerMinute: 120, MaxActive: 7}, Serving: serving, Tail: 3, Method: waitingroom.MethodFIFO,
		Epoch: e.status(s, "launch").Epoch}
	if c := e.status(s, "launch"); c != want || c.Epoch == 0 {
		e.t.Fatalf("status after admin changes = %+v, want %+v", c, want)
	}
	// A restart (a new Store, same configuration) and a re-seed keep them.
	if err := s.Seed(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	s2 := e.store(r)
	if c := e.status(s2, "launch"); c != want {
		e.t.Fatalf("status after a second Seed of the same configuration = %+v, want %+v", c, want)
	}
}

func testSeedChangedConfigWins(e *env) {
	s := e.store(rateRoom("launch", 60))
	e.fill(s, "launch", 3)
	serving := e.serving(s, "launch")
	if err := s.SetState(e.ctx, "launch", waitingroom.StatePaused); err != nil {
		e.t.Fatal(err)
	}
	if err := s.SetPolicy(e.ctx, "launch", waitingroom.Policy{RatePerMinute: 120}); err != nil {
		e.t.Fatal(err)
	}
	epoch := e.status(s, "launch").Epoch
	s2 := e.store(rateRoom("launch", 90))
	want := waitingroom.Counters{State: waitingroom.StateOpen, Policy: waitingroom.Policy{RatePerMinute: 90}, Serving: serving, Tail: 3, Method: waitingroom.MethodFIFO, Epoch: epoch}
	if c := e.status(s2, "launch"); c != want {
		e.t.Fatalf("status after Seed of a changed configuration = %+v, want %+v", c, want)
	}
	// An admin change to the new configuration survives its re-seed in turn.
	if err := s2.SetState(e.ctx, "launch", waitingroom.StateClosed); err != nil {
		e.t.Fatal(err)
	}
	e.store(rateRoom("launch", 90))
	if c := e.status(s2, "launch"); c.State != waitingroom.StateClosed {
		e.t.Fatalf("state = %q after re-seed, want closed", c.State)
	}
	// A changed state in the configuration wins too.
	paused := rateRoom("launch", 90)
	paused.State = waitingroom.StatePaused
	e.store(paused)
	if c := e.status(s2, "launch"); c.State != waitingroom.StatePaused || c.Tail != 3 {
		e.t.Fatalf("status = %+v after seeding a paused configuration, want paused with tail 3", c)
	}
}

func testSetValidate(e *env) {
	s := e.store(rateRoom("launch", 60))
	if err := s.SetState(e.ctx, "launch", waitingroom.State("sleeping")); err == nil {
		e.t.Fatal("SetState of an unknown state succeeded")
	}
	for _, p := range []waitingroom.Policy{{RatePerMinute: -1}, {RatePerMinute: 2e6}, {MaxActive: -1}} {
		if err := s.SetPolicy(e.ctx, "launch", p); err == nil {
			e.t.Fatalf("SetPolicy(%+v) succeeded", p)
		}
	}
	if c := e.status(s, "launch"); c.State != waitingroom.StateOpen || c.Policy != (waitingroom.Policy{RatePerMinute: 60}) {
		e.t.Fatalf("status %+v changed by refused updates", c)
	}
	if err := s.SetPolicy(e.ctx, "launch", waitingroom.Policy{RatePerMinute: 0.5}); err != nil {
		e.t.Fatal(err)
	}
	if c := e.status(s, "launch"); c.Policy.RatePerMinute != 0.5 {
		e.t.Fatalf("rate = %v, want 0.5", c.Policy.RatePerMinute)
	}
}

// Cache.

func testCacheRefresh(e *env) {
	s := e.store(manualRoom("one"), rateRoom("two", 60))
	c := waitingroom.NewCache(s, 0)
	if _, ok := c.Get("one"); ok {
		e.t.Fatal("Get before the first refresh reports counters")
	}
	e.fill(s, "one", 3)
	e.advance(s, "one", 1)
	if err := c.Refresh(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	if c.Err() != nil {
		e.t.Fatalf("Err after a good refresh: %v", c.Err())
	}
	for _, room := range []string{"one", "two"} {
		got, ok := c.Get(room)
		want := e.status(s, room)
		want.Active = 0
		if !ok || got != want {
			e.t.Fatalf("Get(%s) = %+v, %v; want %+v", room, got, ok, want)
		}
	}
	if _, ok := c.Get("nope"); ok {
		e.t.Fatal("Get of an unknown room reports counters")
	}
	// The cache is a snapshot until the next refresh.
	e.advance(s, "one", 1)
	if got, _ := c.Get("one"); got.Serving != 1 {
		e.t.Fatalf("cached serving = %d before refresh, want 1", got.Serving)
	}
	if err := c.Refresh(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	if got, _ := c.Get("one"); got.Serving != 2 || got.Tail != 3 {
		e.t.Fatalf("cached %+v after refresh, want serving 2, tail 3", got)
	}
	// Redis lost the rooms: keep what we knew.
	e.flushAll()
	if err := c.Refresh(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	if got, ok := c.Get("one"); !ok || got.Serving != 2 || got.State != waitingroom.StateOpen {
		e.t.Fatalf("cached %+v, %v after Redis lost the room, want the last known counters", got, ok)
	}
}

func testCacheObserve(e *env) {
	s := e.store(manualRoom("launch"))
	e.fill(s, "launch", 3)
	e.advance(s, "launch", 1)
	c := waitingroom.NewCache(s, 0)
	if err := c.Refresh(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	check := func(what string, serving, tail int64) {
		e.t.Helper()
		got, _ := c.Get("launch")
		if got.Serving != serving || got.Tail != tail {
			e.t.Fatalf("%s: cached serving %d tail %d, want %d and %d", what, got.Serving, got.Tail, serving, tail)
		}
	}
	c.Observe("launch", 2, 5)
	check("Observe(2, 5)", 2, 5)
	c.Observe("launch", 1, 4)
	check("Observe lower", 2, 5)
	c.Observe("launch", 3, 4)
	check("Observe higher serving, lower tail", 3, 5)
	c.Observe("launch", 0, 9)
	check("Observe lower serving, higher tail", 3, 9)
	c.Observe("nope", 100, 100) // must not panic
	if got, _ := c.Get("launch"); got.State != waitingroom.StateOpen {
		e.t.Fatalf("Observe lost the state: %+v", got)
	}
}

func testCacheChanged(e *env) {
	s := e.store(manualRoom("launch"))
	c := waitingroom.NewCache(s, 0)
	closed := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	ch := c.Changed()
	if closed(ch) {
		e.t.Fatal("Changed is closed before anything happened")
	}
	if err := c.Refresh(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	if !closed(ch) {
		e.t.Fatal("Changed not closed by the first refresh")
	}
	ch = c.Changed()
	if closed(ch) {
		e.t.Fatal("Changed returned a closed channel after the notification")
	}
	if err := c.Refresh(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	if closed(ch) {
		e.t.Fatal("Changed closed by a refresh that changed nothing")
	}
	e.join(s, "launch", "r", nil)
	if err := c.Refresh(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	if !closed(ch) {
		e.t.Fatal("Changed not closed by a refresh that saw a join")
	}
	ch = c.Changed()
	if err := s.SetState(e.ctx, "launch", waitingroom.StatePaused); err != nil {
		e.t.Fatal(err)
	}
	if err := c.Refresh(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	if !closed(ch) {
		e.t.Fatal("Changed not closed by a refresh that saw a state change")
	}
	ch = c.Changed()
	c.Observe("launch", 0, 0) // lower: nothing new
	if closed(ch) {
		e.t.Fatal("Changed closed by an Observe that raised nothing")
	}
	c.Observe("launch", 1, 1)
	if !closed(ch) {
		e.t.Fatal("Changed not closed by an Observe that raised serving")
	}
}

// Status.

func testStatusActive(e *env) {
	r := manualRoom("launch")
	s := e.store(r)
	visitors := e.fill(s, "launch", 3)
	e.advance(s, "launch", 3)
	for i, v := range visitors {
		if _, err := s.Admit(e.ctx, v.ticket, v.request); err != nil {
			e.t.Fatalf("Admit %d: %v", i, err)
		}
		e.clock.Add(time.Minute)
	}
	if c := e.status(s, "launch"); c.Active != 3 || c.Waiting() != 0 {
		e.t.Fatalf("status = %+v, want 3 active", c)
	}
	// Sessions end by the clock one minute apart; no tick is needed.
	e.clock.Add(r.SessionTTL - 3*time.Minute)
	if c := e.status(s, "launch"); c.Active != 2 {
		e.t.Fatalf("active = %d after the first session's TTL, want 2", c.Active)
	}
	e.clock.Add(2 * time.Minute)
	if c := e.status(s, "launch"); c.Active != 0 {
		e.t.Fatalf("active = %d after every session's TTL, want 0", c.Active)
	}
}

// Redis keys.

func testKeysHashTag(e *env) {
	rooms := []string{"launch", "other"}
	s := e.store(rateRoom("launch", 60), manualRoom("other"))
	sc := waitingroom.NewScheduler(s, "a", time.Second)
	for _, room := range rooms {
		a := e.join(s, room, room+"-a", nil).Ticket
		e.join(s, room, room+"-b", &a)
		c := e.join(s, room, room+"-c", nil).Ticket
		e.join(s, room, room+"-d", nil)
		e.advance(s, room, 2)
		if _, err := s.Admit(e.ctx, a, room+"-a"); err != nil {
			e.t.Fatal(err)
		}
		if _, err := s.Admit(e.ctx, c, room+"-unbound"); err != nil {
			e.t.Fatal(err)
		}
		if err := s.SetState(e.ctx, room, waitingroom.StateOpen); err != nil {
			e.t.Fatal(err)
		}
		if err := s.SetPolicy(e.ctx, room, waitingroom.Policy{RatePerMinute: 60}); err != nil {
			e.t.Fatal(err)
		}
		e.clock.Add(time.Second)
		e.step(sc)
		if _, err := s.EndSession(e.ctx, room, a.ID); err != nil {
			e.t.Fatal(err)
		}
	}
	keys := e.keysOf()
	if len(keys) == 0 {
		e.t.Fatal("SCAN found no keys under the prefix")
	}
	kinds := map[string]map[string]bool{}
	for _, key := range keys {
		ok := false
		for _, room := range rooms {
			tag := e.prefix + ":{r:" + room + "}:"
			rest, found := strings.CutPrefix(key, tag)
			if !found {
				continue
			}
			if hashTag(key) != "r:"+room {
				e.t.Errorf("key %q hashes on %q, want r:%s", key, hashTag(key), room)
			}
			kind, _, _ := strings.Cut(rest, ":")
			if kinds[room] == nil {
				kinds[room] = map[string]bool{}
			}
			kinds[room][kind] = true
			ok = true
		}
		if !ok {
			e.t.Errorf("key %q does not carry a room's hash tag {r:<room>}", key)
		}
	}
	for _, room := range rooms {
		for _, kind := range []string{"room", "tail", "serving", "lease", "active", "b", "t"} {
			if !kinds[room][kind] {
				e.t.Errorf("room %s: no %q key found (kinds %v); the check would not have seen it", room, kind, kinds[room])
			}
		}
	}
}

// Configuration checks that need no Redis.

func TestNewStoreValidates(t *testing.T) {
	good := manualRoom("launch")
	bad := map[string][]waitingroom.Room{
		"empty id":          {func() waitingroom.Room { r := good; r.ID = ""; return r }()},
		"unknown state":     {func() waitingroom.Room { r := good; r.State = "shut"; return r }()},
		"empty state":       {func() waitingroom.Room { r := good; r.State = ""; return r }()},
		"negative rate":     {func() waitingroom.Room { r := good; r.Policy.RatePerMinute = -1; return r }()},
		"huge rate":         {func() waitingroom.Room { r := good; r.Policy.RatePerMinute = 1e6 + 1; return r }()},
		"negative capacity": {func() waitingroom.Room { r := good; r.Policy.MaxActive = -1; return r }()},
		"zero session ttl":  {func() waitingroom.Room { r := good; r.SessionTTL = 0; return r }()},
		"zero max wait":     {func() waitingroom.Room { r := good; r.MaxWait = 0; return r }()},
		"duplicate":         {good, good},
	}
	for name, rooms := range bad {
		if _, err := waitingroom.NewStore(nil, rooms); err == nil {
			t.Errorf("%s: NewStore succeeded", name)
		}
	}
	s, err := waitingroom.NewStore(nil, []waitingroom.Room{manualRoom("b"), manualRoom("a"), rateRoom("c", 1e6)})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Rooms(), ","); got != "b,a,c" {
		t.Fatalf("Rooms() = %s, want configuration order b,a,c", got)
	}
	if r, ok := s.Room("a"); !ok || r.ID != "a" {
		t.Fatalf("Room(a) = %+v, %v", r, ok)
	}
	if _, ok := s.Room("z"); ok {
		t.Fatal("Room of an unknown id reports ok")
	}
}

func TestPolicyAndState(t *testing.T) {
	if !(waitingroom.Policy{}).Manual() || (waitingroom.Policy{RatePerMinute: 1}).Manual() || (waitingroom.Policy{MaxActive: 1}).Manual() {
		t.Fatal("Policy.Manual is wrong")
	}
	for _, st := range []waitingroom.State{waitingroom.StateOpen, waitingroom.StatePaused, waitingroom.StateClosed, waitingroom.StatePassthrough} {
		if !st.Valid() {
			t.Errorf("%q not valid", st)
		}
	}
	for _, st := range []waitingroom.State{"", "Open", "shut"} {
		if st.Valid() {
			t.Errorf("%q valid", st)
		}
	}
}
