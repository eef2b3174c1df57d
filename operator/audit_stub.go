package operator

import (
	"log/slog"
	"net/http"
)

// audit records a change made through the admin API. A placeholder for
// this branch alone: the audit log (issue 16's "who changed what") brings
// the real method, and this file goes when the two branches merge.
func (s *Server) audit(r *http.Request, action, target string, before, after any) {
	slog.InfoContext(r.Context(), "admin change", "action", action, "target", target, "before", before, "after", after)
}
