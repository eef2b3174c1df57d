package operator

import (
	"encoding/csv"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/anteroom/anteroom/waitingroom"
)

// The admin API of priority codes (waitingroom/lanes.go): codes are
// created in batches and shown once, in the answer to their creation;
// Redis keeps only their hashes, so nothing can list them later.

// codesRequest is the body of POST /admin/v1/rooms/{room}/codes.
type codesRequest struct {
	Count int    `json:"count"`
	Lane  string `json:"lane"`
	// Uses defaults to 1: a code per person.
	Uses *int `json:"uses"`
	// ExpiresAt is RFC 3339; empty: the codes never expire.
	ExpiresAt string `json:"expires_at"`
}

// codesAnswer is the answer: the codes, once.
type codesAnswer struct {
	Room      string   `json:"room"`
	Lane      string   `json:"lane"`
	Uses      int      `json:"uses"`
	ExpiresAt string   `json:"expires_at,omitempty"`
	Codes     []string `json:"codes"`
}

func (s *Server) adminIssueCodes(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("room")
	room, ok := s.store.Room(id)
	if !ok {
		writeJSON(w, http.StatusNotFound, apiError{"not_found", "no such room"})
		return
	}
	format := r.URL.Query().Get("format")
	if format != "" && format != "json" && format != "csv" {
		writeJSON(w, http.StatusBadRequest, apiError{"invalid_request", "format: must be json or csv"})
		return
	}
	var body codesRequest
	if !decodeBody(w, r, &body) {
		return
	}
	if len(room.Lanes) == 0 {
		writeJSON(w, http.StatusConflict, apiError{"no_lanes", "room " + id + " has no priority lanes: set rooms[].lanes"})
		return
	}
	spec := waitingroom.CodeSpec{Count: body.Count, Lane: body.Lane, Uses: 1}
	if body.Uses != nil {
		spec.Uses = *body.Uses
	}
	if body.ExpiresAt != "" {
		at, err := time.Parse(time.RFC3339, body.ExpiresAt)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{"invalid_request", "expires_at: must be an RFC 3339 time with a zone, like 2026-12-01T09:00:00+01:00"})
			return
		}
		spec.ExpiresAt = at
	}
	codes, err := s.store.IssueCodes(r.Context(), id, spec)
	var invalid *waitingroom.SpecError
	switch {
	case errors.As(err, &invalid):
		writeJSON(w, http.StatusBadRequest, apiError{"invalid_request", err.Error()})
		return
	case err != nil:
		s.apiStoreError(w, r, err)
		return
	}
	ans := codesAnswer{Room: id, Lane: spec.Lane, Uses: spec.Uses, Codes: codes}
	if !spec.ExpiresAt.IsZero() {
		ans.ExpiresAt = spec.ExpiresAt.UTC().Format(time.RFC3339)
	}
	s.audit(r, "codes.issue", id, nil, map[string]any{"count": spec.Count, "lane": spec.Lane, "uses": spec.Uses, "expires_at": ans.ExpiresAt})
	if format == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="`+id+`-`+spec.Lane+`-codes.csv"`)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusCreated)
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"code", "room", "lane", "uses", "expires_at"})
		for _, c := range codes {
			_ = cw.Write([]string{c, id, spec.Lane, strconv.Itoa(spec.Uses), ans.ExpiresAt})
		}
		cw.Flush()
		return
	}
	writeJSON(w, http.StatusCreated, ans)
}

// laneJSON is a lane as the admin API shows it.
type laneJSON struct {
	ID      string `json:"id"`
	Weight  int    `json:"weight"`
	Waiting int64  `json:"waiting"`
	Issued  int64  `json:"codes_issued"`
	Used    int64  `json:"codes_used"`
}

func (s *Server) adminCodeStats(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("room")
	if _, ok := s.store.Room(id); !ok {
		writeJSON(w, http.StatusNotFound, apiError{"not_found", "no such room"})
		return
	}
	lanes, err := s.laneDocs(r, id)
	if err != nil {
		s.apiStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"room": id, "lanes": lanes})
}

// laneDocs lists room's priority lanes: who waits in each and its codes.
func (s *Server) laneDocs(r *http.Request, room string) ([]laneJSON, error) {
	stats, err := s.store.CodeStats(r.Context(), room)
	if err != nil || len(stats) == 0 {
		return []laneJSON{}, err
	}
	c, err := s.store.Status(r.Context(), room)
	if err != nil {
		return nil, err
	}
	waiting := map[string]int64{}
	for _, l := range c.Lanes() {
		waiting[l.ID] = l.Waiting
	}
	out := make([]laneJSON, len(stats))
	for i, st := range stats {
		out[i] = laneJSON{ID: st.Lane, Weight: st.Weight, Waiting: waiting[st.Lane], Issued: st.Issued, Used: st.Used}
	}
	return out, nil
}
