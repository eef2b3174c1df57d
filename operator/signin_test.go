package operator

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anteroom/anteroom/internal/testredis"
	"github.com/anteroom/anteroom/waitingroom"
)

// signInSite is a Server with an admin token behind a trusted proxy
// (127.0.0.1), on a clock the test moves.
func signInSite(t *testing.T) (http.Handler, *testClock) {
	t.Helper()
	clock := &testClock{now: time.Unix(1_800_000_000, 0)}
	rdb := testredis.Start(t).Client(t)
	store, err := waitingroom.NewStore(rdb, []waitingroom.Room{{ID: "launch", Name: "Launch", State: waitingroom.StateOpen,
		SessionTTL: 30 * time.Minute, MaxWait: 6 * time.Hour}}, waitingroom.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Seed(context.Background()); err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Issuer: testIssuer, Store: store, Cache: waitingroom.NewCache(store, time.Hour),
		CookieSecrets: [][]byte{testSecret(1)}, AdminToken: signInToken, ClientIP: throughProxy})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.Register(mux)
	return mux, clock
}

const signInToken = "admin-token-0123456789"

type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// signIn posts token to /admin/login as client (through the trusted proxy).
func signIn(h http.Handler, client, token string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, testIssuer+"/admin/login", strings.NewReader(url.Values{"token": {token}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("X-Forwarded-For", client)
	r.RemoteAddr = "127.0.0.1:40000"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// Failed dashboard sign-ins are throttled per client address: after
// signInBurst failures the address gets 429 with Retry-After and a page
// saying when to try again, and while throttled even the right token is
// not compared (a guess beyond the bound learns nothing). Other addresses
// are not affected, and the bucket refills with time. RFC 6585 §4 (429)
// and RFC 9110 §10.2.3 (Retry-After).
func TestFailedSignInsAreThrottledPerAddress(t *testing.T) {
	h, clock := signInSite(t)
	const guesser = "198.51.100.7"
	for i := range signInBurst {
		if w := signIn(h, guesser, fmt.Sprintf("wrong-guess-%08d", i)); w.Code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d, want 401", i, w.Code)
		}
	}
	w := signIn(h, guesser, signInToken)
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("sign-in beyond the bound: %d, want 429", w.Code)
	}
	if got := w.Header().Get("Retry-After"); got != "12" {
		t.Errorf("Retry-After %q, want 12 (one attempt every %v)", got, signInEvery)
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") ||
		!strings.Contains(w.Body.String(), "Too many failed sign-ins. Try again in 12 seconds.") {
		t.Errorf("429 page: %s %.400s", ct, w.Body)
	}
	if len(w.Result().Cookies()) != 0 {
		t.Fatal("a throttled sign-in with the right token signed in")
	}
	// A person at another address signs in.
	if w := signIn(h, "203.0.113.9", signInToken); w.Code != http.StatusSeeOther || len(w.Result().Cookies()) != 1 {
		t.Fatalf("other address: %d %v", w.Code, w.Result().Cookies())
	}
	// An IPv6 guesser counts per /64, like the join limit.
	for i := range signInBurst {
		signIn(h, fmt.Sprintf("2001:db8:1:2::%x", i+1), "wrong-guess-xxxxxxxx")
	}
	if w := signIn(h, "2001:db8:1:2::ffff", signInToken); w.Code != http.StatusTooManyRequests {
		t.Fatalf("another address of the same /64: %d, want 429", w.Code)
	}
	// One attempt comes back every signInEvery.
	clock.Advance(signInEvery)
	if w := signIn(h, guesser, signInToken); w.Code != http.StatusSeeOther {
		t.Fatalf("after %v: %d, want the sign-in", signInEvery, w.Code)
	}
	// A success gives its attempt back: the operator can sign in again.
	if w := signIn(h, guesser, signInToken); w.Code != http.StatusSeeOther {
		t.Fatalf("second sign-in: %d", w.Code)
	}
}

// Many addresses guessing together are throttled overall: after
// signInBurstAll failures from everyone, a new address waits too.
func TestFailedSignInsAreThrottledOverall(t *testing.T) {
	h, clock := signInSite(t)
	for i := range signInBurstAll {
		if w := signIn(h, fmt.Sprintf("198.51.100.%d", i+1), "wrong-guess-xxxxxxxx"); w.Code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i, w.Code)
		}
	}
	w := signIn(h, "203.0.113.200", signInToken)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "2" {
		t.Fatalf("a new address after %d failures overall: %d Retry-After %q, want 429 and 2", signInBurstAll, w.Code, w.Header().Get("Retry-After"))
	}
	clock.Advance(signInEveryAll)
	if w := signIn(h, "203.0.113.200", signInToken); w.Code != http.StatusSeeOther {
		t.Fatalf("after %v: %d", signInEveryAll, w.Code)
	}
}

// Concurrent guesses cannot all slip past an empty bucket: the attempt is
// taken before the token is compared.
func TestConcurrentSignInsTakeTheirAttemptFirst(t *testing.T) {
	h, _ := signInSite(t)
	var wg sync.WaitGroup
	codes := make(chan int, 50)
	for range 50 {
		wg.Go(func() { codes <- signIn(h, "198.51.100.7", "wrong-guess-xxxxxxxx").Code })
	}
	wg.Wait()
	close(codes)
	compared := 0
	for c := range codes {
		if c == http.StatusUnauthorized {
			compared++
		}
	}
	if compared != signInBurst {
		t.Fatalf("%d of 50 concurrent guesses were compared, want %d", compared, signInBurst)
	}
}
