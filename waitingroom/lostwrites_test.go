package waitingroom_test

import (
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/anteroom/anteroom/waitingroom"
)

func realRedisEnv(t *testing.T) *env {
	srv := redisServer(t)
	if !srv.Real() {
		t.Skip("needs redis-server")
	}
	return newEnv(t, func(t *testing.T) redis.UniversalClient { return srv.Client(t) })
}

type dumped struct {
	key  string
	val  string
	pttl time.Duration
}

// snapshot DUMPs every key of the env, as an AOF that stops here would keep.
func (e *env) snapshot() []dumped {
	var out []dumped
	for _, k := range e.keysOf() {
		v, err := e.rdb.Dump(e.ctx, k).Result()
		if err != nil {
			e.t.Fatal(err)
		}
		ttl, _ := e.rdb.PTTL(e.ctx, k).Result()
		if ttl < 0 {
			ttl = 0
		}
		out = append(out, dumped{k, v, ttl})
	}
	return out
}

// lose puts Redis back to snap and makes it look restarted (scripts gone,
// another run id than the room recorded): an AOF whose last writes were lost.
func (e *env) lose(snap []dumped, room string) {
	for _, k := range e.keysOf() {
		e.rdb.Del(e.ctx, k)
	}
	for _, d := range snap {
		if err := e.rdb.Restore(e.ctx, d.key, d.pttl, d.val).Err(); err != nil {
			e.t.Fatal(err)
		}
	}
	e.rdb.HSet(e.ctx, e.prefix+":{r:"+room+"}:room", "run", "a-run-id-of-before-the-crash")
	if err := e.rdb.ScriptFlush(e.ctx).Err(); err != nil {
		e.t.Fatal(err)
	}
}

// Two instances hand out pre-queue numbers; Redis loses everything
// (FLUSHALL); the instance that saw less joins first.
func TestPreQueueNumbersNotReusedAfterFlush(t *testing.T) {
	e := realRedisEnv(t)
	r := rateRoom("launch", 60)
	r.OpensAt = e.clock.Now().Add(time.Minute)
	a, b := e.store(r), e.store(r)
	max := int64(0)
	for range 5 {
		e.clock.Add(100 * time.Millisecond)
		e.fill(a, "launch", 1)
		v := e.fill(b, "launch", 1)[0]
		max = v.ticket.PreQueue
	}
	e.flushAll()
	got := e.fill(a, "launch", 1)[0].ticket.PreQueue
	if got <= max {
		t.Fatalf("first pre-queue join after the loss got number %d; b had handed out up to %d: a number handed out twice", got, max)
	}
}

// Same with an AOF that lost its last writes (a machine crash with
// appendfsync everysec): Redis keeps the tail snapshot, the instance
// floors are behind what b handed out.
func TestPreQueueNumbersNotReusedAfterLostWrites(t *testing.T) {
	e := realRedisEnv(t)
	r := rateRoom("launch", 60)
	r.OpensAt = e.clock.Now().Add(time.Minute)
	a, b := e.store(r), e.store(r)
	e.fill(a, "launch", 1)
	e.fill(b, "launch", 1)
	e.fill(a, "launch", 1)
	e.fill(b, "launch", 1)
	snap := e.snapshot()
	lost := e.fill(b, "launch", 2) // 5, 6: not on disk
	e.lose(snap, "launch")
	got := e.fill(a, "launch", 1)[0].ticket.PreQueue
	if got <= lost[1].ticket.PreQueue {
		t.Fatalf("pre-queue join after the loss got number %d; b had handed out up to %d", got, lost[1].ticket.PreQueue)
	}
}

// The same loss in an opened room: the tail snapshot sizes the gap.
func TestPositionsNotReusedAfterLostWrites(t *testing.T) {
	e := realRedisEnv(t)
	r := rateRoom("launch", 60)
	a, b := e.store(r), e.store(r)
	e.fill(a, "launch", 1)
	e.fill(b, "launch", 1)
	e.fill(a, "launch", 1)
	e.fill(b, "launch", 1)
	snap := e.snapshot()
	lost := e.fill(b, "launch", 2)
	e.lose(snap, "launch")
	got := e.fill(a, "launch", 1)[0].ticket.Position
	if got <= lost[1].ticket.Position {
		t.Fatalf("join after the loss got position %d; b had handed out up to %d", got, lost[1].ticket.Position)
	}
}

// A binding bucket that became empty (admit deleted its last field when
// the session was over) and is created again by a join gets a lifetime
// again: it must not live for ever.
func TestBindingBucketRecreatedKeepsATTL(t *testing.T) {
	e := realRedisEnv(t)
	r := manualRoom("launch")
	r.SessionTTL = time.Minute
	created := e.clock.Now()
	s, err := waitingroom.NewStore(e.rdb, []waitingroom.Room{r}, waitingroom.WithClock(e.clock.Now), waitingroom.WithPrefix(e.prefix),
		waitingroom.WithRequestTime(func(string) (time.Time, bool) { return created, true }))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Seed(e.ctx); err != nil {
		t.Fatal(err)
	}
	j := e.join(s, "launch", "req", nil)
	e.advance(s, "launch", 1)
	adm, err := s.Admit(e.ctx, j.Ticket, "req")
	if err != nil {
		t.Fatal(err)
	}
	bucket := ""
	for _, k := range e.keysOf() {
		if strings.Contains(k, ":b:") {
			bucket = k
		}
	}
	if ttl := e.rdb.PTTL(e.ctx, bucket).Val(); ttl <= 0 {
		t.Fatalf("bucket %s ttl %v after the first join", bucket, ttl)
	}
	e.clock.Add(2 * time.Minute)
	if _, err := s.Admit(e.ctx, adm, "req"); err != waitingroom.ErrSessionOver {
		t.Fatalf("admit after session: %v", err)
	}
	if n := e.rdb.Exists(e.ctx, bucket).Val(); n != 0 {
		t.Fatalf("bucket still exists")
	}
	j2 := e.join(s, "launch", "req", &adm)
	if !j2.New {
		t.Fatal("want a new ticket")
	}
	if ttl := e.rdb.PTTL(e.ctx, bucket).Val(); ttl < 0 {
		t.Fatalf("bucket %s recreated by a join with PTTL %v: it never expires", bucket, ttl)
	}
}

// The first join after Redis restarted is for a request bound to another
// ticket (a copied URL, a page whose join reply was lost): it answers
// "claimed" before restore, yet the restart is noticed, so the next join
// leaves the gap.
func TestRestartNoticedWhenTheFirstJoinIsClaimed(t *testing.T) {
	e := realRedisEnv(t)
	r := rateRoom("launch", 60)
	a, b := e.store(r), e.store(r)
	first := e.fill(a, "launch", 1)[0]
	e.fill(b, "launch", 1)
	e.fill(a, "launch", 1)
	e.fill(b, "launch", 1)
	snap := e.snapshot()
	lost := e.fill(b, "launch", 2)
	e.lose(snap, "launch")
	if _, err := a.Join(e.ctx, "launch", first.request, nil); err != waitingroom.ErrClaimed {
		t.Fatalf("copied URL: %v", err)
	}
	got := e.fill(a, "launch", 1)[0].ticket.Position
	if got <= lost[1].ticket.Position {
		t.Fatalf("join after the loss got position %d; b had handed out up to %d", got, lost[1].ticket.Position)
	}
}

// Scripts are cached per server, the run id is recorded per room: a
// restart noticed through one room's join must reach every room of the
// server, or the others hand out lost positions again.
func TestRestartNoticedByEveryRoom(t *testing.T) {
	e := realRedisEnv(t)
	ra, rb := rateRoom("launch", 60), rateRoom("sale", 60)
	a, b := e.store(ra, rb), e.store(ra, rb)
	for _, room := range []string{"launch", "sale"} {
		e.fill(a, room, 1)
		e.fill(b, room, 1)
		e.fill(a, room, 1)
		e.fill(b, room, 1)
	}
	snap := e.snapshot()
	lost := e.fill(b, "sale", 2)
	e.lose(snap, "launch")
	e.rdb.HSet(e.ctx, e.prefix+":{r:sale}:room", "run", "a-run-id-of-before-the-crash")
	e.fill(a, "launch", 1) // NOSCRIPT, run id: "launch" leaves its gap
	got := e.fill(a, "sale", 1)[0].ticket.Position
	if got <= lost[1].ticket.Position {
		t.Fatalf("join into the second room after the restart got position %d; b had handed out up to %d", got, lost[1].ticket.Position)
	}
}
