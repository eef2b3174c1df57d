package server

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

type ctxKey struct{}

// The lazy deadline behaves as context.WithDeadline: its deadline is
// there before anything waits, it expires with DeadlineExceeded, it ends
// with Canceled when the request is done (also for a context made from
// it), and it passes the request's values through.
func TestLazyDeadlineActsAsWithDeadline(t *testing.T) {
	parent := context.WithValue(context.Background(), ctxKey{}, "id")

	c := newLazyDeadline(parent, time.Hour)
	if d, ok := c.Deadline(); !ok || time.Until(d) <= 0 {
		t.Fatalf("deadline %v, %v; want set, in the future", d, ok)
	}
	if c.inner.Load() != nil {
		t.Fatal("Deadline made a timer: nothing waited on the context")
	}
	if c.Value(ctxKey{}) != "id" {
		t.Fatal("the request's value is lost")
	}
	child, cancelChild := context.WithCancel(c)
	defer cancelChild()
	if c.Err() != nil || child.Err() != nil {
		t.Fatalf("err %v / %v before the end, want nil", c.Err(), child.Err())
	}
	c.stop()
	<-child.Done()
	if !errors.Is(c.Err(), context.Canceled) || !errors.Is(child.Err(), context.Canceled) {
		t.Fatalf("after stop: %v / %v, want Canceled", c.Err(), child.Err())
	}

	// Stopped before anything waited: whoever asks later sees it ended.
	c = newLazyDeadline(parent, time.Hour)
	c.stop()
	if !errors.Is(c.Err(), context.Canceled) {
		t.Fatalf("asked after stop: %v, want Canceled", c.Err())
	}

	// A deadline in the past: Done is closed and Err says why.
	c = newLazyDeadline(parent, -time.Second)
	<-c.Done()
	if !errors.Is(c.Err(), context.DeadlineExceeded) {
		t.Fatalf("expired: %v, want DeadlineExceeded", c.Err())
	}
	c.stop()

	// A parent's earlier deadline wins, as with context.WithDeadline.
	early, cancel := context.WithDeadline(parent, time.Now().Add(time.Minute))
	defer cancel()
	want, _ := early.Deadline()
	if d, _ := newLazyDeadline(early, time.Hour).Deadline(); !d.Equal(want) {
		t.Fatalf("deadline %v, want the parent's %v", d, want)
	}
}

// withRequestTimeout puts redis.request_timeout on every request's context
// but an event stream's, which stays open for as long as the visitor waits.
func TestRequestTimeoutBoundsRequestsButNotEventStreams(t *testing.T) {
	got := map[string]bool{}
	h := withRequestTimeout(time.Second, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		_, got[r.Method+" "+r.URL.Path] = r.Context().Deadline()
	}))
	want := map[string]bool{
		"GET /wait/abc":           true,
		"POST /wait/abc/continue": true,
		"POST /oauth/token":       true,
		"GET /wait/abc/events":    false,
	}
	for req := range want {
		method, path, _ := strings.Cut(req, " ")
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(method, path, nil))
	}
	if !maps.Equal(got, want) {
		t.Fatalf("deadline set: %v, want %v", got, want)
	}
}
