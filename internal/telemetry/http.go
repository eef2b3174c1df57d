package telemetry

import (
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/anteroom/anteroom/internal/route"
)

// Handler gives every request next serves a server span, child of the
// caller's when the request carries a W3C traceparent (Trace Context,
// https://www.w3.org/TR/trace-context/ §3.2), and puts it in the request's
// context: the Redis hook's spans and the log lines of the request hang
// from it.
//
// The span is named after the route, "{method} {http.route}" as the HTTP
// semantic conventions say (semconv v1.43.0, http-spans.md, "Name"): the
// ServeMux pattern without its method ("GET /wait/{id}"), or, for the OIDC
// endpoints the provider serves behind the catch-all "/", the endpoint's
// path ("POST /oauth/token"). Never the raw path: it carries the auth
// request's id. next must end in the ServeMux, with no handler between
// that replaces the request (r.WithContext), since the mux writes the
// pattern into the request it is given, which is how the name is known
// once next returns.
//
// The attributes are the method, the route and the status: no URL, query,
// header or cookie, which carry codes, tickets and tokens.
func Handler(tp trace.TracerProvider, next http.Handler) http.Handler {
	tracer := tp.Tracer(tracerName)
	prop := propagation.TraceContext{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		method := knownMethod(r.Method)
		ctx, span := tracer.Start(ctx, method, trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		r = r.WithContext(ctx)
		if !span.IsRecording() {
			// Not sampled: the span carries the trace to Redis and the
			// logs, and records nothing.
			next.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		attrs := make([]attribute.KeyValue, 0, 3)
		if method == "HTTP" {
			attrs = append(attrs, semconv.HTTPRequestMethodOther)
		} else {
			attrs = append(attrs, semconv.HTTPRequestMethodKey.String(method))
		}
		if rt := httpRoute(r); rt != "" {
			span.SetName(method + " " + rt)
			attrs = append(attrs, semconv.HTTPRoute(rt))
		}
		status := sw.status
		if status == 0 {
			status = http.StatusOK // nothing written, or hijacked (event streams)
		}
		attrs = append(attrs, semconv.HTTPResponseStatusCode(status))
		span.SetAttributes(attrs...)
		// Server spans are errors for 5xx only: a 4xx is the client's
		// (http-spans.md, "Status").
		if status >= 500 {
			span.SetStatus(codes.Error, "")
		}
	})
}

// httpRoute is the request's http.route: the pattern the mux matched
// without its method, or an OIDC endpoint's path; "" when no route matched.
func httpRoute(r *http.Request) string {
	p := r.Pattern
	if i := strings.IndexByte(p, ' '); i >= 0 {
		p = strings.TrimLeft(p[i+1:], " ")
	}
	if p == "/" && providerPaths[r.URL.Path] {
		return r.URL.Path
	}
	return p
}

// providerPaths are the OIDC endpoints, which the provider serves behind
// the mux's catch-all "/" pattern: each is a route of its own, as in the
// request metrics' labels.
var providerPaths = func() map[string]bool {
	m := make(map[string]bool, len(route.ProviderPaths))
	for _, p := range route.ProviderPaths {
		m[p] = true
	}
	return m
}()

// knownMethod is the method for the span name: one of HTTP's, or "HTTP"
// for anything else, which a client may make up (http-spans.md, "Name":
// unknown methods are named "HTTP" and recorded as _OTHER).
func knownMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "HTTP"
}

// statusWriter remembers the status a handler answered. Unwrap lets
// http.ResponseController reach the connection underneath (the event
// streams hijack it, and flush).
type statusWriter struct {
	http.ResponseWriter
	status int
}

// WriteHeader implements http.ResponseWriter.
func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap is for http.ResponseController.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
