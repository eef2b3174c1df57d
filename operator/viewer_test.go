package operator

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/anteroom/anteroom/internal/testredis"
	"github.com/anteroom/anteroom/waitingroom"
)

// A viewer's token reads but changes nothing (RFC 6750 §3.1: a valid token
// without the scope a request needs is answered 403 insufficient_scope),
// and the dashboard it signs in to offers no changes.
func TestViewerTokenReadsOnly(t *testing.T) {
	store, err := waitingroom.NewStore(testredis.Start(t).Client(t), []waitingroom.Room{{ID: "launch", Name: "Launch",
		State: waitingroom.StateOpen, SessionTTL: 30 * time.Minute, MaxWait: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	const viewer = "viewer-token-0123456789"
	s, err := New(Options{Issuer: testIssuer, Store: store, Cache: waitingroom.NewCache(store, time.Second),
		CookieSecrets: [][]byte{testSecret(1)}, AdminToken: fuzzAdminToken,
		Tokens: []Token{{Name: "auditor", Token: viewer, Role: RoleViewer}}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.Register(mux)
	for _, rt := range s.apiRoutes() {
		method, path, _ := strings.Cut(rt.pattern, " ")
		path = strings.NewReplacer("{room}", "launch", "{client}", "shop", "{kid}", "k").Replace(path)
		w := adminCall(mux, method, path, viewer)
		switch {
		case !mutating(method):
			if w.Code == http.StatusUnauthorized || w.Code == http.StatusForbidden {
				t.Errorf("viewer %s %s: %d", method, path, w.Code)
			}
		case w.Code != http.StatusForbidden || !strings.Contains(w.Header().Get("WWW-Authenticate"), "insufficient_scope"):
			t.Errorf("viewer %s %s: %d %q, want 403 insufficient_scope", method, path, w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
	// The dashboard signed in with it.
	form := strings.NewReader("token=" + viewer)
	r := httptest.NewRequest(http.MethodPost, "/admin/login", form)
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	if w.Code != http.StatusSeeOther {
		t.Fatalf("viewer sign-in: %d", w.Code)
	}
	r = httptest.NewRequest(http.MethodGet, "/admin/", nil)
	r.AddCookie(w.Result().Cookies()[0])
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	if body := w.Body.String(); !strings.Contains(body, `class="dash viewer"`) || !strings.Contains(body, "auditor") {
		t.Fatalf("a viewer's dashboard offers changes: %.400s", body)
	}
}
