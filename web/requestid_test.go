package web

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRequestIDsReachResponsesAndLogs(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(LogHandler{slog.NewTextHandler(&logs, nil)})
	h := RequestIDs(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		logger.WarnContext(r.Context(), "something happened")
	}))
	for _, tc := range []struct{ sent, want string }{
		{"abc-123", "abc-123"},
		{"", ""},
		{"bad id\nlevel=ERROR forged", ""},
		{strings.Repeat("x", 65), ""},
	} {
		logs.Reset()
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if tc.sent != "" {
			r.Header.Set("X-Request-Id", tc.sent)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		got := w.Header().Get("X-Request-Id")
		if tc.want != "" && got != tc.want || tc.want == "" && (len(got) != 16 || got == tc.sent) {
			t.Fatalf("sent %q: response id %q", tc.sent, got)
		}
		if !strings.Contains(logs.String(), "request_id="+got) || strings.Contains(logs.String(), "forged") {
			t.Fatalf("sent %q: log %q", tc.sent, logs.String())
		}
	}
}

// A new id is random (80 bits, crypto/rand.Text's alphabet): two requests
// never share one, and an id is safe to log as it is.
func TestNewRequestIDsAreRandomAndPlausible(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := newRequestID()
		if len(id) != 16 || !plausibleID(id) || strings.Trim(id, idAlphabet) != "" || seen[id] {
			t.Fatalf("id %q: want 16 new characters of %s", id, idAlphabet)
		}
		seen[id] = true
	}
}
