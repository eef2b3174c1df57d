package e2e

import (
	"context"
	"math"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/oauth2"

	"github.com/anteroom/anteroom/config"
	"github.com/anteroom/anteroom/server"
)

// scrape reads the instance's /metrics into a map from series (name and
// labels, as exposed) to value.
func (e *env) scrape() map[string]float64 {
	e.t.Helper()
	out := map[string]float64{}
	for line := range strings.SplitSeq(e.metrics(), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			e.t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// The instance served requests before the first scrape (its start, the
// relying party's discovery), so this test looks at how far the series
// moved, not at their values.
func TestMetricsFollowVisitorsTokensAndRequests(t *testing.T) {
	e := newEnv(t, false, nil)
	a, _ := e.start()
	r := e.rp(clientID, secret, rpCallback)
	r.oauth.Scopes = append(r.oauth.Scopes, gooidc.ScopeOfflineAccess)
	before := e.scrape()

	// Two visitors join; the first is let in after 90 s (on the test's
	// clock) and its relying party gets a code, tokens and a refresh.
	b := e.browser()
	l := newLogin()
	waitURL := queue(t, b, r, l)
	queue(t, e.browser(), r, newLogin())
	pollStatus(t, b, waitURL)
	e.clock.Advance(90 * time.Second)
	e.advance(1)
	resp, _ := visit(t, b, http.MethodPost, waitURL+"/continue")
	code := codeFrom(t, resp, l)
	if code == "" {
		t.Fatalf("no code: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	tok, err := r.oauth.Exchange(r.ctx, code, oauth2.VerifierOption(l.verifier))
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("exchange: %v (refresh token %q)", err, tok.RefreshToken)
	}
	if _, err := r.oauth.TokenSource(r.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	// The visitor comes back through a new login: neither a join nor an
	// admission.
	l2 := newLogin()
	resp, _ = visit(t, b, http.MethodGet, r.authURL(l2))
	if codeFrom(t, resp, l2) == "" {
		t.Fatalf("returning visitor: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	// The scheduler's abandonment hook reaches the counter.
	a.Scheduler().OnSkip(roomID, 3)

	after := e.scrape()
	moved := func(series string) float64 { return after[series] - before[series] }
	for series, want := range map[string]float64{
		`anteroom_joins_total{room="launch"}`:                                                       2,
		`anteroom_admissions_total{room="launch"}`:                                                  1,
		`anteroom_abandoned_total{room="launch"}`:                                                   3,
		`anteroom_wait_seconds_count{room="launch"}`:                                                1,
		`anteroom_wait_seconds_sum{room="launch"}`:                                                  90,
		`anteroom_wait_seconds_bucket{room="launch",le="60"}`:                                       0,
		`anteroom_wait_seconds_bucket{room="launch",le="120"}`:                                      1,
		`anteroom_oidc_issued_total{kind="code"}`:                                                   2,
		`anteroom_oidc_issued_total{kind="access_token"}`:                                           2,
		`anteroom_oidc_issued_total{kind="refresh_token"}`:                                          2,
		`anteroom_redis_errors_total`:                                                               0,
		`anteroom_http_request_duration_seconds_count{route="POST /wait/{id}/continue"}`:            1,
		`anteroom_http_request_duration_seconds_count{route="POST /admin/v1/rooms/{room}/advance"}`: 1,
		`anteroom_http_request_duration_seconds_count{route="/oauth/token"}`:                        2,
		// The waiting page answers with the code itself: nobody is sent
		// through the library's callback.
		`anteroom_http_request_duration_seconds_count{route="/authorize/callback"}`: 0,
	} {
		// A sum that earlier runs in this process (-count) left large
		// loses the last bits of the difference.
		if got := moved(series); math.Abs(got-want) > 1e-6 {
			t.Errorf("%s moved by %v, want %v", series, got, want)
		}
	}
	for _, series := range []string{
		`anteroom_http_request_duration_seconds_count{route="GET /wait/{id}"}`,
		`anteroom_http_request_duration_seconds_count{route="/authorize"}`,
		`anteroom_http_request_duration_seconds_count{route="GET /metrics"}`,
	} {
		if moved(series) < 1 {
			t.Errorf("%s did not move", series)
		}
	}
	for series, want := range map[string]float64{
		`anteroom_room_waiting{room="launch"}`: 1,
		`anteroom_room_serving{room="launch"}`: 1,
		`anteroom_room_tail{room="launch"}`:    2,
		`anteroom_room_active{room="launch"}`:  1,
	} {
		if got, ok := after[series]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	for series := range after {
		if strings.Contains(series, "/wait/") && !strings.Contains(series, "{id}") {
			t.Errorf("a request path leaked into a label: %s", series)
		}
	}
}

// A quiet room lets a visitor straight in at joining: one join and one
// admission, with no wait.
func TestMetricsCountTheSafetyNet(t *testing.T) {
	e := newEnv(t, false, func(c *config.Config) {
		rate := 60.0
		c.Rooms[0].Admission.RatePerMinute = &rate
	})
	e.start()
	r := e.rp(clientID, secret, rpCallback)
	before := e.scrape()
	l := newLogin()
	resp, _ := visit(t, e.browser(), http.MethodGet, r.authURL(l))
	if codeFrom(t, resp, l) == "" {
		t.Fatalf("the safety net did not let the visitor in: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	after := e.scrape()
	for series, want := range map[string]float64{
		`anteroom_joins_total{room="launch"}`:                1,
		`anteroom_admissions_total{room="launch"}`:           1,
		`anteroom_wait_seconds_bucket{room="launch",le="1"}`: 1,
	} {
		if got := after[series] - before[series]; got != want {
			t.Errorf("%s moved by %v, want %v", series, got, want)
		}
	}
}

func TestMetricsCountRedisErrors(t *testing.T) {
	if !redisServer.Real() {
		t.Skip("needs a real redis-server to kill")
	}
	e := newEnv(t, false, nil)
	e.start()
	before := e.scrape()
	if err := redisServer.Kill(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := redisServer.Restart(); err != nil {
			t.Fatal(err)
		}
	}()
	r := e.rp(clientID, secret, rpCallback)
	if resp, _ := visit(t, e.browser(), http.MethodGet, r.authURL(newLogin())); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("during the outage: %d", resp.StatusCode)
	}
	const refused = `anteroom_visitor_errors_total{kind="temporarily_unavailable"}`
	if got := e.scrape()[refused] - before[refused]; got != 1 {
		t.Fatalf("%s moved by %v, want 1", refused, got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for e.scrape()[`anteroom_redis_errors_total`]-before[`anteroom_redis_errors_total`] < 1 {
		select {
		case <-ctx.Done():
			t.Fatal("anteroom_redis_errors_total did not move during an outage")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// registryCounter sums the counter name of reg over its labels.
func registryCounter(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// Each instance has a registry of its own, served by its /metrics: two
// instances in one process (here, on one Redis) count apart, and the Go
// and process collectors are on each.
func TestMetricsAreEachInstancesOwn(t *testing.T) {
	e := newEnv(t, false, nil)
	a, _ := e.start()
	b, _, _ := e.startWith(e.cfg) // the load balancer now points at b
	if a.Registry() == b.Registry() {
		t.Fatal("two instances share a registry")
	}
	r := e.rp(clientID, secret, rpCallback)
	queue(t, e.browser(), r, newLogin())
	a.Scheduler().OnSkip(roomID, 3)

	if got := registryCounter(t, b.Registry(), "anteroom_joins_total"); got != 1 {
		t.Errorf("joins on b, which the visitor joined through: %v, want 1", got)
	}
	if got := registryCounter(t, a.Registry(), "anteroom_joins_total"); got != 0 {
		t.Errorf("joins on a: %v, want 0", got)
	}
	if a, b := registryCounter(t, a.Registry(), "anteroom_abandoned_total"), registryCounter(t, b.Registry(), "anteroom_abandoned_total"); a != 3 || b != 0 {
		t.Errorf("abandoned: a %v, b %v; want 3 and 0", a, b)
	}
	scraped := e.scrape() // b's /metrics
	if scraped[`anteroom_joins_total{room="launch"}`] != 1 || scraped[`anteroom_abandoned_total{room="launch"}`] != 0 {
		t.Errorf("b's /metrics: joins %v, abandoned %v", scraped[`anteroom_joins_total{room="launch"}`], scraped[`anteroom_abandoned_total{room="launch"}`])
	}
	for _, series := range []string{"go_goroutines", "process_start_time_seconds"} {
		if _, ok := scraped[series]; !ok {
			t.Errorf("/metrics lacks %s", series)
		}
	}
}

// anteroom_build_info names the build an instance runs, from what the
// command passed in with server.WithBuildInfo, on the instance's /metrics.
func TestMetricsNameTheBuild(t *testing.T) {
	e := newEnv(t, false, nil)
	ctx, cancel := context.WithCancel(context.Background())
	a, err := server.New(ctx, e.cfg, e.rdb, server.WithClock(e.clock.Now), server.WithBuildInfo("v1.2.3-test", "0123abcd"))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = a.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	e.route(ln.Addr().String())

	want := `anteroom_build_info{goversion="` + runtime.Version() + `",revision="0123abcd",version="v1.2.3-test"}`
	if got, ok := e.scrape()[want]; !ok || got != 1 {
		t.Errorf("/metrics: %s = %v (present %v), want 1", want, got, ok)
	}
}
