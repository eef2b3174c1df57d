package web

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
)

type requestIDKey struct{}

// RequestIDs gives every request an id: the X-Request-Id a trusted proxy
// sent (when it looks like one), or a new random one. It is echoed in the
// response and attached to every log line written with the request's
// context (see LogHandler), so one visitor's trouble can be followed
// through the logs of a busy hour.
func RequestIDs(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// One allocation holds the id's header value and what the
		// context carries (a pointer, which needs no boxing): this runs
		// on every request.
		rid := new(requestID)
		if id := r.Header.Get("X-Request-Id"); plausibleID(id) {
			rid.header[0] = id
		} else {
			rid.header[0] = newRequestID()
		}
		w.Header()["X-Request-Id"] = rid.header[:]
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, rid)))
	})
}

// requestID is a request's id, as its response header's value.
type requestID struct{ header [1]string }

// idAlphabet is crypto/rand.Text's: ids look as they always have.
const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

// newRequestID returns 16 random characters of idAlphabet (80 bits), the
// first 16 of a crypto/rand.Text, without its other ten.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = idAlphabet[b[i]%32]
	}
	return string(b[:])
}

// plausibleID accepts a short token of safe characters: a request id ends
// up in logs, which must not be forgeable into extra fields or lines.
func plausibleID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// RequestID returns the id RequestIDs gave the request of ctx, or "".
func RequestID(ctx context.Context) string {
	if rid, _ := ctx.Value(requestIDKey{}).(*requestID); rid != nil {
		return rid.header[0]
	}
	return ""
}

// LogHandler wraps a slog.Handler so that records logged with a request's
// context carry its request_id.
type LogHandler struct{ slog.Handler }

// Handle implements slog.Handler.
func (h LogHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h LogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return LogHandler{h.Handler.WithAttrs(attrs)}
}

// WithGroup implements slog.Handler.
func (h LogHandler) WithGroup(name string) slog.Handler { return LogHandler{h.Handler.WithGroup(name)} }
