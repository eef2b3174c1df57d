package waitingroom_test

import (
	"crypto/sha256"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/anteroom/anteroom/internal/testredis"
	"github.com/anteroom/anteroom/waitingroom"
)

// The identity-bound places of rooms[].identity, on every Redis the store
// supports (a Cluster checks that the person's record keeps to the room's
// hash slot).
func TestIdentityPlaces(t *testing.T) {
	backends := map[string]func(t *testing.T) redis.UniversalClient{
		"redis": func(t *testing.T) redis.UniversalClient {
			srv := redisServer(t)
			if !srv.Real() {
				t.Skipf("redis-server not available (set %s=required to fail instead)", testredis.EnvVar)
			}
			return srv.Client(t)
		},
		"miniredis": func(t *testing.T) redis.UniversalClient {
			m := miniredis.RunT(t)
			rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{m.Addr()}})
			t.Cleanup(func() { rdb.Close() })
			return rdb
		},
		"cluster": func(t *testing.T) redis.UniversalClient {
			rdb := testredis.StartCluster(t).Client(t)
			testredis.FailOnCrossSlot(t, rdb)
			return rdb
		},
	}
	for name, newClient := range backends {
		t.Run(name, func(t *testing.T) {
			for _, c := range []struct {
				name string
				run  func(e *env)
			}{
				{"OnePlacePerPerson", testOnePlacePerPerson},
				{"ConcurrentSignInsOnePlace", testConcurrentSignInsOnePlace},
				{"AdmissionSharedAndForgotten", testIdentityAdmission},
				{"ExpiredRecordsSwept", testIdentityRecordsSwept},
			} {
				t.Run(c.name, func(t *testing.T) { c.run(newEnv(t, newClient)) })
			}
		})
	}
}

// testOnePlacePerPerson: the same person in another browser (another
// request, no cookie) holds the same ticket; another person gets the next
// place.
func testOnePlacePerPerson(e *env) {
	s := e.store(manualRoom("r"))
	a1, err := s.JoinIdentity(e.ctx, "r", "req-a-laptop", "person-a")
	if err != nil {
		e.t.Fatal(err)
	}
	a2, err := s.JoinIdentity(e.ctx, "r", "req-a-phone", "person-a")
	if err != nil {
		e.t.Fatal(err)
	}
	b, err := s.JoinIdentity(e.ctx, "r", "req-b", "person-b")
	if err != nil {
		e.t.Fatal(err)
	}
	if a1.Ticket.ID != a2.Ticket.ID || a1.Ticket.Position != a2.Ticket.Position || !a1.New || a2.New {
		e.t.Fatalf("same person: %+v then %+v", a1, a2)
	}
	if b.Ticket.ID == a1.Ticket.ID || b.Ticket.Position != a1.Ticket.Position+1 {
		e.t.Fatalf("two people share or skip: %+v %+v", a1.Ticket, b.Ticket)
	}
	// The phone's request is bound to the person's ticket: admitting it
	// works for that ticket (and no other).
	if got, _, err := s.IdentityTicket(e.ctx, "r", "person-a"); err != nil || got.ID != a1.Ticket.ID {
		e.t.Fatalf("IdentityTicket = %v, %v", got.ID, err)
	}
	if _, err := s.Join(e.ctx, "r", "req-a-phone", &b.Ticket); err != waitingroom.ErrClaimed {
		e.t.Fatalf("request bound to person a taken by b: %v", err)
	}
}

// testConcurrentSignInsOnePlace: many browsers of one person signing in at
// the same moment take one place between them.
func testConcurrentSignInsOnePlace(e *env) {
	s := e.store(manualRoom("r"))
	var wg sync.WaitGroup
	ids := make([]waitingroom.TicketID, 8)
	errs := make([]error, len(ids))
	for i := range ids {
		wg.Go(func() {
			j, err := s.JoinIdentity(e.ctx, "r", "req-"+strconv.Itoa(i), "person")
			ids[i], errs[i] = j.Ticket.ID, err
		})
	}
	wg.Wait()
	for i := range ids {
		if errs[i] != nil || ids[i] != ids[0] {
			e.t.Fatalf("sign-in %d: %v, ticket %v vs %v", i, errs[i], ids[i], ids[0])
		}
	}
	if c := e.status(s, "r"); c.Tail != 1 {
		e.t.Fatalf("tail = %d after one person's sign-ins, want 1", c.Tail)
	}
}

// testIdentityAdmission: an admission recorded for the person reaches
// their other browsers; once the session is over and forgotten, the next
// sign-in takes a new place.
func testIdentityAdmission(e *env) {
	room := manualRoom("r")
	room.SessionTTL = 10 * time.Minute
	s := e.store(room)
	j, err := s.JoinIdentity(e.ctx, "r", "req-1", "person")
	if err != nil {
		e.t.Fatal(err)
	}
	e.advance(s, "r", 1)
	admitted, err := s.Admit(e.ctx, j.Ticket, "req-1")
	if err != nil {
		e.t.Fatal(err)
	}
	if err := s.IdentityAdmitted(e.ctx, "person", admitted); err != nil {
		e.t.Fatal(err)
	}
	j2, err := s.JoinIdentity(e.ctx, "r", "req-2", "person")
	if err != nil || !j2.Ticket.Admitted() || j2.Ticket.ID != j.Ticket.ID {
		e.t.Fatalf("other browser after admission: %+v, %v", j2.Ticket, err)
	}
	if _, err := s.EndSession(e.ctx, "r", j.Ticket.ID); err != nil {
		e.t.Fatal(err)
	}
	// Another ticket's id leaves the record alone.
	if err := s.ForgetIdentity(e.ctx, "r", "person", waitingroom.NewTicketID()); err != nil {
		e.t.Fatal(err)
	}
	if _, ok, _ := s.IdentityTicket(e.ctx, "r", "person"); !ok {
		e.t.Fatal("record forgotten for another ticket's id")
	}
	if err := s.ForgetIdentity(e.ctx, "r", "person", j.Ticket.ID); err != nil {
		e.t.Fatal(err)
	}
	j3, err := s.JoinIdentity(e.ctx, "r", "req-3", "person")
	if err != nil || j3.Ticket.ID == j.Ticket.ID || j3.Ticket.Position != 2 {
		e.t.Fatalf("after the session: %+v, %v", j3.Ticket, err)
	}
}

// testIdentityRecordsSwept: a person's record has no TTL of its own (it
// is a field of a hash); a later write to the same hash deletes it once
// its ticket can no longer be used.
func testIdentityRecordsSwept(e *env) {
	s := e.store(manualRoom("r"))
	// Two people whose records share a hash: the first byte of the hash
	// of their key is the same.
	bucket := func(p string) byte { sum := sha256.Sum256([]byte(p)); return sum[0] }
	first := "person-0"
	second := ""
	for i := 1; second == ""; i++ {
		if p := "person-" + strconv.Itoa(i); bucket(p) == bucket(first) {
			second = p
		}
	}
	if _, err := s.JoinIdentity(e.ctx, "r", "req-1", first); err != nil {
		e.t.Fatal(err)
	}
	keys, err := e.rdb.Keys(e.ctx, e.prefix+":{r:r}:i:*").Result()
	if err != nil || len(keys) != 1 {
		e.t.Fatalf("records: %q %v", keys, err)
	}
	e.clock.Add(manualRoom("r").MaxWait + time.Second)
	if _, ok, _ := s.IdentityTicket(e.ctx, "r", first); ok {
		e.t.Fatal("an expired record still names a ticket")
	}
	if _, err := s.JoinIdentity(e.ctx, "r", "req-2", second); err != nil {
		e.t.Fatal(err)
	}
	if n, err := e.rdb.HLen(e.ctx, keys[0]).Result(); err != nil || n != 1 {
		e.t.Fatalf("records in the hash after the sweep: %d %v, want 1", n, err)
	}
}

// TestIdentityMemory measures what a waiting person costs Redis
// (INFO used_memory over many sign-ins, on a real redis-server) against an
// anonymous visitor's, for the README. It asserts no number: the figure is
// printed (go test -v) and copied into the README by hand.
func TestIdentityMemory(t *testing.T) {
	srv := redisServer(t)
	if !srv.Real() {
		t.Skipf("redis-server not available (set %s=required to fail instead)", testredis.EnvVar)
	}
	if testing.Short() {
		t.Skip("measurement")
	}
	e := newEnv(t, func(t *testing.T) redis.UniversalClient { return srv.Client(t) })
	n := 5000
	if v, err := strconv.Atoi(os.Getenv("ANTEROOM_IDENTITY_MEMORY_N")); err == nil && v > 0 {
		n = v // for the README's figure at scale
	}
	used := func() int64 {
		info, err := e.rdb.Info(e.ctx, "memory").Result()
		if err != nil {
			t.Fatal(err)
		}
		var v int64
		for _, line := range splitLines(info) {
			if _, err := fmt.Sscanf(line, "used_memory:%d", &v); err == nil {
				return v
			}
		}
		t.Fatal("no used_memory")
		return 0
	}
	s := e.store(manualRoom("anon"), manualRoom("people"))
	before := used()
	for i := range n {
		if _, err := s.Join(e.ctx, "anon", "anon-request-"+strconv.Itoa(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	anon := float64(used()-before) / float64(n)
	before = used()
	for i := range n {
		if _, err := s.JoinIdentity(e.ctx, "people", "person-request-"+strconv.Itoa(i), "u-person-"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	person := float64(used()-before) / float64(n)
	t.Logf("Redis per waiting visitor: anonymous %.1f B, identity-bound %.1f B (%.1f B for the person's record)", anon, person, person-anon)
	if person <= anon {
		t.Fatalf("a person's record costs nothing (%.1f vs %.1f): not measured", person, anon)
	}
}

func splitLines(s string) []string {
	var out []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != '\n' {
			i++
		}
		out = append(out, s[:i])
		if i < len(s) {
			i++
		}
		s = s[i:]
	}
	return out
}
