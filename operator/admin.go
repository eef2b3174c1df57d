package operator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/anteroom/anteroom/origin"
	"github.com/anteroom/anteroom/waitingroom"
)

// roomJSON is a room's status for operators.
type roomJSON struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Source is "file" for a room of the configuration file, "api" for
	// one created through the admin API.
	Source  string             `json:"source"`
	State   waitingroom.State  `json:"state"`
	Policy  waitingroom.Policy `json:"policy"`
	Serving int64              `json:"serving"`
	Tail    int64              `json:"tail"`
	Waiting int64              `json:"waiting"`
	Active  int64              `json:"active"`
	// ETASeconds is the estimated wait of a visitor arriving now, at the
	// measured rate when known, else the configured one.
	ETASeconds *int64 `json:"eta_seconds"`
	// MeasuredRatePerMinute is how fast the counter has really moved
	// while visitors waited (the last five minutes, as this instance saw
	// it); null until there is enough history.
	MeasuredRatePerMinute *float64 `json:"measured_rate_per_minute"`
	// QueueFull: a visitor arriving now would wait longer than max_wait.
	QueueFull bool `json:"queue_full"`
	// Abandoned counts the positions this instance's scheduler passed over
	// because the visitor's page had fallen silent, since it started: only
	// the instance leading the room counts them (sum
	// anteroom_abandoned_total across instances for the deployment's).
	Abandoned int64 `json:"abandoned"`
	// Origin is what this instance's probes of the room's site found;
	// absent for a room without origin_health.
	Origin *originJSON `json:"origin,omitempty"`
	// Definition is a runtime room's definition (GET of one room only).
	Definition *recordDoc `json:"definition,omitempty"`
	// Challenge is the room's proof of work: its mode now and the
	// difficulty a new visitor gets.
	Challenge *challengeJSON `json:"challenge,omitempty"`
	// Lanes are the room's priority lanes with their codes, and Events
	// its scheduled events not ended (codes.go, events.go).
	Lanes  []laneJSON  `json:"lanes,omitempty"`
	Events []eventJSON `json:"events,omitempty"`
}

// originJSON is a room's origin health. Latency and time are null until
// the first probe has answered (state "unknown").
type originJSON struct {
	State     origin.State `json:"state"`
	LatencyMS *int64       `json:"latency_ms"`
	CheckedAt *int64       `json:"checked_at"`
	Error     string       `json:"error,omitempty"`
}

// OriginHealth is what this instance's probes of the rooms' sites found
// (an *origin.Prober); false for a room that is not probed.
type OriginHealth interface {
	Status(room string) (origin.Status, bool)
}

func (s *Server) roomDoc(r waitingroom.Room, c waitingroom.Counters) roomJSON {
	rate := s.cache.Rate(r.ID)
	source := "api"
	if s.fileRooms[r.ID] {
		source = "file"
	}
	doc := roomJSON{ID: r.ID, Name: r.Name, Source: source, State: c.State, Policy: c.Policy, Serving: c.Serving, Tail: c.Tail,
		Waiting: c.Waiting(), Active: c.Active, ETASeconds: waitingroom.ETA(c.Waiting()+1, c, rate),
		QueueFull: waitingroom.QueueFull(r, c, rate), Abandoned: s.abandonedHere(r.ID), Origin: s.originDoc(r.ID),
		Challenge: s.challengeDoc(r.ID)}
	if measured, ok := s.cache.MeasuredRate(r.ID); ok {
		doc.MeasuredRatePerMinute = &measured
	}
	return doc
}

func (s *Server) originDoc(room string) *originJSON {
	if s.origins == nil {
		return nil
	}
	st, ok := s.origins.Status(room)
	if !ok {
		return nil
	}
	doc := &originJSON{State: st.State, Error: st.Err}
	if !st.CheckedAt.IsZero() {
		ms, at := st.Latency.Milliseconds(), st.CheckedAt.Unix()
		doc.LatencyMS, doc.CheckedAt = &ms, &at
	}
	return doc
}

// apiError is the body of the admin API's error answers.
type apiError struct {
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

// admin guards a handler with an admin token (a bearer token, compared in
// constant time), and lets a viewer's token through only for reads. A
// request without an Authorization header may instead carry the
// dashboard's session cookie; then a change must come from our own origin
// (see crossOrigin in dashboard.go). The handler finds the token's name
// with who (the audit log's "who").
func (s *Server) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.admins == nil {
			writeJSON(w, http.StatusNotFound, apiError{"not_found", "the admin API is disabled: set admin.token or admin.tokens"})
			return
		}
		var p *principal
		if r.Header.Get("Authorization") == "" {
			p = s.admins.signedIn(r, s.store.Now())
			if p != nil && mutating(r.Method) {
				if err := s.crossOrigin.Check(r); err != nil {
					writeJSON(w, http.StatusForbidden, apiError{"forbidden", "a change made with the dashboard's cookie must come from the dashboard's own page"})
					return
				}
			}
		}
		if p == nil {
			token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if ok {
				p = matchToken(s.admins.tokens, token)
			}
		}
		if p == nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="anteroom admin"`)
			writeJSON(w, http.StatusUnauthorized, apiError{"unauthorized", "a valid admin bearer token is required"})
			return
		}
		if mutating(r.Method) && p.role != RoleOperator {
			// RFC 6750 §3.1: the token is valid but not enough for this.
			w.Header().Set("WWW-Authenticate", `Bearer realm="anteroom admin", error="insufficient_scope"`)
			writeJSON(w, http.StatusForbidden, apiError{"forbidden", "the token " + strconv.Quote(p.name) + " is a viewer's: changes need an operator's token"})
			return
		}
		h(w, withPrincipal(r, p))
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
	doc := s.roomDoc(room, c)
	if doc.Source == "api" && s.catalog != nil {
		if def, err := s.catalog.Room(r.Context(), id); err == nil {
			d := catalogDoc(def.Room, def.Record)
			doc.Definition = &d
		}
	}
	if err := s.addLanesAndEvents(r, &doc); err != nil {
		s.apiStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, doc)
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
		doc := s.roomDoc(room, c)
		if err := s.addLanesAndEvents(r, &doc); err != nil {
			s.apiStoreError(w, r, err)
			return
		}
		docs = append(docs, doc)
	}
	writeJSON(w, http.StatusOK, map[string]any{"rooms": docs})
}

// roomPatch is the body of PATCH /admin/v1/rooms/{room}; absent fields are
// left as they are, and 0 clears a limit.
type roomPatch struct {
	State         *waitingroom.State `json:"state"`
	RatePerMinute *float64           `json:"rate_per_minute"`
	MaxActive     *int               `json:"max_active"`
	// ChallengeMode switches the room's proof of work: off, always or
	// under_load.
	ChallengeMode *string `json:"challenge_mode"`
}

func (s *Server) adminPatch(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("room")
	if _, ok := s.store.Room(id); !ok {
		writeJSON(w, http.StatusNotFound, apiError{"not_found", "no such room"})
		return
	}
	raw, ok := readBody(w, r)
	if !ok {
		return
	}
	if !isStatePatch(raw) && s.catalog != nil && !s.fileRooms[id] {
		// Any other key is a change of a runtime room's definition
		// (rooms.go); a file's room takes only the three keys.
		s.patchRoomDefinition(w, r, id, raw)
		return
	}
	var p roomPatch
	if err := decodeStrict(bytes.NewReader(raw), &p); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{"invalid_request", "body: " + err.Error()})
		return
	}
	before, err := s.store.Status(r.Context(), id)
	if err != nil {
		s.apiStoreError(w, r, err)
		return
	}
	if p.State != nil && !p.State.Valid() {
		writeJSON(w, http.StatusBadRequest, apiError{"invalid_request", "state: must be open, paused, closed or passthrough"})
		return
	}
	if p.RatePerMinute != nil || p.MaxActive != nil {
		pol := before.Policy
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
	if !s.patchChallenge(w, r, id, p.ChallengeMode) {
		return
	}
	if p.State != nil {
		if err := s.store.SetState(r.Context(), id, *p.State); err != nil {
			s.apiStoreError(w, r, err)
			return
		}
	}
	if after, err := s.store.Status(r.Context(), id); err == nil {
		s.audit(r, "room.patch", "room/"+id, liveSettings(before), liveSettings(after))
	} else {
		s.audit(r, "room.patch", "room/"+id, liveSettings(before), p)
	}
	s.refreshCache(r)
	s.adminRoomStatus(w, r, id)
}

// liveSettings are what PATCH with state or policy changes of a room, for
// the audit log.
func liveSettings(c waitingroom.Counters) map[string]any {
	return map[string]any{"state": c.State, "rate_per_minute": c.Policy.RatePerMinute, "max_active": c.Policy.MaxActive}
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
	before, err := s.store.Status(r.Context(), id)
	if err != nil {
		s.apiStoreError(w, r, err)
		return
	}
	after, err := s.store.Advance(r.Context(), id, body.Count)
	if err != nil {
		s.apiStoreError(w, r, err)
		return
	}
	s.audit(r, "room.advance", "room/"+id, map[string]int64{"serving": before.Serving}, map[string]int64{"serving": after.Serving, "count": body.Count})
	s.refreshCache(r)
	s.adminRoomStatus(w, r, id)
}

// refreshCache makes this instance's visitors see an admin change at once;
// the others pick it up within their refresh interval.
func (s *Server) refreshCache(r *http.Request) { _ = s.cache.Refresh(r.Context()) }

// decodeBody reads a request body that must be exactly one JSON object
// whose keys are all fields of v, spelt exactly as v's json tags spell
// them: encoding/json alone would take {"STATE": …} for "state", ignore
// whatever follows the object and take null for an empty change.
// readBody reads a request body of at most 64 KiB.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<16))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{"invalid_request", "body: " + err.Error()})
		return nil, false
	}
	return raw, true
}

// isStatePatch reports whether a PATCH body changes a room's live state
// and policy (state, rate_per_minute, max_active: what PATCH always
// did, for every room) rather than its definition: it is a JSON object of
// only those keys. Anything else is a merge patch of the definition.
func isStatePatch(raw []byte) bool {
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil || fields == nil {
		return true // decodeStrict says what is wrong with it
	}
	for k := range fields {
		if !jsonFields(reflect.TypeFor[roomPatch]())[k] {
			return false
		}
	}
	return true
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := decodeStrict(http.MaxBytesReader(w, r.Body, 1<<16), v); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{"invalid_request", "body: " + err.Error()})
		return false
	}
	return true
}

func decodeStrict(body io.Reader, v any) error {
	dec := json.NewDecoder(body)
	var fields map[string]json.RawMessage
	if err := dec.Decode(&fields); err != nil {
		return err
	}
	if fields == nil {
		return errors.New("must be a JSON object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("must be one JSON object, with nothing after it")
	}
	known := jsonFields(reflect.TypeOf(v).Elem())
	for k := range fields {
		if !known[k] {
			return fmt.Errorf("unknown field %q", k)
		}
	}
	raw, _ := json.Marshal(fields)
	return json.Unmarshal(raw, v)
}

// jsonFields is the set of json names of struct type t's fields.
func jsonFields(t reflect.Type) map[string]bool {
	out := map[string]bool{}
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name != "" && name != "-" {
			out[name] = true
		}
	}
	return out
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
