package server

import (
	"net/http"
	"net/http/httptest"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// Off, tracing adds nothing to the request path: the handler is the one
// given, not a wrapper that checks whether to trace.
func TestTracingOffWrapsNothing(t *testing.T) {
	h := http.NewServeMux()
	if got := traced(nil, h); got != http.Handler(h) {
		t.Fatalf("tracing off wrapped the handler in %T", got)
	}
}

// On, the middleware sits where the matched pattern reaches it: Instrument
// and the mux below it see the request it passes on, so the span is named
// by the route (see telemetry.Handler).
func TestTracingOnNamesTheRoute(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /wait/{id}", func(http.ResponseWriter, *http.Request) {})
	h := withRequestTimeout(5e9, traced(tp, mux))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/wait/abc", nil))
	if spans := exp.GetSpans(); len(spans) != 1 || spans[0].Name != "GET /wait/{id}" {
		t.Fatalf("spans %v", spans)
	}
}
