// Package telemetry is Anteroom's OpenTelemetry tracing: the tracer
// provider, configured by the standard OTEL_* environment variables and
// exporting over OTLP/HTTP; the HTTP middleware that gives every request a
// server span named by its route; the go-redis hook that gives each Redis
// round trip a client span under it; and the slog handler that writes the
// trace and span ids into the log lines of a traced request.
//
// Tracing is off unless the environment turns it on (Enabled). Off, there
// is no tracer at all: server wraps nothing and hooks nothing, so a request
// costs what it cost before tracing existed.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
	"go.opentelemetry.io/otel/trace/noop"
)

// ServiceName is service.name unless OTEL_SERVICE_NAME or
// OTEL_RESOURCE_ATTRIBUTES names the service otherwise.
const ServiceName = "anteroom"

// The environment variables that decide whether tracing is on. The others
// (endpoint details, headers, timeouts, the sampler, the batch processor,
// the resource) are read by the OpenTelemetry SDK itself, as the
// specification defines them.
const (
	envSDKDisabled    = "OTEL_SDK_DISABLED"
	envTracesExporter = "OTEL_TRACES_EXPORTER"
	envEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	envTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	envProtocol       = "OTEL_EXPORTER_OTLP_PROTOCOL"
	envTracesProtocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
)

// Decision is what the environment says of tracing: on or off, and why,
// for the start-up log.
type Decision struct {
	On     bool
	Reason string
	// Warnings are settings ignored, as the specification asks of values
	// an SDK does not recognise; the caller logs them.
	Warnings []string
}

// Enabled decides from the environment (getenv, os.Getenv in production)
// whether tracing is on. The OpenTelemetry specification makes otlp the
// default of OTEL_TRACES_EXPORTER; Anteroom departs from it in one way
// only: tracing is off by default, so that an instance nobody set up for
// tracing sends nothing anywhere. It is on when
//
//   - OTEL_TRACES_EXPORTER lists otlp, or
//   - OTEL_TRACES_EXPORTER is unset (or names nothing Anteroom knows) and
//     OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT is
//     set: whoever names a collector wants to send to it;
//
// and always off when OTEL_SDK_DISABLED is true or OTEL_TRACES_EXPORTER
// lists none. The rules for the values follow the specification's
// "Environment Variable Specification" (configuration/sdk-environment-variables.md):
// an empty value is unset ("Parsing empty value"); booleans are true only
// for a case-insensitive "true" ("Boolean value"); enum values are
// case-insensitive and an unknown one is ignored with a warning ("Enum
// value"); OTEL_TRACES_EXPORTER is a comma-separated list ("Exporter
// Selection").
//
// The protocol must be http/protobuf: Anteroom exports over OTLP/HTTP only,
// and pointed at a gRPC collector it would send to a port that does not
// understand it, so any other protocol is an error rather than a warning.
func Enabled(getenv func(string) string) (Decision, error) {
	var d Decision
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	for _, k := range []string{envTracesProtocol, envProtocol} {
		if p := get(k); p != "" {
			if !strings.EqualFold(p, "http/protobuf") {
				return d, fmt.Errorf("%s=%s: Anteroom exports traces over OTLP/HTTP only (http/protobuf)", k, p)
			}
			break // the signal's own variable takes precedence
		}
	}
	if strings.EqualFold(get(envSDKDisabled), "true") {
		d.Reason = envSDKDisabled + " is true"
		return d, nil
	}
	var otlp, none bool
	for _, e := range strings.Split(get(envTracesExporter), ",") {
		switch e = strings.ToLower(strings.TrimSpace(e)); e {
		case "":
		case "otlp":
			otlp = true
		case "none":
			none = true
		default:
			d.Warnings = append(d.Warnings, fmt.Sprintf("%s: exporter %q is not supported (only otlp, over HTTP); ignored", envTracesExporter, e))
		}
	}
	switch {
	case none:
		d.Reason = envTracesExporter + " lists none"
	case otlp:
		d.On, d.Reason = true, envTracesExporter+" lists otlp"
	case get(envTracesEndpoint) != "":
		d.On, d.Reason = true, envTracesEndpoint+" is set"
	case get(envEndpoint) != "":
		d.On, d.Reason = true, envEndpoint+" is set"
	default:
		d.Reason = "no OTLP endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) and OTEL_TRACES_EXPORTER does not list otlp"
	}
	return d, nil
}

// Endpoint is where the exporter sends spans, as the OTLP exporter
// specification derives it (protocol/exporter.md, "Endpoint URLs for
// OTLP/HTTP"): OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as is, else
// OTEL_EXPORTER_OTLP_ENDPOINT with /v1/traces appended to its path, else
// http://localhost:4318/v1/traces. For the start-up log, so it drops any
// user and password, query and fragment of the URL.
func Endpoint(getenv func(string) string) string {
	raw := strings.TrimSpace(getenv(envTracesEndpoint))
	if raw == "" {
		base := strings.TrimSpace(getenv(envEndpoint))
		if base == "" {
			base = "http://localhost:4318"
		}
		if u, err := url.Parse(base); err == nil {
			u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
			raw = u.String()
		} else {
			raw = base
		}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(not a URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// Tracing is an instance's tracer provider: exporting over OTLP/HTTP, or
// nothing at all when tracing is off.
type Tracing struct {
	sdk *sdktrace.TracerProvider
}

// FromEnv sets tracing up as the environment says (Enabled). On, it makes
// a tracer provider that batches spans to the OTLP/HTTP endpoint the OTEL_*
// variables name (http://localhost:4318/v1/traces by default), samples as
// OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG say (parentbased_always_on
// by default), and describes the service as service.name "anteroom" and
// service.version version, which OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES override. The SDK's own troubles (an export that
// failed, a bad sampler argument) go to the log at warning level. It also
// becomes OpenTelemetry's global provider, which the OIDC library traces
// its own steps with.
func FromEnv(ctx context.Context, getenv func(string) string, version string) (*Tracing, Decision, error) {
	d, err := Enabled(getenv)
	if err != nil || !d.On {
		return &Tracing{}, d, err
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		slog.Warn("tracing", "component", "otel", "err", err)
	}))
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, d, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithAttributes(semconv.ServiceName(ServiceName), semconv.ServiceVersion(version)),
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		// Last, so that the operator's OTEL_SERVICE_NAME and
		// OTEL_RESOURCE_ATTRIBUTES win.
		resource.WithFromEnv(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, d, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	// The OIDC library (zitadel/oidc's op) traces its steps (tokenHandler,
	// CodeExchange…) through the global provider: they then appear under
	// the endpoint's span.
	globalOnce.Do(func() { otel.SetTracerProvider(forwarder{}) })
	current.Store(tp)
	return NewTracing(tp), d, nil
}

// NewTracing wraps a tracer provider made elsewhere (tests make one with
// their own exporter).
func NewTracing(tp *sdktrace.TracerProvider) *Tracing { return &Tracing{sdk: tp} }

// TracerProvider is the provider to trace with, or nil when tracing is off:
// server then adds no middleware and no hook.
func (t *Tracing) TracerProvider() trace.TracerProvider {
	if t == nil || t.sdk == nil {
		return nil
	}
	return t.sdk
}

// Shutdown exports the spans still batched and stops the provider; a
// no-op when tracing is off.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.sdk == nil {
		return nil
	}
	current.CompareAndSwap(t.sdk, nil)
	return t.sdk.Shutdown(ctx)
}

// ForceFlush exports the spans batched so far.
func (t *Tracing) ForceFlush(ctx context.Context) error {
	if t == nil || t.sdk == nil {
		return nil
	}
	return t.sdk.ForceFlush(ctx)
}

// The global provider. A library keeps the tracer it got from the global
// provider at start-up (zitadel/oidc's op does, in a package variable), and
// OpenTelemetry binds such tracers to the first provider ever set: a second
// FromEnv (a test, an embedder running two instances in turn) would leave
// the library tracing into the first, shut-down provider, whose spans are
// never exported and break the chain from a Redis span to its request. So
// the global provider is set once, to forwarder, which starts each span with
// the provider of the latest FromEnv, or, with none, carries the caller's
// span context without recording, as OpenTelemetry does with no SDK.
var (
	globalOnce sync.Once
	current    atomic.Pointer[sdktrace.TracerProvider]
)

// forwarder is the global provider; see current.
type forwarder struct{ embedded.TracerProvider }

// Tracer implements trace.TracerProvider.
func (forwarder) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return forwardingTracer{name: name, opts: opts}
}

type forwardingTracer struct {
	embedded.Tracer
	name string
	opts []trace.TracerOption
}

// Start implements trace.Tracer.
func (t forwardingTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if tp := current.Load(); tp != nil {
		return tp.Tracer(t.name, t.opts...).Start(ctx, name, opts...)
	}
	return noop.Tracer{}.Start(ctx, name, opts...)
}

// tracerName is the instrumentation scope of every span Anteroom makes.
const tracerName = "github.com/anteroom/anteroom"
