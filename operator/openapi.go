package operator

import (
	_ "embed"
	"net/http"
)

// openAPIDoc describes the admin API (OpenAPI 3.1), by hand: the test
// TestOpenAPIMatchesTheRoutes keeps it and apiRoutes in step.
//
//go:embed openapi.json
var openAPIDoc []byte

// openAPI serves GET /admin/v1/openapi.json.
func (s *Server) openAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(openAPIDoc)
}
