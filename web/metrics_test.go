package web

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

func TestRouteLabelsAreBounded(t *testing.T) {
	mux := http.NewServeMux()
	var got string
	record := func(w http.ResponseWriter, r *http.Request) {}
	mux.HandleFunc("GET /wait/{id}", record)
	mux.HandleFunc("/", record)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		got = routeLabel(r)
	})
	for _, c := range []struct{ method, path, want string }{
		{http.MethodGet, "/wait/abc123", "GET /wait/{id}"},
		{http.MethodPost, "/wait/abc123", "/"},
		{http.MethodPost, "/oauth/token", "/oauth/token"},
		{http.MethodGet, "/authorize/callback?id=x", "/authorize/callback"},
		{http.MethodGet, "/some/random/path", "/"},
	} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(c.method, c.path, nil))
		if got != c.want {
			t.Errorf("%s %s: route %q, want %q", c.method, c.path, got, c.want)
		}
	}
	if got := routeLabel(httptest.NewRequest(http.MethodGet, "/x", nil)); got != "unmatched" {
		t.Errorf("a request no mux routed: %q", got)
	}
}

func TestRedisFailureLeavesOutAnswers(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{redis.Nil, false},
		{context.Canceled, false},
		{redis.ErrNoScript, false},
		{errors.New("dial tcp 127.0.0.1:6379: connect: connection refused"), true},
		{context.DeadlineExceeded, true},
		{redis.ErrClosed, true},
	} {
		if got := redisFailure(c.err); got != c.want {
			t.Errorf("%v: %v, want %v", c.err, got, c.want)
		}
	}
}

// TestRedisErrorsLeaveOutHandshakeProbes: go-redis asks every new
// connection for features an older Redis lacks (CLIENT SETINFO before 7.2,
// CLIENT MAINT_NOTIFICATIONS before 8) and carries on when refused; those
// refusals are no failure of the store.
func TestRedisErrorsLeaveOutHandshakeProbes(t *testing.T) {
	ctx := context.Background()
	refused := errors.New("ERR unknown subcommand 'setinfo'. Try CLIENT HELP.")
	down := errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
	cmd := func(err error, args ...any) redis.Cmder {
		c := redis.NewCmd(ctx, args...)
		c.SetErr(err)
		return c
	}
	for _, c := range []struct {
		name string
		cmds []redis.Cmder
		want float64
	}{
		{"setinfo", []redis.Cmder{cmd(refused, "client", "setinfo", "LIB-NAME", "go-redis")}, 0},
		{"maint_notifications", []redis.Cmder{cmd(refused, "client", "maint_notifications", "on")}, 0},
		{"hello", []redis.Cmder{cmd(refused, "hello", "3")}, 0},
		{"a command", []redis.Cmder{cmd(down, "get", "k")}, 1},
		{"client list", []redis.Cmder{cmd(down, "client", "list")}, 1},
		{"setinfo pipeline", []redis.Cmder{cmd(refused, "client", "setinfo", "LIB-NAME", "x"), cmd(refused, "client", "setinfo", "LIB-VER", "1")}, 0},
		{"pipeline", []redis.Cmder{cmd(nil, "get", "a"), cmd(down, "get", "b")}, 1},
	} {
		counter := prometheus.NewCounter(prometheus.CounterOpts{Name: "c"})
		h := redisErrorHook{counter}
		if len(c.cmds) == 1 {
			_ = h.ProcessHook(func(context.Context, redis.Cmder) error { return c.cmds[0].Err() })(ctx, c.cmds[0])
		}
		_ = h.ProcessPipelineHook(func(_ context.Context, cmds []redis.Cmder) error {
			for _, cmd := range cmds {
				if cmd.Err() != nil {
					return cmd.Err()
				}
			}
			return nil
		})(ctx, c.cmds)
		want := c.want
		if len(c.cmds) == 1 {
			want *= 2 // once as a command, once as a pipeline
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(counter)
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		if got := families[0].GetMetric()[0].GetCounter().GetValue(); got != want {
			t.Errorf("%s: counted %v, want %v", c.name, got, want)
		}
	}
}

// counters sums reg's counters by name.
func counters(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			if c := m.GetCounter(); c != nil {
				values[f.GetName()] += c.GetValue()
			}
		}
	}
	return values
}

// Each instance has its registry and its series: two in one process (as in
// the tests) count apart, and registering one's metrics twice with a
// registry is an error rather than a silent merge.
func TestInstancesHaveTheirOwnSeries(t *testing.T) {
	regA, regB := prometheus.NewRegistry(), prometheus.NewRegistry()
	a, err := NewMetrics(regA)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewMetrics(regB)
	if err != nil {
		t.Fatal(err)
	}
	a.TokenIssued("code")
	a.TokenIssued("code")
	b.TokenIssued("code")
	b.Abandoned("launch", 2)
	if got := counters(t, regA); got["anteroom_oidc_issued_total"] != 2 || got["anteroom_abandoned_total"] != 0 {
		t.Fatalf("instance a: %v", got)
	}
	if got := counters(t, regB); got["anteroom_oidc_issued_total"] != 1 || got["anteroom_abandoned_total"] != 2 {
		t.Fatalf("instance b: %v", got)
	}
	if _, err := NewMetrics(regA); err == nil {
		t.Fatal("a second Metrics on one registry: no error")
	}
}

// TestAbandonedIsCountedPerInstance: the admin status's abandoned count
// (AbandonedHere) is the instance's own.
func TestAbandonedIsCountedPerInstance(t *testing.T) {
	a, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	a.Abandoned("launch", 2)
	a.Abandoned("launch", 3)
	b.Abandoned("launch", 1)
	var none *Metrics
	if a.AbandonedHere("launch") != 5 || b.AbandonedHere("launch") != 1 || a.AbandonedHere("vip") != 0 || none.AbandonedHere("launch") != 0 {
		t.Fatalf("abandoned: a %d, b %d", a.AbandonedHere("launch"), b.AbandonedHere("launch"))
	}
}
