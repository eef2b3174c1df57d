package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anteroom/anteroom/config"
)

// These tests run an instance with the test's clock: the scheduler admits
// only as much as the test moves the clock, and the test runs the
// scheduler's steps itself (the instance's own ticks may run too; the
// budget is the same whoever spends it).

// roomStatus reads /admin/v1/rooms/launch.
func (e *env) roomStatus() map[string]any {
	e.t.Helper()
	code, doc := e.admin(http.MethodGet, "/admin/v1/rooms/"+roomID, "")
	if code != http.StatusOK {
		e.t.Fatalf("room status: %d %v", code, doc)
	}
	return doc
}

func (e *env) serving() int64 {
	e.t.Helper()
	return int64(e.roomStatus()["serving"].(float64))
}

func originState(doc map[string]any) string {
	o, _ := doc["origin"].(map[string]any)
	s, _ := o["state"].(string)
	return s
}

// metrics returns the instance's /metrics text.
func (e *env) metrics() string {
	e.t.Helper()
	resp, body := visit(e.t, &http.Client{Transport: e.transport()}, http.MethodGet, issuer+"/metrics")
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("metrics: %d", resp.StatusCode)
	}
	return body
}

func wantMetric(t *testing.T, body, line string) {
	t.Helper()
	for l := range strings.SplitSeq(body, "\n") {
		if l == line {
			return
		}
	}
	t.Fatalf("metrics lack %q", line)
}

func TestFailingOriginPausesAdmissionUntilItRecovers(t *testing.T) {
	var healthy atomic.Bool
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !healthy.Load() {
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	defer site.Close()
	e := newEnv(t, false, func(c *config.Config) {
		rate := 60.0
		c.Rooms[0].Admission.RatePerMinute = &rate
		// The instance probes once as it starts; after that (an hour
		// later) the test probes when it chooses.
		c.Rooms[0].OriginHealth = &config.OriginHealth{URL: site.URL + "/healthz", Interval: config.Duration(time.Hour)}
		c.ApplyDefaults()
	})
	a, _ := e.start()
	ctx := context.Background()
	step := func() {
		t.Helper()
		if err := a.Scheduler().Step(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// The start-up probe finds the site failing.
	deadline := time.Now().Add(10 * time.Second)
	for originState(e.roomStatus()) != "failing" {
		if time.Now().After(deadline) {
			t.Fatalf("origin after start-up: %v", e.roomStatus()["origin"])
		}
		time.Sleep(10 * time.Millisecond)
	}
	o := e.roomStatus()["origin"].(map[string]any)
	if o["error"] != "status 503" || o["latency_ms"] == nil || o["checked_at"] == nil {
		t.Fatalf("origin: %v", o)
	}
	wantMetric(t, e.metrics(), `anteroom_origin_up{room="launch"} 0`)

	step()
	r := e.rp(clientID, secret, rpCallback)
	for range 6 {
		visit(t, e.browser(), http.MethodGet, r.authURL(newLogin()))
	}
	base := e.serving()
	if doc := e.roomStatus(); doc["tail"].(float64)-float64(base) < 5 {
		t.Fatalf("want at least 5 waiting: %v", doc)
	}

	// Failing: however much time passes, nobody is admitted by schedule.
	e.clock.Advance(10 * time.Second)
	step()
	if got := e.serving(); got != base {
		t.Fatalf("failing origin: serving %d, want %d", got, base)
	}

	// One good probe is not enough to recover.
	healthy.Store(true)
	a.Origins().Check(ctx)
	if s := originState(e.roomStatus()); s != "failing" {
		t.Fatalf("after one good probe: %s, want still failing", s)
	}
	e.clock.Advance(10 * time.Second)
	step()
	if got := e.serving(); got != base {
		t.Fatalf("after one good probe: serving %d, want %d", got, base)
	}

	// The second one is: the room admits at its rate again.
	a.Origins().Check(ctx)
	if s := originState(e.roomStatus()); s != "healthy" {
		t.Fatalf("after two good probes: %s, want healthy", s)
	}
	wantMetric(t, e.metrics(), `anteroom_origin_up{room="launch"} 1`)
	e.clock.Advance(3 * time.Second)
	step()
	if got := e.serving(); got != base+3 {
		t.Fatalf("recovered: serving %d, want %d (3 s at 60/min)", got, base+3)
	}
}

// publicStatus reads /api/v1/rooms/launch.
func (e *env) publicStatus() map[string]any {
	e.t.Helper()
	resp, body := visit(e.t, &http.Client{Transport: e.transport()}, http.MethodGet, issuer+"/api/v1/rooms/"+roomID)
	var doc map[string]any
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &doc) != nil {
		e.t.Fatalf("public status: %d %s", resp.StatusCode, body)
	}
	return doc
}

func TestQueueFullShowsInStatusPageAndMetrics(t *testing.T) {
	e := newEnv(t, false, func(c *config.Config) {
		rate := 1.0 // a minute each: a second visitor waiting fills a room that keeps places 1 minute
		c.Rooms[0].Admission.RatePerMinute = &rate
		c.Rooms[0].MaxWait = config.Duration(time.Minute)
	})
	e.start()
	r := e.rp(clientID, secret, rpCallback)

	doc := e.publicStatus()
	if doc["queue_full"] != false || doc["eta_seconds"] != float64(60) || doc["measured_rate_per_minute"] != nil {
		t.Fatalf("empty room: %v", doc)
	}
	if _, ok := doc["origin"]; ok {
		t.Fatalf("the public status shows origin health: %v", doc)
	}
	if admin := e.roomStatus(); admin["queue_full"] != false || admin["origin"] != nil {
		t.Fatalf("admin status of an empty room without origin_health: %v", admin)
	}

	// Visitors queue until one waits (the first may have gone straight in).
	var b *http.Client
	var waitURL string
	for e.publicStatus()["waiting"].(float64) < 1 {
		b = e.browser()
		resp, _ := visit(t, b, http.MethodGet, r.authURL(newLogin()))
		waitURL = resp.Request.URL.String()
	}
	doc = e.publicStatus()
	if doc["queue_full"] != true || doc["eta_seconds"] != float64(120) {
		t.Fatalf("one waiting at 1/min, max wait 1m: %v", doc)
	}
	if admin := e.roomStatus(); admin["queue_full"] != true || admin["eta_seconds"] != float64(120) {
		t.Fatalf("admin status: %v", admin)
	}
	resp, body := visit(t, b, http.MethodGet, waitURL+"?format=json")
	var st map[string]any
	if err := json.Unmarshal([]byte(body), &st); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("visitor status: %d %s", resp.StatusCode, body)
	}
	if st["state"] != "waiting" || st["queue_full"] != true {
		t.Fatalf("visitor status: %v", st)
	}
	_, page := visit(t, b, http.MethodGet, waitURL)
	if !strings.Contains(page, `id="full" >`) || !strings.Contains(page, "kept for 1 minute") {
		t.Fatalf("the waiting page shows no queue-full notice:\n%s", page)
	}
	body = e.metrics()
	wantMetric(t, body, `anteroom_room_queue_full{room="launch"} 1`)
	wantMetric(t, body, `anteroom_room_eta_seconds{room="launch"} 120`)
	if strings.Contains(body, "anteroom_room_admission_rate_per_minute{") {
		t.Fatal("a measured rate in the metrics without any history")
	}

	// The queue empties: the room is not full any more.
	e.advance(int(e.publicStatus()["waiting"].(float64)))
	if doc := e.publicStatus(); doc["queue_full"] != false {
		t.Fatalf("after everyone was let in: %v", doc)
	}
	wantMetric(t, e.metrics(), `anteroom_room_queue_full{room="launch"} 0`)
}
