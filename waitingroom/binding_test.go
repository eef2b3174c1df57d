package waitingroom_test

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/anteroom/anteroom/waitingroom"
)

// testBindingBuckets: with request times known, bindings are filed in
// hashes per 10 minutes of creation time, each expiring once its youngest
// request can no longer wait; a copied URL is refused whatever the bucket.
func testBindingBuckets(e *env) {
	r := manualRoom("launch")
	created := map[string]time.Time{
		"early": e.clock.Now().Add(-25 * time.Minute),
		"late":  e.clock.Now().Add(-time.Minute),
	}
	s, err := waitingroom.NewStore(e.rdb, []waitingroom.Room{r}, waitingroom.WithClock(e.clock.Now), waitingroom.WithPrefix(e.prefix),
		waitingroom.WithRequestTime(func(req string) (time.Time, bool) { t, ok := created[req]; return t, ok }))
	if err != nil {
		e.t.Fatal(err)
	}
	if err := s.Seed(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	a := e.join(s, "launch", "early", nil)
	e.join(s, "launch", "late", nil)
	if _, err := s.Join(e.ctx, "launch", "early", nil); !errors.Is(err, waitingroom.ErrClaimed) {
		e.t.Fatalf("copied URL of a bucketed request: %v", err)
	}
	if _, err := s.Join(e.ctx, "launch", "early", &a.Ticket); err != nil {
		e.t.Fatalf("owner again: %v", err)
	}
	var buckets []string
	for _, k := range e.keysOf() {
		if strings.Contains(k, ":b:") {
			buckets = append(buckets, k)
		}
	}
	if len(buckets) != 2 {
		e.t.Fatalf("binding keys %v, want one bucket per 10 minutes of creation time", buckets)
	}
	for _, k := range buckets {
		ttl, err := e.rdb.PTTL(e.ctx, k).Result()
		// The youngest request of a bucket may wait max wait (30m) from
		// the bucket's end, at most 10 minutes after it was created.
		if err != nil || ttl <= 0 || ttl > r.MaxWait+10*time.Minute {
			e.t.Fatalf("bucket %s ttl %v %v", k, ttl, err)
		}
	}
}

// testBindingDatedByTheCaller: a caller that has opened the request passes
// its creation time (RequestCreatedAt) to Join and Admit, and the store
// files the binding by it without asking WithRequestTime, which would open
// the request again; the bucket is the one WithRequestTime would give.
func testBindingDatedByTheCaller(e *env) {
	r := manualRoom("launch")
	created := e.clock.Now().Add(-25 * time.Minute)
	s, err := waitingroom.NewStore(e.rdb, []waitingroom.Room{r}, waitingroom.WithClock(e.clock.Now), waitingroom.WithPrefix(e.prefix),
		waitingroom.WithRequestTime(func(req string) (time.Time, bool) {
			e.t.Errorf("the store opened request %q again", req)
			return created, true
		}))
	if err != nil {
		e.t.Fatal(err)
	}
	if err := s.Seed(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	at := waitingroom.RequestCreatedAt(created)
	j, err := s.Join(e.ctx, "launch", "req", nil, at)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := s.Join(e.ctx, "launch", "req", nil, at); !errors.Is(err, waitingroom.ErrClaimed) {
		e.t.Fatalf("copied URL: %v", err)
	}
	if _, err := s.Advance(e.ctx, "launch", 1); err != nil {
		e.t.Fatal(err)
	}
	if _, err := s.Admit(e.ctx, j.Ticket, "req", at); err != nil {
		e.t.Fatalf("admit: %v", err)
	}
	want := ":b:" + strconv.FormatInt(created.UnixMilli()/(10*time.Minute).Milliseconds(), 36)
	var found bool
	for _, k := range e.keysOf() {
		found = found || strings.HasSuffix(k, want)
	}
	if !found {
		e.t.Fatalf("no binding bucket %s among %v", want, e.keysOf())
	}
}
