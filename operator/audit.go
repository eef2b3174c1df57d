package operator

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/anteroom/anteroom/internal/rediskey"
)

// auditMax bounds the audit log: the oldest entries fall off, so the log
// costs a few MiB of Redis at most however busy the operators are.
const auditMax = 10_000

// auditEntry is one change made through the admin API, the CLI or the
// dashboard (they all call the API).
type auditEntry struct {
	At     time.Time `json:"at"`
	Who    string    `json:"who"`
	Action string    `json:"action"`
	Target string    `json:"target"`
	Before any       `json:"before"`
	After  any       `json:"after"`
}

// audit records a change made by r's principal: action (e.g.
// "room.create") on target (e.g. "room/sale"), with the state before and
// after it (nil: none, as before a creation). Every handler that changes
// something calls it once the change is made. The log is append-only and
// bounded (auditMax), shared by every instance in Redis. A change is not
// undone when its record cannot be written (the store just took the
// change, so this is rare): the failure is logged with the whole entry,
// so nothing is lost from the logs either.
func (s *Server) audit(r *http.Request, action, target string, before, after any) {
	e := auditEntry{At: s.store.Now().UTC(), Action: action, Target: target, Before: before, After: after}
	if p := who(r); p != nil {
		e.Who = p.name
	}
	b, err := json.Marshal(e)
	if err == nil && s.rdb == nil {
		// No Redis to keep it in (an embedder's or a test's server): the
		// log is the record.
		slog.InfoContext(r.Context(), "admin change", "entry", string(b))
		return
	}
	if err == nil {
		pipe := s.rdb.TxPipeline()
		pipe.LPush(r.Context(), rediskey.Audit, b)
		pipe.LTrim(r.Context(), rediskey.Audit, 0, auditMax-1)
		_, err = pipe.Exec(r.Context())
	}
	if err != nil {
		slog.ErrorContext(r.Context(), "audit log not written", "entry", string(b), "err", err)
		return
	}
	slog.InfoContext(r.Context(), "admin change", "who", e.Who, "action", action, "target", target)
}

// adminAudit serves GET /admin/v1/audit?limit=N: the newest N entries
// (default 100, at most 1000), newest first.
func (s *Server) adminAudit(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeJSON(w, http.StatusBadRequest, apiError{"invalid_request", "limit: must be a number from 1 to 1000"})
			return
		}
		limit = n
	}
	entries := []json.RawMessage{}
	if s.rdb != nil {
		raw, err := s.rdb.LRange(r.Context(), rediskey.Audit, 0, int64(limit-1)).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			s.apiStoreError(w, r, err)
			return
		}
		for _, e := range raw {
			entries = append(entries, json.RawMessage(e))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": entries})
}
