package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/anteroom/anteroom/internal/route"
	"github.com/anteroom/anteroom/internal/telemetry/otlptest"
	"github.com/anteroom/anteroom/internal/testredis"
)

// The decision follows the OpenTelemetry specification's environment
// variable rules (configuration/sdk-environment-variables.md), cited per
// case, with Anteroom's one departure: off unless an endpoint or otlp is
// named.
func TestEnabled(t *testing.T) {
	for _, c := range []struct {
		name    string
		env     map[string]string
		on      bool
		warn    bool
		wantErr string
	}{
		{name: "nothing set: off by default (Anteroom's departure from the otlp default)", on: false},
		{name: "the traces endpoint turns it on", env: map[string]string{envTracesEndpoint: "http://c:4318/v1/traces"}, on: true},
		{name: "the general endpoint turns it on", env: map[string]string{envEndpoint: "http://c:4318"}, on: true},
		{name: "an empty endpoint is unset (Parsing empty value)", env: map[string]string{envEndpoint: "  "}, on: false},
		{name: "OTEL_TRACES_EXPORTER=otlp alone turns it on, to the default endpoint", env: map[string]string{envTracesExporter: "otlp"}, on: true},
		{name: "enum values are case-insensitive (Enum value)", env: map[string]string{envTracesExporter: " OTLP "}, on: true},
		{name: "the exporter is a list (Exporter Selection)", env: map[string]string{envTracesExporter: "console,otlp"}, on: true, warn: true},
		{name: "none wins over an endpoint (Exporter Selection: none)", env: map[string]string{envTracesExporter: "none", envEndpoint: "http://c:4318"}, on: false},
		{name: "an unknown exporter is ignored with a warning (Enum value)", env: map[string]string{envTracesExporter: "zipkin"}, on: false, warn: true},
		{name: "an unknown exporter is ignored: the endpoint still decides", env: map[string]string{envTracesExporter: "zipkin", envEndpoint: "http://c:4318"}, on: true, warn: true},
		{name: "OTEL_SDK_DISABLED=true turns everything off (General SDK Configuration)", env: map[string]string{envSDKDisabled: "TRUE", envTracesExporter: "otlp"}, on: false},
		{name: "a boolean is true only for true (Boolean value)", env: map[string]string{envSDKDisabled: "1", envEndpoint: "http://c:4318"}, on: true},
		{name: "http/protobuf is accepted", env: map[string]string{envProtocol: "http/protobuf", envEndpoint: "http://c:4318"}, on: true},
		{name: "grpc is refused: this exporter speaks OTLP/HTTP", env: map[string]string{envProtocol: "grpc", envEndpoint: "http://c:4317"}, wantErr: "OTEL_EXPORTER_OTLP_PROTOCOL=grpc"},
		{name: "the traces protocol takes precedence (OTLP Exporter: signal-specific options)", env: map[string]string{envTracesProtocol: "http/protobuf", envProtocol: "grpc", envEndpoint: "http://c:4318"}, on: true},
		{name: "a wrong traces protocol is refused", env: map[string]string{envTracesProtocol: "http/json", envEndpoint: "http://c:4318"}, wantErr: "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/json"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, err := Enabled(func(k string) string { return c.env[k] })
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want one naming %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.On != c.on || (len(d.Warnings) > 0) != c.warn || d.Reason == "" {
				t.Fatalf("got %+v, want on=%v warnings=%v and a reason", d, c.on, c.warn)
			}
		})
	}
}

// recorder is a tracer provider whose spans the test reads.
func recorder(t *testing.T, opts ...sdktrace.TracerProviderOption) (*sdktrace.TracerProvider, *tracetest.InMemoryExporter) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(append([]sdktrace.TracerProviderOption{sdktrace.WithSyncer(exp)}, opts...)...)
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, exp
}

func attrOf(s tracetest.SpanStub, key string) string {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}

// Spans are named "{method} {http.route}" (semconv v1.43.0
// http-spans.md, "Name"), the route being the mux pattern or, behind the
// provider's catch-all, the OIDC endpoint; never the raw path.
func TestHandlerNamesSpansByRoute(t *testing.T) {
	tp, exp := recorder(t)
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+route.WaitPattern, func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("GET /boom", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != route.Token {
			http.NotFound(w, r)
		}
	})
	h := Handler(tp, mux)
	for _, c := range []struct {
		method, path, name, route, status string
		err                               bool
	}{
		{http.MethodGet, "/wait/SECRETID123", "GET /wait/{id}", "/wait/{id}", "200", false},
		{http.MethodPost, route.Token + "?code=SECRETCODE", "POST /oauth/token", "/oauth/token", "200", false},
		{http.MethodGet, "/favicon.ico", "GET /", "/", "404", false},
		{http.MethodGet, "/boom", "GET /boom", "/boom", "503", true},
		{"BREW", "/wait/x", "HTTP /", "/", "404", false},
	} {
		exp.Reset()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(c.method, c.path, nil))
		spans := exp.GetSpans()
		if len(spans) != 1 {
			t.Fatalf("%s %s: %d spans", c.method, c.path, len(spans))
		}
		s := spans[0]
		if s.Name != c.name || attrOf(s, "http.route") != c.route || attrOf(s, "http.response.status_code") != c.status || s.SpanKind != trace.SpanKindServer {
			t.Errorf("%s %s: span %q route %q status %q kind %v, want %q %q %q server", c.method, c.path, s.Name, attrOf(s, "http.route"), attrOf(s, "http.response.status_code"), s.SpanKind, c.name, c.route, c.status)
		}
		if (s.Status.Code.String() == "Error") != c.err {
			t.Errorf("%s %s: status %v, want error=%v (5xx only, http-spans.md \"Status\")", c.method, c.path, s.Status, c.err)
		}
		for _, kv := range s.Attributes {
			if v := kv.Value.String(); strings.Contains(v, "SECRET") {
				t.Errorf("%s %s: attribute %s=%q carries the path or query", c.method, c.path, kv.Key, v)
			}
		}
		if c.method == "BREW" && attrOf(s, "http.request.method") != "_OTHER" {
			t.Errorf("unknown method recorded as %q, want _OTHER", attrOf(s, "http.request.method"))
		}
	}
}

// An incoming traceparent makes the request's span its child (W3C Trace
// Context §3.2: traceparent's trace-id and parent-id).
func TestHandlerContinuesTheCallersTrace(t *testing.T) {
	tp, exp := recorder(t)
	var inside trace.SpanContext
	h := Handler(tp, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inside = trace.SpanContextFromContext(r.Context())
	}))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	h.ServeHTTP(httptest.NewRecorder(), req)
	s := exp.GetSpans()[0]
	if s.SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || s.Parent.SpanID().String() != "00f067aa0ba902b7" || !s.Parent.IsRemote() {
		t.Fatalf("span %s parent %s: not the caller's trace", s.SpanContext.TraceID(), s.Parent.SpanID())
	}
	if inside.SpanID() != s.SpanContext.SpanID() {
		t.Fatal("the handler's context does not carry the request's span")
	}
}

// An unsampled request (OTEL_TRACES_SAMPLER=always_off, or a caller's
// traceparent with the sampled flag unset under parentbased_*) still
// carries its trace in the context, records nothing, and is not wrapped.
func TestHandlerUnsampled(t *testing.T) {
	tp, exp := recorder(t, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())))
	var w http.ResponseWriter
	rec := httptest.NewRecorder()
	h := Handler(tp, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { w = rw }))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
	h.ServeHTTP(rec, req)
	if len(exp.GetSpans()) != 0 {
		t.Fatal("an unsampled request was exported")
	}
	if w != http.ResponseWriter(rec) {
		t.Fatal("an unsampled request's writer was wrapped")
	}
}

// The event streams hijack the connection through
// http.ResponseController, which must reach it through the wrapper.
func TestStatusWriterUnwraps(t *testing.T) {
	rec := httptest.NewRecorder()
	sw := &statusWriter{ResponseWriter: rec}
	if err := http.NewResponseController(sw).Flush(); err != nil {
		t.Fatalf("flush through the wrapper: %v", err)
	}
	if !rec.Flushed {
		t.Fatal("the recorder was not flushed")
	}
}

// A log line written with a traced context carries the trace and span ids;
// one without a span, none.
func TestLogHandlerAddsTheTrace(t *testing.T) {
	tp, _ := recorder(t)
	var buf bytes.Buffer
	log := slog.New(LogHandler{slog.NewJSONHandler(&buf, nil)})
	ctx, span := tp.Tracer("t").Start(context.Background(), "x")
	log.InfoContext(ctx, "traced")
	span.End()
	log.Info("untraced")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var traced, untraced map[string]any
	_ = json.Unmarshal([]byte(lines[0]), &traced)
	_ = json.Unmarshal([]byte(lines[1]), &untraced)
	if traced["trace_id"] != span.SpanContext().TraceID().String() || traced["span_id"] != span.SpanContext().SpanID().String() {
		t.Fatalf("traced line %v, want trace %s span %s", traced, span.SpanContext().TraceID(), span.SpanContext().SpanID())
	}
	if _, ok := untraced["trace_id"]; ok {
		t.Fatalf("untraced line has a trace id: %v", untraced)
	}
}

func TestRoomOf(t *testing.T) {
	for _, c := range []struct {
		args []any
		want string
	}{
		{[]any{"get", "anteroom:{r:launch}:serving"}, "launch"},
		{[]any{"evalsha", "abc", 2, "test-x:{r:sale_2}:tail", "other"}, "sale_2"},
		{[]any{"evalsha", "abc", 0}, ""},
		{[]any{"get", "anteroom:at:SECRETTOKENID"}, ""},
		{[]any{"set", "anteroom:{r:UPPER}:x", "v"}, ""},
		{[]any{"ping"}, ""},
		{[]any{"get", 7}, ""},
	} {
		if got := roomOf(c.args); got != c.want {
			t.Errorf("roomOf(%v) = %q, want %q", c.args, got, c.want)
		}
	}
}

// Each Redis round trip of a traced request is a client span under the
// request's; its attributes name the command and the room, never a key or
// a value. Round trips outside a request make no span.
func TestRedisHook(t *testing.T) {
	srv := testredis.Start(t)
	rdb := srv.Client(t)
	tp, exp := recorder(t)
	rdb.AddHook(RedisHook(tp))
	ctx := context.Background()

	if err := rdb.Set(ctx, "anteroom:{r:launch}:serving", "SECRETVALUE", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n := len(exp.GetSpans()); n != 0 {
		t.Fatalf("a round trip outside a request made %d spans", n)
	}

	ctx, parent := tp.Tracer("t").Start(ctx, "GET /wait/{id}")
	_ = rdb.Get(ctx, "anteroom:{r:launch}:serving").Err()
	_ = rdb.Get(ctx, "anteroom:at:SECRETTOKENID").Err() // redis.Nil: an answer, not an error
	_, _ = rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Incr(ctx, "anteroom:{r:launch}:a")
		p.Incr(ctx, "anteroom:{r:launch}:b")
		return nil
	})
	_, _ = rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Get(ctx, "anteroom:{r:launch}:serving")
		p.Incr(ctx, "anteroom:{r:launch}:a")
		return nil
	})
	err := rdb.Incr(ctx, "anteroom:{r:launch}:serving").Err() // a string that is no integer
	parent.End()
	if err == nil {
		t.Fatal("INCR of a non-integer succeeded")
	}

	want := []struct{ name, room, batch, errType string }{
		{"GET", "launch", "", ""},
		{"GET", "", "", ""},
		{"BATCH INCR", "launch", "2", ""},
		{"BATCH", "launch", "2", ""},
		{"INCR", "launch", "", "ERR"},
	}
	spans := exp.GetSpans()
	if len(spans) != len(want)+1 {
		for _, s := range spans {
			t.Logf("span %q %v", s.Name, s.Attributes)
		}
		t.Fatalf("%d spans, want %d", len(spans), len(want)+1)
	}
	for i, w := range want {
		s := spans[i]
		if s.Name != w.name || attrOf(s, "anteroom.room") != w.room || attrOf(s, "db.operation.batch.size") != w.batch ||
			attrOf(s, "error.type") != w.errType || attrOf(s, "db.system.name") != "redis" || s.SpanKind != trace.SpanKindClient {
			t.Errorf("span %d: %q room %q batch %q error %q kind %v, want %+v", i, s.Name, attrOf(s, "anteroom.room"),
				attrOf(s, "db.operation.batch.size"), attrOf(s, "error.type"), s.SpanKind, w)
		}
		if s.Parent.SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("span %d %q is not the request's child", i, s.Name)
		}
		for _, kv := range s.Attributes {
			if v := kv.Value.String(); strings.Contains(v, "SECRET") || strings.Contains(v, "anteroom:") {
				t.Errorf("span %q: attribute %s=%q carries a key or value", s.Name, kv.Key, v)
			}
		}
		if strings.Contains(s.Status.Description, "SECRET") || strings.Contains(s.Status.Description, "anteroom:") {
			t.Errorf("span %q: status %q carries a key or value", s.Name, s.Status.Description)
		}
	}
}

func TestErrorClass(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{context.DeadlineExceeded, "timeout"},
		{errors.Join(errors.New("x"), context.Canceled), "canceled"},
		{errors.New("whatever anteroom:at:SECRET"), "other"},
	} {
		if got := errorClass(c.err); got != c.want {
			t.Errorf("errorClass(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

// FromEnv exports over OTLP/HTTP to the endpoint the environment names, as
// binary Protobuf (OTLP specification, "OTLP/HTTP"), with the service the
// environment names (OTEL_SERVICE_NAME over the default, resource
// semantic conventions), sampling as OTEL_TRACES_SAMPLER says.
func TestFromEnvExportsOverOTLPHTTP(t *testing.T) {
	rcv := otlptest.NewReceiver(t)
	t.Setenv(envTracesEndpoint, rcv.URL+"/v1/traces")
	t.Setenv("OTEL_SERVICE_NAME", "queue-eu")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=test")
	t.Setenv("OTEL_TRACES_SAMPLER", "always_on")
	tr, d, err := FromEnv(context.Background(), os.Getenv, "v9.9.9")
	if err != nil || !d.On {
		t.Fatalf("FromEnv: %+v %v", d, err)
	}
	_, span := tr.TracerProvider().Tracer("t").Start(context.Background(), "hello")
	span.End()
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p := rcv.Problems(); len(p) > 0 {
		t.Fatalf("the receiver refused exports: %v", p)
	}
	spans := rcv.Spans()
	if len(spans) != 1 || spans[0].Name != "hello" || spans[0].TraceID != span.SpanContext().TraceID().String() {
		t.Fatalf("received %+v", spans)
	}
	res := spans[0].Resource
	if res["service.name"] != "queue-eu" || res["service.version"] != "v9.9.9" || res["deployment.environment.name"] != "test" {
		t.Fatalf("resource %v", res)
	}

	t.Setenv("OTEL_TRACES_SAMPLER", "always_off")
	tr, _, err = FromEnv(context.Background(), os.Getenv, "v9.9.9")
	if err != nil {
		t.Fatal(err)
	}
	if _, span := tr.TracerProvider().Tracer("t").Start(context.Background(), "x"); span.IsRecording() {
		t.Fatal("OTEL_TRACES_SAMPLER=always_off: the span records")
	}
	_ = tr.Shutdown(context.Background())
}

// Off, there is no provider at all: server adds no middleware and no hook.
func TestFromEnvOff(t *testing.T) {
	for _, k := range []string{envTracesEndpoint, envEndpoint, envTracesExporter, envSDKDisabled} {
		t.Setenv(k, "")
	}
	tr, d, err := FromEnv(context.Background(), os.Getenv, "v")
	if err != nil || d.On || tr.TracerProvider() != nil || tr.Shutdown(context.Background()) != nil {
		t.Fatalf("off: %+v %v %v", d, err, tr.TracerProvider())
	}
}

// A library's tracer, taken from the global provider before tracing was
// set up (as zitadel/oidc's op takes it at start-up), traces into the
// provider of the latest FromEnv, not the first one, and after Shutdown
// carries its caller's trace without recording.
func TestGlobalProviderFollowsTheLatestFromEnv(t *testing.T) {
	lib := otel.Tracer("a library")
	for i := range 2 {
		rcv := otlptest.NewReceiver(t)
		t.Setenv(envTracesEndpoint, rcv.URL+"/v1/traces")
		t.Setenv("OTEL_TRACES_SAMPLER", "always_on")
		tr, _, err := FromEnv(context.Background(), os.Getenv, "v")
		if err != nil {
			t.Fatal(err)
		}
		_, span := lib.Start(context.Background(), "step")
		span.End()
		if err := tr.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := rcv.Spans(); len(got) != 1 || got[0].Name != "step" {
			t.Fatalf("FromEnv #%d: the library's span went elsewhere: %+v", i+1, got)
		}
	}
	tp, _ := recorder(t)
	ctx, parent := tp.Tracer("t").Start(context.Background(), "request")
	_, span := lib.Start(ctx, "step")
	if span.IsRecording() || span.SpanContext().SpanID() != parent.SpanContext().SpanID() {
		t.Fatal("with no provider the library's span does not carry its caller's trace")
	}
}

// The endpoint in the start-up log is the one the exporter uses (OTLP
// exporter specification, "Endpoint URLs for OTLP/HTTP"), without
// credentials.
func TestEndpoint(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{nil, "http://localhost:4318/v1/traces"},
		{map[string]string{envEndpoint: "https://collector:4318"}, "https://collector:4318/v1/traces"},
		{map[string]string{envEndpoint: "https://collector:4318/otlp/"}, "https://collector:4318/otlp/v1/traces"},
		{map[string]string{envEndpoint: "https://x", envTracesEndpoint: "http://user:SECRET@c:4318/custom?k=SECRET"}, "http://c:4318/custom"},
		{map[string]string{envTracesEndpoint: "not a url"}, "(not a URL)"},
	} {
		if got := Endpoint(func(k string) string { return c.env[k] }); got != c.want {
			t.Errorf("Endpoint(%v) = %q, want %q", c.env, got, c.want)
		}
	}
}
