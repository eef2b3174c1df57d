package route

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// The builders produce paths the patterns match, with the id they were
// given: a change to one without the other fails here.
func TestBuildersMatchThePatterns(t *testing.T) {
	const id = "AbC-123_x"
	for _, c := range []struct {
		method, pattern, path string
	}{
		{http.MethodGet, WaitPattern, Wait(id)},
		{http.MethodPost, ContinuePattern, Continue(id)},
		{http.MethodGet, EventsPattern, Events(id)},
		{http.MethodGet, WaitPattern, StatusJSON(id)},
		{http.MethodPost, RefusedPattern, Refused(id)},
	} {
		mux := http.NewServeMux()
		var got string
		mux.HandleFunc(c.method+" "+c.pattern, func(w http.ResponseWriter, r *http.Request) { got = r.PathValue("id") })
		mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(c.method, c.path, nil))
		if got != id {
			t.Errorf("%s %s: pattern %s saw id %q", c.method, c.path, c.pattern, got)
		}
	}
}
