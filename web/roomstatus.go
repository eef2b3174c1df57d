package web

import (
	"net/http"

	"github.com/anteroom/anteroom/waitingroom"
)

// publicRoomJSON is the body of GET /api/v1/rooms/{room}: what anyone may
// know of a room. Origin health stays out: how the protected site is doing
// is the operator's business (the admin API, package operator), and its
// latency would tell an attacker when to push.
type publicRoomJSON struct {
	Room                  string            `json:"room"`
	Name                  string            `json:"name"`
	State                 waitingroom.State `json:"state"`
	Waiting               int64             `json:"waiting"`
	Serving               int64             `json:"serving"`
	RatePerMinute         float64           `json:"admission_rate_per_minute"`
	MeasuredRatePerMinute *float64          `json:"measured_rate_per_minute"`
	ETASeconds            *int64            `json:"eta_seconds"`
	QueueFull             bool              `json:"queue_full"`
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
	rate := s.cache.Rate(room.ID)
	doc := publicRoomJSON{Room: room.ID, Name: room.Name, State: c.State, Waiting: c.Waiting(), Serving: c.Serving,
		RatePerMinute: c.Policy.RatePerMinute, ETASeconds: waitingroom.ETA(c.Waiting()+1, c, rate),
		QueueFull: waitingroom.QueueFull(room, c, rate)}
	if measured, ok := s.cache.MeasuredRate(room.ID); ok {
		doc.MeasuredRatePerMinute = &measured
	}
	writeJSON(w, http.StatusOK, doc)
}

// apiError is the body of an API's error answer.
type apiError struct {
	Code        string `json:"error"`
	Description string `json:"error_description"`
}
