package oidc

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync/atomic"
)

// The library turns every storage error into an OAuth error of its own
// choosing (invalid_grant at the token endpoint, a 400 with the error's text
// at the callback). A relying party treats invalid_grant as final, so a
// Redis outage would throw away logins and refresh tokens. Storage marks
// infrastructure failures on the request's context instead, and the
// provider's handler replaces whatever the library wrote with a 503 the
// client will retry.

type outageKey struct{}

type outage struct{ hit atomic.Bool }

// down marks the request as failed by the store and returns err.
func down(ctx context.Context, err error) error {
	if o, ok := ctx.Value(outageKey{}).(*outage); ok {
		o.hit.Store(true)
	}
	return err
}

// bufferedWriter holds a response back until the handler is done, so it
// can be replaced. Token endpoint responses are small.
type bufferedWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header { return b.header }
func (b *bufferedWriter) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}
func (b *bufferedWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

// guardOutage runs h with an outage marker; if the store failed, the client
// gets 503 temporarily_unavailable with Retry-After and the details go to
// the log only.
func guardOutage(w http.ResponseWriter, r *http.Request, h http.Handler) {
	o := &outage{}
	buf := &bufferedWriter{header: w.Header()}
	h.ServeHTTP(buf, r.WithContext(context.WithValue(r.Context(), outageKey{}, o)))
	if o.hit.Load() {
		slog.WarnContext(r.Context(), "store unavailable", "path", r.URL.Path)
		for k := range w.Header() {
			if k != "Cache-Control" && k != "Pragma" {
				w.Header().Del(k)
			}
		}
		w.Header().Set("Retry-After", "5")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]string{
			"error":             "temporarily_unavailable",
			"error_description": "the waiting room cannot reach its store; try again shortly",
		})
		return
	}
	buf.flushTo(w)
}

// flushTo writes the held-back response to w (whose header map the buffer
// shares).
func (b *bufferedWriter) flushTo(w http.ResponseWriter) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	w.WriteHeader(b.status)
	_, _ = w.Write(b.body.Bytes())
}
