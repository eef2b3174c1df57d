package operator

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/anteroom/anteroom/catalog"
	"github.com/anteroom/anteroom/config"
)

// Rooms and clients at run time (issue 16). A room or client created
// through the API is kept by package catalog in Redis and served by every
// instance within its poll; this instance serves it before answering
// (Options.Apply). Bodies carry exactly the keys of the file's room or
// client, checked by the file's rules (config.ParseRoom, ParseClient).
//
// The file wins: an id the configuration file defines cannot be created,
// replaced or deleted through the API (409). The file is what operators
// review and deploy; an API call that silently overrode it would be undone
// by nobody knowing, or would undo the reviewed file at the next restart.

// definitionDoc renders a definition (a config.Room or config.Client) as
// the JSON of the keys the file would hold.
func definitionDoc(def any) map[string]any {
	b, _ := yaml.Marshal(def)
	var doc map[string]any
	_ = yaml.Unmarshal(b, &doc)
	delete(doc, "secret")
	return doc
}

// recordDoc is a definition with its bookkeeping, as the API answers it.
type recordDoc struct {
	Source     string         `json:"source"`
	Definition map[string]any `json:"definition"`
	Rev        int64          `json:"rev,omitempty"`
	CreatedAt  string         `json:"created_at,omitempty"`
	UpdatedAt  string         `json:"updated_at,omitempty"`
	UpdatedBy  string         `json:"updated_by,omitempty"`
}

func catalogDoc(def any, rec catalog.Record) recordDoc {
	return recordDoc{Source: "api", Definition: definitionDoc(def), Rev: rec.Rev,
		CreatedAt: rec.CreatedAt.Format("2006-01-02T15:04:05Z07:00"), UpdatedAt: rec.UpdatedAt.Format("2006-01-02T15:04:05Z07:00"),
		UpdatedBy: rec.UpdatedBy}
}

// principalName is who made r, for the catalog's records.
func principalName(r *http.Request) string {
	if p := who(r); p != nil {
		return p.name
	}
	return ""
}

// catalogReady answers 404 when this server keeps no catalog.
func (s *Server) catalogReady(w http.ResponseWriter) bool {
	if s.catalog == nil {
		writeJSON(w, http.StatusNotFound, apiError{"not_found", "rooms and clients cannot be changed at run time here"})
		return false
	}
	return true
}

// invalid answers a definition that breaks the file's rules: one line per
// problem, each naming its key.
func invalid(w http.ResponseWriter, err error) {
	writeJSON(w, http.StatusBadRequest, apiError{"invalid_request", strings.ReplaceAll(err.Error(), "\n", "; ")})
}

// catalogError answers an error of the catalog.
func (s *Server) catalogError(w http.ResponseWriter, r *http.Request, kind, id string, err error) {
	switch {
	case errors.Is(err, catalog.ErrNotFound):
		writeJSON(w, http.StatusNotFound, apiError{"not_found", fmt.Sprintf("no %s %q was created through the API", kind, id)})
	case errors.Is(err, catalog.ErrExists):
		writeJSON(w, http.StatusConflict, apiError{"conflict", fmt.Sprintf("%s %q exists already", kind, id)})
	case errors.Is(err, catalog.ErrConflict):
		writeJSON(w, http.StatusConflict, apiError{"conflict", fmt.Sprintf("%s %q was changed by someone else meanwhile; read it and try again", kind, id)})
	default:
		var bad badDefinition
		if errors.As(err, &bad) {
			invalid(w, bad.error)
			return
		}
		s.apiStoreError(w, r, err)
	}
}

// badDefinition marks an error of the caller's definition (not of the
// store) returned through the catalog's change functions.
type badDefinition struct{ error }

// applied makes this instance serve the catalog's change before the
// answer, so that the caller's next request here sees it.
func (s *Server) applied(r *http.Request) {
	if s.apply != nil {
		_ = s.apply(r.Context())
	}
	s.refreshCache(r)
}

// fileRoom refuses a change of a room the file defines.
func (s *Server) fileRoom(w http.ResponseWriter, id string) bool {
	if s.fileRooms[id] {
		writeJSON(w, http.StatusConflict, apiError{"conflict", fmt.Sprintf("room %q is defined in the configuration file, which wins: change it there", id)})
		return true
	}
	return false
}

// createRoom serves POST /admin/v1/rooms.
func (s *Server) createRoom(w http.ResponseWriter, r *http.Request) {
	if !s.catalogReady(w) {
		return
	}
	raw, ok := readBody(w, r)
	if !ok {
		return
	}
	room, err := s.parseRoom(raw)
	if err != nil {
		invalid(w, err)
		return
	}
	if s.fileRoom(w, room.ID) {
		return
	}
	created, err := s.catalog.CreateRoom(r.Context(), *room, principalName(r))
	if err != nil {
		s.catalogError(w, r, "room", room.ID, err)
		return
	}
	doc := catalogDoc(created.Room, created.Record)
	s.audit(r, "room.create", "room/"+room.ID, nil, doc.Definition)
	s.applied(r)
	w.Header().Set("Location", s.opsBase+"/admin/v1/rooms/"+room.ID)
	writeJSON(w, http.StatusCreated, doc)
}

// putRoom serves PUT /admin/v1/rooms/{room}: the whole definition
// replaced (the id in the body, if any, must be the path's).
func (s *Server) putRoom(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("room")
	if !s.catalogReady(w) || s.fileRoom(w, id) {
		return
	}
	raw, ok := readBody(w, r)
	if !ok {
		return
	}
	raw, err := withID(raw, id)
	if err != nil {
		invalid(w, err)
		return
	}
	room, err := s.parseRoom(raw)
	if err != nil {
		invalid(w, err)
		return
	}
	s.updateRoom(w, r, id, func(config.Room) (config.Room, error) { return *room, nil })
}

// patchRoomDefinition serves PATCH /admin/v1/rooms/{room} with keys of
// the definition: a JSON merge patch (RFC 7396) of it.
func (s *Server) patchRoomDefinition(w http.ResponseWriter, r *http.Request, id string, raw []byte) {
	if !s.catalogReady(w) || s.fileRoom(w, id) {
		return
	}
	var patch map[string]any
	if err := json.Unmarshal(raw, &patch); err != nil {
		invalid(w, fmt.Errorf("body: %w", err))
		return
	}
	s.updateRoom(w, r, id, func(cur config.Room) (config.Room, error) {
		merged, err := mergePatch(definitionDoc(cur), patch, id)
		if err != nil {
			return config.Room{}, badDefinition{err}
		}
		room, err := s.parseRoom(merged)
		if err != nil {
			return config.Room{}, badDefinition{err}
		}
		return *room, nil
	})
}

func (s *Server) updateRoom(w http.ResponseWriter, r *http.Request, id string, change func(config.Room) (config.Room, error)) {
	before, after, err := s.catalog.UpdateRoom(r.Context(), id, principalName(r), change)
	if err != nil {
		s.catalogError(w, r, "room", id, err)
		return
	}
	doc := catalogDoc(after.Room, after.Record)
	s.audit(r, "room.update", "room/"+id, definitionDoc(before.Room), doc.Definition)
	s.applied(r)
	writeJSON(w, http.StatusOK, doc)
}

// deleteRoom serves DELETE /admin/v1/rooms/{room}. Politely: the room's
// waiting visitors see the closed page at their next poll, its relying
// parties get access_denied at /authorize (oidc.SetClients), and its
// clients stay until deleted themselves.
func (s *Server) deleteRoom(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("room")
	if !s.catalogReady(w) || s.fileRoom(w, id) {
		return
	}
	before, err := s.catalog.DeleteRoom(r.Context(), id)
	if err != nil {
		s.catalogError(w, r, "room", id, err)
		return
	}
	s.audit(r, "room.delete", "room/"+id, definitionDoc(before.Room), nil)
	s.applied(r)
	w.WriteHeader(http.StatusNoContent)
}

// parseRoom is config.ParseRoom with this deployment's bound on
// session_ttl (Options.MaxSessionTTL).
func (s *Server) parseRoom(raw []byte) (*config.Room, error) {
	room, err := config.ParseRoom(raw)
	if err != nil {
		return nil, err
	}
	if s.maxSession > 0 && room.SessionTTL.D() > s.maxSession {
		return nil, fmt.Errorf("session_ttl: must be at most %s here (the longest session_ttl of the file's rooms, which the signing keys are kept published for), got %s",
			config.Duration(s.maxSession), room.SessionTTL)
	}
	return room, nil
}

// withID puts id into a JSON object body that has no id, and refuses one
// whose id differs: the path names what is replaced.
func withID(raw []byte, id string) ([]byte, error) {
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	if body == nil {
		return nil, errors.New("body: must be a JSON object")
	}
	if got, ok := body["id"]; ok && got != id {
		return nil, fmt.Errorf("id: %v differs from the path's %q; an id cannot change", got, id)
	}
	body["id"] = id
	return json.Marshal(body)
}

// mergePatch applies a JSON merge patch (RFC 7396 §2) to doc and returns
// the result as JSON; the id cannot change.
func mergePatch(doc, patch map[string]any, id string) ([]byte, error) {
	if got, ok := patch["id"]; ok && got != id {
		return nil, fmt.Errorf("id: %v differs from the path's %q; an id cannot change", got, id)
	}
	merged := merge(doc, patch)
	return json.Marshal(merged)
}

func merge(target, patch map[string]any) map[string]any {
	if target == nil {
		target = map[string]any{}
	}
	for k, v := range patch {
		if v == nil {
			delete(target, k)
			continue
		}
		if pm, ok := v.(map[string]any); ok {
			tm, _ := target[k].(map[string]any)
			target[k] = merge(tm, pm)
			continue
		}
		target[k] = v
	}
	return target
}
