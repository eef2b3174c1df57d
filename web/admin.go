package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/anteroom/anteroom/waitingroom"
)

// roomJSON is a room's status for operators and the public API.
type roomJSON struct {
	ID      string             `json:"id"`
	Name    string             `json:"name"`
	State   waitingroom.State  `json:"state"`
	Policy  waitingroom.Policy `json:"policy"`
	Serving int64              `json:"serving"`
	Tail    int64              `json:"tail"`
	Waiting int64              `json:"waiting"`
	Active  int64              `json:"active"`
	// ETASeconds is the estimated wait of a visitor arriving now.
	ETASeconds *int64 `json:"eta_seconds"`
}

func roomDoc(r waitingroom.Room, c waitingroom.Counters) roomJSON {
	return roomJSON{ID: r.ID, Name: r.Name, State: c.State, Policy: c.Policy, Serving: c.Serving, Tail: c.Tail,
		Waiting: c.Waiting(), Active: c.Active, ETASeconds: waitingroom.ETA(c.Waiting()+1, c)}
}

// publicRoom serves /api/v1/rooms/{room} from the cache: anyone may ask, as
// often as they like, without reaching Redis.
func (s *Server) publicRoom(w http.ResponseWriter, r *http.Request) {
	room, ok := s.store.Room(r.PathValue("room"))
	if !ok {
		writeJSON(w, http.StatusNotFound, apiError{"not_found", "no such room"})
		return
	}
	c, ok := s.cache.Get(room.ID)
	if !ok {
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, apiError{"temporarily_unavailable", "room status not loaded yet"})
		return
	}
	doc := roomDoc(room, c)
	writeJSON(w, http.StatusOK, struct {
		Room          string            `json:"room"`
		Name          string            `json:"name"`
		State         waitingroom.State `json:"state"`
		Waiting       int64             `json:"waiting"`
		Serving       int64             `json:"serving"`
		RatePerMinute float64           `json:"admission_rate_per_minute"`
		ETASeconds    *int64            `json:"eta_seconds"`
	}{doc.ID, doc.Name, doc.State, doc.Waiting, doc.Serving, doc.Policy.RatePerMinute, doc.ETASeconds})
}

type apiError struct {
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

// admin guards a handler with the bearer token, compared in constant time.
func (s *Server) admin(h http.HandlerFunc) http.HandlerFunc {
	want := sha256.Sum256([]byte(s.adminToken))
	return func(w http.ResponseWriter, r *http.Request) {
		if s.adminToken == "" {
			writeJSON(w, http.StatusNotFound, apiError{"not_found", "the admin API is disabled: set admin.token"})
			return
		}
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		got := sha256.Sum256([]byte(token))
		if !ok || subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="anteroom admin"`)
			writeJSON(w, http.StatusUnauthorized, apiError{"unauthorized", "a valid admin bearer token is required"})
			return
		}
		h(w, r)
	}
}

func (s *Server) adminRoomStatus(w http.ResponseWriter, r *http.Request, id string) {
	room, ok := s.store.Room(id)
	if !ok {
		writeJSON(w, http.StatusNotFound, apiError{"not_found", "no such room"})
		return
	}
	c, err := s.store.Status(r.Context(), id)
	if err != nil {
		s.apiStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, roomDoc(room, c))
}

func (s *Server) adminRoom(w http.ResponseWriter, r *http.Request) {
	s.adminRoomStatus(w, r, r.PathValue("room"))
}

func (s *Server) adminRooms(w http.ResponseWriter, r *http.Request) {
	docs := []roomJSON{}
	for _, id := range s.store.Rooms() {
		room, _ := s.store.Room(id)
		c, err := s.store.Status(r.Context(), id)
		if err != nil {
			s.apiStoreError(w, r, err)
			return
		}
		docs = append(docs, roomDoc(room, c))
	}
	writeJSON(w, http.StatusOK, map[string]any{"rooms": docs})
}

// roomPatch is the body of PATCH /admin/v1/rooms/{room}; absent fields are
// left as they are, and 0 clears a limit.
type roomPatch struct {
	State         *waitingroom.State `json:"state"`
	RatePerMinute *float64           `json:"rate_per_minute"`
	MaxActive     *int               `json:"max_active"`
}

func (s *Server) adminPatch(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("room")
	if _, ok := s.store.Room(id); !ok {
		writeJSON(w, http.StatusNotFound, apiError{"not_found", "no such room"})
		return
	}
	var p roomPatch
	if !decodeBody(w, r, &p) {
		return
	}
	if p.State != nil && !p.State.Valid() {
		writeJSON(w, http.StatusBadRequest, apiError{"invalid_request", "state: must be open, paused, closed or passthrough"})
		return
	}
	if p.RatePerMinute != nil || p.MaxActive != nil {
		c, err := s.store.Status(r.Context(), id)
		if err != nil {
			s.apiStoreError(w, r, err)
			return
		}
		pol := c.Policy
		if p.RatePerMinute != nil {
			pol.RatePerMinute = *p.RatePerMinute
		}
		if p.MaxActive != nil {
			pol.MaxActive = *p.MaxActive
		}
		if err := pol.Validate(); err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{"invalid_request", err.Error()})
			return
		}
		if err := s.store.SetPolicy(r.Context(), id, pol); err != nil {
			s.apiStoreError(w, r, err)
			return
		}
	}
	if p.State != nil {
		if err := s.store.SetState(r.Context(), id, *p.State); err != nil {
			s.apiStoreError(w, r, err)
			return
		}
	}
	s.refreshCache(r)
	s.adminRoomStatus(w, r, id)
}

func (s *Server) adminAdvance(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("room")
	if _, ok := s.store.Room(id); !ok {
		writeJSON(w, http.StatusNotFound, apiError{"not_found", "no such room"})
		return
	}
	var body struct {
		Count int64 `json:"count"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	if body.Count < 1 || body.Count > 1_000_000 {
		writeJSON(w, http.StatusBadRequest, apiError{"invalid_request", "count: must be between 1 and 1000000"})
		return
	}
	if _, err := s.store.Advance(r.Context(), id, body.Count); err != nil {
		s.apiStoreError(w, r, err)
		return
	}
	s.refreshCache(r)
	s.adminRoomStatus(w, r, id)
}

// refreshCache makes this instance's visitors see an admin change at once;
// the others pick it up within their refresh interval.
func (s *Server) refreshCache(r *http.Request) { _ = s.cache.Refresh(r.Context()) }

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{"invalid_request", "body: " + err.Error()})
		return false
	}
	return true
}

func (s *Server) apiStoreError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, waitingroom.ErrUnknownRoom) {
		writeJSON(w, http.StatusNotFound, apiError{"not_found", "no such room"})
		return
	}
	slog.WarnContext(r.Context(), "admin request failed", "route", r.Pattern, "err", err)
	w.Header().Set("Retry-After", "5")
	writeJSON(w, http.StatusServiceUnavailable, apiError{"temporarily_unavailable", "the store is unreachable; try again"})
}
