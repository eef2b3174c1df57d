package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"golang.org/x/oauth2"

	"github.com/anteroom/anteroom/config"
	"github.com/anteroom/anteroom/internal/telemetry"
	"github.com/anteroom/anteroom/internal/telemetry/otlptest"
	"github.com/anteroom/anteroom/server"
	"github.com/anteroom/anteroom/web"
)

// TestTraces runs a whole OIDC flow and the gate's on an instance traced
// as `anteroom serve` traces it (telemetry.FromEnv from OTEL_* variables),
// exporting over OTLP/HTTP to an in-process receiver, and checks what a
// collector receives: a server span per endpoint named by its route
// (semconv http-spans.md "Name"), Redis round trips as children of the
// request that made them, an incoming traceparent continued (W3C Trace
// Context §3.2), the trace and span ids in the request's log lines equal
// to the exported ones, and no code, token, secret, ticket or request id in
// any span.
func TestTraces(t *testing.T) {
	rcv := otlptest.NewReceiver(t)
	for k, v := range map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":        rcv.URL,
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "", "OTEL_TRACES_EXPORTER": "", "OTEL_SDK_DISABLED": "",
		"OTEL_SERVICE_NAME": "", "OTEL_RESOURCE_ATTRIBUTES": "",
		"OTEL_TRACES_SAMPLER": "parentbased_always_on", "OTEL_TRACES_SAMPLER_ARG": "",
	} {
		t.Setenv(k, v)
	}
	tr, d, err := telemetry.FromEnv(t.Context(), os.Getenv, "e2e")
	if err != nil || !d.On {
		t.Fatalf("tracing from the environment: %+v %v", d, err)
	}
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	logs := captureLogs(t)

	insecure := false
	e := newEnv(t, false, func(c *config.Config) {
		c.Rooms = append(c.Rooms, config.Room{ID: gateRoom, Name: "Other",
			SessionTTL: config.Duration(30 * time.Minute), MaxWait: config.Duration(time.Hour)})
		c.Gate = &config.Gate{Cookie: config.GateCookie{Secure: &insecure},
			Rules: []config.Rule{{PathPrefix: "/", Action: "queue", Room: gateRoom}}}
		c.ApplyDefaults()
	})
	startTraced(e, server.WithTracerProvider(tr.TracerProvider()))

	// The relying party's whole flow, every OIDC endpoint.
	rp := e.rp(clientID, secret, rpCallback)
	b := e.browser()
	l := newLogin()
	waitURL := queue(t, b, rp, l)
	pollStatus(t, b, waitURL)
	firstEvent(t, b, waitURL+"/events")
	e.advance(1)
	resp, _ := visit(t, b, http.MethodPost, waitURL+"/continue")
	code := codeFrom(t, resp, l)
	if code == "" {
		t.Fatalf("no code after continue: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	tok, err := rp.oauth.Exchange(rp.ctx, code, oauth2.VerifierOption(l.verifier))
	if err != nil {
		t.Fatal(err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	if _, err := rp.verifier.Verify(rp.ctx, rawID); err != nil {
		t.Fatal(err)
	}
	if _, err := rp.provider.UserInfo(rp.ctx, oauth2.StaticTokenSource(tok)); err != nil {
		t.Fatal(err)
	}
	if status, _, body := e.call(http.MethodPost, "/oauth/introspect", url.Values{"token": {tok.AccessToken}}, clientID, secret, nil); status != http.StatusOK {
		t.Fatalf("introspect: %d %s", status, body)
	}
	if status, _, body := e.call(http.MethodPost, "/revoke", url.Values{"token": {tok.AccessToken}}, clientID, secret, nil); status != http.StatusOK {
		t.Fatalf("revoke: %d %s", status, body)
	}
	if resp, _ := visit(t, b, http.MethodGet, issuer+"/end_session?id_token_hint="+url.QueryEscape(rawID)+"&client_id="+clientID); resp.StatusCode >= 500 {
		t.Fatalf("end_session: %d", resp.StatusCode)
	}
	// The gate's: refused, started, queued, admitted, let through.
	gateFlow(e)

	// Two requests that log, each continuing a trace of the caller's.
	const (
		authTrace, authParent = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
		gateTrace, gateParent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	)
	tracedGet(t, e, "/authorize?client_id=nobody&response_type=code&scope=openid&redirect_uri=https%3A%2F%2Fevil.example%2Fcb", authTrace, authParent)
	tracedGet(t, e, "/gate/callback?state=forged&code=forged", gateTrace, gateParent)

	// The request metrics, under the tracing middleware, still see the
	// route the mux matched.
	m := e.scrape()
	for _, route := range []string{"GET /wait/{id}", "POST /wait/{id}/continue", "/oauth/token", "GET /gate/auth"} {
		if m[`anteroom_http_request_duration_seconds_count{route="`+route+`"}`] == 0 {
			t.Errorf("no request counted under route %q with tracing on", route)
		}
	}

	want := []string{
		"GET /.well-known/openid-configuration", "GET /authorize", "GET /wait/{id}", "GET /wait/{id}/events",
		"POST /wait/{id}/continue", "POST /oauth/token", "GET /keys", "GET /userinfo", "POST /oauth/introspect",
		"POST /revoke", "GET /end_session", "GET /gate/auth", "GET /gate/start", "GET /gate/callback",
	}
	// Spans end as their handlers return, which may be just after the
	// client has its answer: flush until the last ones are in.
	var spans []otlptest.Span
	waitUntil(10*time.Second, func() bool {
		_ = tr.ForceFlush(context.Background())
		spans = rcv.Spans()
		return len(missing(spans, want)) == 0 && len(spanOf(spans, gateTrace, "GET /gate/callback")) > 0
	})
	if p := rcv.Problems(); len(p) > 0 {
		t.Fatalf("the receiver refused exports: %v", p)
	}
	if m := missing(spans, want); len(m) > 0 {
		t.Fatalf("no span named %q among %d", m, len(spans))
	}

	byID := map[string]otlptest.Span{}
	for _, s := range spans {
		byID[s.SpanID] = s
		if s.Resource["service.name"] != telemetry.ServiceName || s.Resource["service.version"] != "e2e" {
			t.Fatalf("span %q: resource %v", s.Name, s.Resource)
		}
	}

	// Redis round trips are children of the request that made them: the
	// admission's script under continue (in the room), the code's
	// consumption under the token endpoint.
	for _, parent := range []string{"POST /wait/{id}/continue", "POST /oauth/token"} {
		found := false
		for _, s := range spans {
			if s.Attributes["db.system.name"] != "redis" || (parent == "POST /wait/{id}/continue" && s.Attributes["anteroom.room"] != roomID) {
				continue
			}
			// Its parent, or an ancestor: the OIDC library's own spans
			// (tokenHandler, CodeExchange…) may stand between.
			for p, ok := byID[s.ParentSpanID]; ok && p.TraceID == s.TraceID; p, ok = byID[p.ParentSpanID] {
				if p.Name == parent && p.Kind == tracepb.Span_SPAN_KIND_SERVER {
					found = true
					break
				}
			}
		}
		if !found {
			for _, s := range spans {
				t.Logf("%s %s %s %q %v", s.TraceID, s.SpanID, s.ParentSpanID, s.Name, s.Attributes)
			}
			t.Errorf("no Redis span under %q", parent)
		}
	}

	// The caller's traces were continued, and the lines logged while
	// handling them carry their trace and their server span.
	lines := logs.records(t)
	for _, c := range []struct{ trace, parent, name, msg string }{
		{authTrace, authParent, "GET /authorize", "authorization request refused"},
		{gateTrace, gateParent, "GET /gate/callback", "gate callback refused"},
	} {
		got := spanOf(spans, c.trace, c.name)
		if len(got) != 1 || got[0].ParentSpanID != c.parent {
			t.Fatalf("%s with traceparent %s-%s: spans %+v", c.name, c.trace, c.parent, got)
		}
		logged := false
		for _, l := range lines {
			if l["msg"] == c.msg && l["trace_id"] == c.trace {
				logged = true
				if l["span_id"] != got[0].SpanID {
					t.Errorf("%q logged span %v, exported %s", c.msg, l["span_id"], got[0].SpanID)
				}
			}
		}
		if !logged {
			t.Errorf("no %q line with trace_id %s", c.msg, c.trace)
		}
	}
	// Every line with a trace names a span that was exported.
	traced := 0
	for _, l := range lines {
		tid, ok := l["trace_id"].(string)
		if !ok {
			continue
		}
		traced++
		if s, ok := byID[l["span_id"].(string)]; !ok || s.TraceID != tid {
			t.Errorf("log line %v names a span that was not exported", l)
		}
	}
	if traced < 2 {
		t.Fatalf("test is void: %d traced log lines", traced)
	}

	// Nothing secret in any span: the attributes are a fixed set, and no
	// code, token, secret, cookie, state, nonce, verifier or request id
	// appears in a name or a value.
	allowed := map[string]bool{"http.request.method": true, "http.route": true, "http.response.status_code": true,
		"db.system.name": true, "db.operation.name": true, "db.operation.batch.size": true, "anteroom.room": true, "error.type": true}
	secrets := map[string]string{"code": code, "access token": tok.AccessToken,
		"ID token": rawID, "client secret": secret, "admin token": adminToken, "cookie key": cookieKey,
		"state": l.state, "nonce": l.nonce, "verifier": l.verifier,
		"auth request id": strings.TrimPrefix(waitURL, issuer+"/wait/")}
	u, _ := url.Parse(issuer)
	for _, ck := range b.Jar.Cookies(u) {
		secrets["cookie "+ck.Name] = ck.Value
	}
	for what, v := range secrets {
		if len(v) < 8 {
			t.Fatalf("test is void: %s is %q", what, v)
		}
	}
	for _, s := range spans {
		for k, v := range s.Attributes {
			if !allowed[k] {
				t.Errorf("span %q has attribute %s=%q, outside the documented set", s.Name, k, v)
			}
			for what, secret := range secrets {
				if strings.Contains(v, secret) || strings.Contains(s.Name, secret) {
					t.Errorf("span %q: the %s appears in %s=%q", s.Name, what, k, v)
				}
			}
		}
	}
}

// startTraced runs an instance as env.run does, with opts.
func startTraced(e *env, opts ...server.Option) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := server.New(ctx, e.cfg, e.rdb, append([]server.Option{server.WithClock(e.clock.Now)}, opts...)...)
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = a.Serve(ctx, ln); close(done) }()
	e.t.Cleanup(func() { cancel(); <-done })
	e.route(ln.Addr().String())
}

// firstEvent opens the page's event stream and reads its first event.
func firstEvent(t *testing.T, b *http.Client, u string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data:") {
			return
		}
	}
	t.Fatalf("event stream %s: %d, no event (%v)", u, resp.StatusCode, sc.Err())
}

// tracedGet sends GET path with a sampled W3C traceparent (Trace Context
// §3.2) of trace and parent.
func tracedGet(t *testing.T, e *env, path, trace, parent string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, issuer+path, nil)
	req.Header.Set("traceparent", "00-"+trace+"-"+parent+"-01")
	resp, err := e.noRedirects().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

func missing(spans []otlptest.Span, names []string) []string {
	have := map[string]bool{}
	for _, s := range spans {
		have[s.Name] = true
	}
	var out []string
	for _, n := range names {
		if !have[n] {
			out = append(out, n)
		}
	}
	return out
}

func spanOf(spans []otlptest.Span, trace, name string) []otlptest.Span {
	var out []otlptest.Span
	for _, s := range spans {
		if s.TraceID == trace && s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// logCapture holds the JSON lines logged through slog's default logger,
// built as `anteroom serve` builds it (request ids, then trace ids).
type logCapture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *logCapture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

func captureLogs(t *testing.T) *logCapture {
	c := &logCapture{}
	prev := slog.Default()
	slog.SetDefault(slog.New(telemetry.LogHandler{Handler: web.LogHandler{Handler: slog.NewJSONHandler(c, nil)}}))
	t.Cleanup(func() { slog.SetDefault(prev) })
	return c
}

func (c *logCapture) records(t *testing.T) []map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(c.buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// TestServedBinaryTraces: `anteroom serve` turns tracing on from its
// environment (OTEL_EXPORTER_OTLP_ENDPOINT), continues a caller's
// traceparent, writes the trace and span ids into the request's log line,
// and flushes its spans to the collector as it shuts down on SIGTERM.
func TestServedBinaryTraces(t *testing.T) {
	rcv := otlptest.NewReceiver(t)
	for k, v := range map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.URL, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "", "OTEL_TRACES_EXPORTER": "",
		"OTEL_SDK_DISABLED": "", "OTEL_TRACES_SAMPLER": "", "OTEL_SERVICE_NAME": "", "OTEL_RESOURCE_ATTRIBUTES": "",
	} {
		t.Setenv(k, v) // the process inherits them
	}
	p := startProcess(t, "traced")
	const trace, parent = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
	req, _ := http.NewRequest(http.MethodGet, "http://"+p.addr+"/authorize?client_id=nobody&response_type=code&scope=openid", nil)
	req.Header.Set("traceparent", "00-"+trace+"-"+parent+"-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	p.signal(syscall.SIGTERM)
	<-p.exited
	if p := rcv.Problems(); len(p) > 0 {
		t.Fatalf("the receiver refused exports: %v", p)
	}
	got := spanOf(rcv.Spans(), trace, "GET /authorize")
	if len(got) != 1 || got[0].ParentSpanID != parent || got[0].Resource["service.name"] != telemetry.ServiceName {
		t.Fatalf("exported %+v, want one GET /authorize span under %s", got, parent)
	}
	out := p.output.String()
	if !strings.Contains(out, "msg=tracing on=true") || !strings.Contains(out, "endpoint="+rcv.URL+"/v1/traces") {
		t.Fatalf("the start-up log does not say tracing is on, to %s/v1/traces:\n%s", rcv.URL, out)
	}
	want := "trace_id=" + trace + " span_id=" + got[0].SpanID
	for line := range strings.SplitSeq(out, "\n") {
		if strings.Contains(line, "authorization request refused") {
			if !strings.Contains(line, want) {
				t.Fatalf("the request's log line %q lacks %q", line, want)
			}
			return
		}
	}
	t.Fatalf("no log line of the refused request:\n%s", out)
}
