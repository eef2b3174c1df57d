package waitingroom_test

import (
	"testing"

	"github.com/redis/go-redis/v9"
)

// A hardened ACL (+@all -@dangerous: no KEYS, FLUSHALL, CONFIG, DEBUG...)
// also denies INFO, which serverRun needs to tell a restart from a first use:
// then every reload of the scripts is taken for a restart.
func TestRestartNoticedWithoutINFO(t *testing.T) {
	srv := redisServer(t)
	admin := srv.Client(t)
	if err := admin.Do(t.Context(), "ACL", "SETUSER", "anteroom", "reset", "on", ">pw", "~*", "&*", "+@all", "-@dangerous").Err(); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(t *testing.T) redis.UniversalClient {
		rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{srv.Addr()}, Username: "anteroom", Password: "pw"})
		t.Cleanup(func() { rdb.Close() })
		return rdb
	})
	r := rateRoom("launch", 60)
	a, b := e.store(r), e.store(r)
	e.fill(a, "launch", 1)
	e.fill(b, "launch", 1)
	e.fill(a, "launch", 1)
	e.fill(b, "launch", 1)
	// snapshot/lose with the admin client (DUMP/RESTORE/SCRIPT FLUSH are dangerous too)
	ea := *e
	ea.rdb = admin
	snap := ea.snapshot()
	lost := e.fill(b, "launch", 2)
	ea.lose(snap, "launch")
	got := e.fill(a, "launch", 1)[0].ticket.Position
	if got <= lost[1].ticket.Position {
		t.Fatalf("join after the loss got position %d; b had handed out up to %d (INFO denied: restart not detected)", got, lost[1].ticket.Position)
	}
}
