package operator

import (
	"errors"
	"net/http"
	"time"

	"github.com/anteroom/anteroom/waitingroom"
)

// The admin API of scheduled events (waitingroom/events.go).

// eventBody is an event as the admin API reads it: times RFC 3339,
// session_ttl a Go duration ("45m"). For PATCH, absent fields keep their
// value; for POST and PUT, absent fields are empty.
type eventBody struct {
	Name           *string                     `json:"name"`
	PrequeueFrom   *string                     `json:"prequeue_from"`
	StartsAt       *string                     `json:"starts_at"`
	EndsAt         *string                     `json:"ends_at"`
	Admission      *waitingroom.EventAdmission `json:"admission"`
	SessionTTL     *string                     `json:"session_ttl"`
	Message        *string                     `json:"message"`
	ShuffleAtStart *bool                       `json:"shuffle_at_start"`
}

// eventJSON is an event as the admin API shows it.
type eventJSON struct {
	ID             string                     `json:"id"`
	Room           string                     `json:"room"`
	Name           string                     `json:"name"`
	Phase          waitingroom.EventPhase     `json:"phase"`
	PrequeueFrom   string                     `json:"prequeue_from,omitempty"`
	StartsAt       string                     `json:"starts_at"`
	EndsAt         string                     `json:"ends_at"`
	Admission      waitingroom.EventAdmission `json:"admission"`
	SessionTTL     string                     `json:"session_ttl,omitempty"`
	Message        string                     `json:"message,omitempty"`
	ShuffleAtStart bool                       `json:"shuffle_at_start"`
}

func (s *Server) eventDoc(room string, e waitingroom.Event) eventJSON {
	doc := eventJSON{ID: e.ID, Room: room, Name: e.Name, Phase: e.Phase(s.store.Now()),
		StartsAt: e.StartsAt.UTC().Format(time.RFC3339), EndsAt: e.EndsAt.UTC().Format(time.RFC3339),
		Admission: e.Admission, Message: e.Message, ShuffleAtStart: e.ShuffleAtStart}
	if !e.PrequeueFrom.IsZero() {
		doc.PrequeueFrom = e.PrequeueFrom.UTC().Format(time.RFC3339)
	}
	if e.SessionTTL > 0 {
		doc.SessionTTL = e.SessionTTL.String()
	}
	return doc
}

// apply writes the body's fields over e, naming a field it cannot read.
func (b eventBody) apply(e *waitingroom.Event) error {
	times := []struct {
		key  string
		v    *string
		into *time.Time
	}{{"prequeue_from", b.PrequeueFrom, &e.PrequeueFrom}, {"starts_at", b.StartsAt, &e.StartsAt}, {"ends_at", b.EndsAt, &e.EndsAt}}
	for _, f := range times {
		if f.v == nil {
			continue
		}
		if *f.v == "" {
			*f.into = time.Time{}
			continue
		}
		t, err := time.Parse(time.RFC3339, *f.v)
		if err != nil {
			return &waitingroom.SpecError{Key: f.key, Problem: "must be an RFC 3339 time with a zone, like 2026-12-01T09:00:00+01:00"}
		}
		*f.into = t
	}
	if b.SessionTTL != nil {
		e.SessionTTL = 0
		if *b.SessionTTL != "" {
			d, err := time.ParseDuration(*b.SessionTTL)
			if err != nil {
				return &waitingroom.SpecError{Key: "session_ttl", Problem: "must be a duration like 45m"}
			}
			e.SessionTTL = d
		}
	}
	if b.Name != nil {
		e.Name = *b.Name
	}
	if b.Admission != nil {
		e.Admission = *b.Admission
	}
	if b.Message != nil {
		e.Message = *b.Message
	}
	if b.ShuffleAtStart != nil {
		e.ShuffleAtStart = *b.ShuffleAtStart
	}
	return nil
}

// eventError answers an event the store refused.
func (s *Server) eventError(w http.ResponseWriter, r *http.Request, err error) {
	var spec *waitingroom.SpecError
	var overlap *waitingroom.OverlapError
	switch {
	case errors.As(err, &spec):
		writeJSON(w, http.StatusBadRequest, apiError{"invalid_request", err.Error()})
	case errors.As(err, &overlap):
		writeJSON(w, http.StatusConflict, apiError{"overlap", err.Error()})
	case errors.Is(err, waitingroom.ErrEventStarted):
		writeJSON(w, http.StatusConflict, apiError{"event_started", err.Error()})
	case errors.Is(err, waitingroom.ErrEventNotFound):
		writeJSON(w, http.StatusNotFound, apiError{"not_found", "no such event"})
	default:
		s.apiStoreError(w, r, err)
	}
}

// knownRoom answers 404 for a room that does not exist.
func (s *Server) knownRoom(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("room")
	if _, ok := s.store.Room(id); !ok {
		writeJSON(w, http.StatusNotFound, apiError{"not_found", "no such room"})
		return id, false
	}
	return id, true
}

func (s *Server) adminEvents(w http.ResponseWriter, r *http.Request) {
	room, ok := s.knownRoom(w, r)
	if !ok {
		return
	}
	events, err := s.store.Events(r.Context(), room)
	if err != nil {
		s.eventError(w, r, err)
		return
	}
	docs := make([]eventJSON, len(events))
	for i, e := range events {
		docs[i] = s.eventDoc(room, e)
	}
	writeJSON(w, http.StatusOK, map[string]any{"room": room, "events": docs})
}

func (s *Server) adminEvent(w http.ResponseWriter, r *http.Request) {
	room, ok := s.knownRoom(w, r)
	if !ok {
		return
	}
	e, err := s.store.Event(r.Context(), room, r.PathValue("event"))
	if err != nil {
		s.eventError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.eventDoc(room, e))
}

func (s *Server) adminCreateEvent(w http.ResponseWriter, r *http.Request) {
	room, ok := s.knownRoom(w, r)
	if !ok {
		return
	}
	var body eventBody
	if !decodeBody(w, r, &body) {
		return
	}
	var e waitingroom.Event
	if err := body.apply(&e); err != nil {
		s.eventError(w, r, err)
		return
	}
	e, err := s.store.CreateEvent(r.Context(), room, e)
	if err != nil {
		s.eventError(w, r, err)
		return
	}
	doc := s.eventDoc(room, e)
	s.audit(r, "event.create", room+"/"+e.ID, nil, doc)
	writeJSON(w, http.StatusCreated, doc)
}

// adminPutEvent serves PUT (the whole event) and PATCH (the fields given)
// of an event that has not started.
func (s *Server) adminPutEvent(w http.ResponseWriter, r *http.Request) {
	room, ok := s.knownRoom(w, r)
	if !ok {
		return
	}
	var body eventBody
	if !decodeBody(w, r, &body) {
		return
	}
	old, err := s.store.Event(r.Context(), room, r.PathValue("event"))
	if err != nil {
		s.eventError(w, r, err)
		return
	}
	e := old
	if r.Method == http.MethodPut {
		e = waitingroom.Event{ID: old.ID}
	}
	if err := body.apply(&e); err != nil {
		s.eventError(w, r, err)
		return
	}
	if err := s.store.UpdateEvent(r.Context(), room, e); err != nil {
		s.eventError(w, r, err)
		return
	}
	doc := s.eventDoc(room, e)
	s.audit(r, "event.update", room+"/"+e.ID, s.eventDoc(room, old), doc)
	writeJSON(w, http.StatusOK, doc)
}

func (s *Server) adminDeleteEvent(w http.ResponseWriter, r *http.Request) {
	room, ok := s.knownRoom(w, r)
	if !ok {
		return
	}
	old, err := s.store.Event(r.Context(), room, r.PathValue("event"))
	if err == nil {
		err = s.store.DeleteEvent(r.Context(), room, old.ID)
	}
	if err != nil {
		s.eventError(w, r, err)
		return
	}
	s.audit(r, "event.cancel", room+"/"+old.ID, s.eventDoc(room, old), nil)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// addLanesAndEvents adds a room's lanes (with their codes) and its events
// not ended to its status.
func (s *Server) addLanesAndEvents(r *http.Request, doc *roomJSON) error {
	room, _ := s.store.Room(doc.ID)
	if len(room.Lanes) > 0 {
		lanes, err := s.laneDocs(r, doc.ID)
		if err != nil {
			return err
		}
		doc.Lanes = lanes
	}
	events, err := s.store.Events(r.Context(), doc.ID)
	if err != nil {
		return err
	}
	now := s.store.Now()
	for _, e := range events {
		if e.Phase(now) != waitingroom.PhaseEnded {
			doc.Events = append(doc.Events, s.eventDoc(doc.ID, e))
		}
	}
	return nil
}
