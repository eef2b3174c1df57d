package telemetry

import (
	"context"
	"os"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/anteroom/anteroom/internal/telemetry/otlptest"
)

// TestReadmeTracingExample runs the tracing example of docs/operations.md: its variables,
// with the endpoint pointed at an in-process receiver, turn tracing on, name
// the service, continue a sampled caller's trace and sample new traces at
// the ratio given.
func TestReadmeTracingExample(t *testing.T) {
	b, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "```sh\n# Tracing on:")
	if !ok {
		t.Fatal("docs/operations.md has no sh block starting with \"# Tracing on:\"")
	}
	block, _, _ := strings.Cut(rest, "```")
	_, block, _ = strings.Cut(block, "\n") // the comment's rest
	words := strings.Fields(strings.ReplaceAll(block, "\\\n", " "))
	env := map[string]string{}
	var cmd []string
	for i, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || !strings.HasPrefix(k, "OTEL_") {
			cmd = words[i:]
			break
		}
		env[k] = v
	}
	if len(cmd) < 2 || cmd[0] != "anteroom" || cmd[1] != "serve" {
		t.Fatalf("the example runs %q, want anteroom serve", cmd)
	}
	if env[envEndpoint] == "" {
		t.Fatalf("the example sets no %s: %v", envEndpoint, env)
	}
	rcv := otlptest.NewReceiver(t)
	env[envEndpoint] = rcv.URL
	for _, k := range []string{envTracesEndpoint, envTracesExporter, envSDKDisabled, envProtocol, envTracesProtocol, "OTEL_RESOURCE_ATTRIBUTES"} {
		t.Setenv(k, "")
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	tr, d, err := FromEnv(context.Background(), os.Getenv, "v1")
	if err != nil || !d.On {
		t.Fatalf("the documented example: %+v %v", d, err)
	}
	tracer := tr.TracerProvider().Tracer("t")
	parent := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled, Remote: true})
	_, span := tracer.Start(trace.ContextWithRemoteSpanContext(context.Background(), parent), "continued")
	span.End()
	const roots = 1000
	sampled := 0
	for range roots {
		_, s := tracer.Start(context.Background(), "root")
		if s.SpanContext().IsSampled() {
			sampled++
		}
		s.End()
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	var continued bool
	for _, s := range rcv.Spans() {
		if s.Name == "continued" {
			continued = s.TraceID == parent.TraceID().String() && s.Resource["service.name"] == env["OTEL_SERVICE_NAME"]
		}
	}
	if !continued {
		t.Fatal("the sampled caller's trace was not continued under the example's service name")
	}
	// OTEL_TRACES_SAMPLER_ARG=0.1 of 1,000 new traces: about 100 (the
	// bounds are over 6 standard deviations away).
	if sampled < 40 || sampled > 200 {
		t.Fatalf("%d of %d new traces sampled at the example's ratio", sampled, roots)
	}
}
