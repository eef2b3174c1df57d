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
		got = route(r)
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
	if got := route(httptest.NewRequest(http.MethodGet, "/x", nil)); got != "unmatched" {
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

func TestNewMetricsTwiceSharesTheSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	a.TokenIssued("code")
	b.TokenIssued("code")
	b.Abandoned("launch", 2)
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
	if values["anteroom_oidc_issued_total"] != 2 || values["anteroom_abandoned_total"] != 2 {
		t.Fatalf("counters: %v", values)
	}
}
