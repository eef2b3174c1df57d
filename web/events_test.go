package web

import (
	"bufio"
	"context"
	"github.com/prometheus/client_golang/prometheus"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/anteroom/anteroom/internal/testredis"
	"github.com/anteroom/anteroom/waitingroom"
)

// streamSite is a Server with one manual room on a real listener (event
// streams need a connection to hijack).
func streamSite(t *testing.T) (*Server, *waitingroom.Store, *httptest.Server) {
	t.Helper()
	rdb := testredis.Start(t).Client(t)
	store, err := waitingroom.NewStore(rdb, []waitingroom.Room{{ID: "launch", Name: "Launch", State: waitingroom.StateOpen,
		SessionTTL: 30 * time.Minute, MaxWait: 6 * time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Seed(context.Background()); err != nil {
		t.Fatal(err)
	}
	o := testOptions("")
	if o.Metrics, err = NewMetrics(prometheus.NewRegistry()); err != nil {
		t.Fatal(err)
	}
	cache := waitingroom.NewCache(store, time.Hour)
	o.Store, o.Cache = store, cache
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := cache.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.RegisterPublic(mux)
	srv := httptest.NewServer(SecurityHeaders(mux))
	t.Cleanup(srv.Close)
	t.Cleanup(s.CloseStreams)
	return s, store, srv
}

// openStream joins the queue for a new request and opens its event stream;
// it returns the stream's reader and the body to close.
func openStream(t *testing.T, srv *httptest.Server) (*bufio.Reader, io.Closer) {
	t.Helper()
	path := newRequestPath()
	resp, err := http.Get(srv.URL + path + "?format=json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+path+"/events", nil)
	for _, c := range resp.Cookies() {
		req.AddCookie(c)
	}
	resp, err = http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" ||
		resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("events: %s %v", resp.Status, resp.Header)
	}
	return bufio.NewReader(resp.Body), resp.Body
}

// within runs f and fails the test if it does not return within 10 seconds
// (a stream that never sends would otherwise hang it).
func within(t *testing.T, what string, f func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: nothing within 10s", what)
	}
}

// nextData reads the stream up to its next data line.
func nextData(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	var data string
	within(t, "next event", func() error {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return err
			}
			if d, ok := strings.CutPrefix(line, "data: "); ok {
				data = d
				return nil
			}
		}
	})
	return data
}

// ended checks that the stream's body ends properly (a clean EOF after the
// last chunk), so that the browser reconnects.
func ended(t *testing.T, r *bufio.Reader) {
	t.Helper()
	within(t, "end of the stream", func() error { _, err := io.ReadAll(r); return err })
}

func TestStreamHubSendsChangesDropsTheGoneAndEndsAtShutdown(t *testing.T) {
	s, store, srv := streamSite(t)
	var readers []*bufio.Reader
	var bodies []io.Closer
	for range 20 {
		r, body := openStream(t, srv)
		if first := nextData(t, r); !strings.Contains(first, `"state":"waiting"`) {
			t.Fatalf("first event: %s", first)
		}
		readers, bodies = append(readers, r), append(bodies, body)
	}
	// The handlers are gone (each hands its stream over right after the
	// first event, which the browser may read before); the hub holds the
	// streams.
	within(t, "the hub holding 20 streams", func() error {
		for s.streams.Len() != 20 {
			time.Sleep(time.Millisecond)
		}
		return nil
	})
	// A change of the counters reaches every stream: the first visitor is
	// admitted (and that stream ends), the others move up.
	if _, err := store.Advance(context.Background(), "launch", 1); err != nil {
		t.Fatal(err)
	}
	if err := s.cache.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := nextData(t, readers[0]); !strings.Contains(got, `"state":"admitted"`) || !strings.Contains(got, `"continue_url"`) {
		t.Fatalf("admitted visitor's event: %s", got)
	}
	ended(t, readers[0])
	for i, r := range readers[1:] {
		if got := nextData(t, r); !strings.Contains(got, `"serving":1`) {
			t.Fatalf("stream %d after the advance: %s", i+1, got)
		}
	}
	// Browsers that went away are noticed by the pings' writes failing.
	for _, b := range bodies[1:6] {
		b.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.streams.Len() != 14 {
		if time.Now().After(deadline) {
			t.Fatalf("hub holds %d streams after 5 went away, want 14", s.streams.Len())
		}
		s.streams.broadcast(true)
		time.Sleep(10 * time.Millisecond)
	}
	// Shutdown ends every stream properly, so the browsers reconnect.
	s.CloseStreams()
	for _, r := range readers[6:] {
		ended(t, r)
	}
	if n := s.streams.Len(); n != 0 {
		t.Fatalf("hub holds %d streams after shutdown", n)
	}
	// A stream opened during shutdown is ended at once.
	r, _ := openStream(t, srv)
	if got := nextData(t, r); !strings.Contains(got, `"state":"waiting"`) {
		t.Fatalf("first event during shutdown: %s", got)
	}
	ended(t, r)
}
