package operator

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// TestOpenAPIMatchesTheRoutes: every route of the admin API is in
// openapi.json with its method, and the document describes no other, so
// the document cannot drift from the handlers unnoticed.
func TestOpenAPIMatchesTheRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Fatalf("openapi %q, want 3.1", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, raw := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
			var op struct {
				Responses map[string]json.RawMessage `json:"responses"`
			}
			if err := json.Unmarshal(raw, &op); err != nil || op.Responses["401"] == nil {
				t.Errorf("%s %s: documents no 401 (every route needs a token)", method, path)
			}
			if mutating(strings.ToUpper(method)) && op.Responses["403"] == nil {
				t.Errorf("%s %s: a change, but documents no 403 for a viewer's token", method, path)
			}
		}
	}
	registered := map[string]bool{}
	for _, rt := range (&Server{}).apiRoutes() {
		registered[rt.pattern] = true
	}
	for _, r := range slices.Sorted(maps.Keys(registered)) {
		if !documented[r] {
			t.Errorf("route %s is not in openapi.json", r)
		}
	}
	for _, d := range slices.Sorted(maps.Keys(documented)) {
		if !registered[d] {
			t.Errorf("openapi.json documents %s, which no handler serves", d)
		}
	}
	// And the mux Register fills routes each documented request to the
	// documented pattern (no other route shadows it).
	mux := http.NewServeMux()
	(&Server{}).Register(mux)
	for _, d := range slices.Sorted(maps.Keys(documented)) {
		method, path, _ := strings.Cut(d, " ")
		concrete := strings.NewReplacer("{room}", "launch", "{client}", "shop", "{kid}", "k1").Replace(path)
		_, pattern := mux.Handler(httptest.NewRequest(method, concrete, nil))
		if pattern != d {
			t.Errorf("%s %s is routed to %q", method, concrete, pattern)
		}
	}
}
