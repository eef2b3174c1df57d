package operator

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/anteroom/anteroom/catalog"
	"github.com/anteroom/anteroom/config"
)

// Clients at run time: see rooms.go. A confidential client's secret is
// drawn here (256 random bits), shown once in the answer to its creation,
// and stored only as its SHA-256: a body may not carry a secret, and
// "public": true asks for a client without one.

// clientDoc is a client for operators: its definition without secret.
type clientDoc struct {
	recordDoc
	Public bool `json:"public"`
	// ClientSecret is there only in the answer to the creation.
	ClientSecret string `json:"client_secret,omitempty"`
}

func fileClientDoc(c config.Client) clientDoc {
	return clientDoc{recordDoc: recordDoc{Source: "file", Definition: definitionDoc(c)}, Public: c.Public()}
}

func runtimeClientDoc(c catalog.Client) clientDoc {
	return clientDoc{recordDoc: catalogDoc(c.Client, c.Record), Public: c.SecretHash == nil}
}

func (s *Server) fileClient(id string) (config.Client, bool) {
	for _, c := range s.fileClients {
		if c.ID == id {
			return c, true
		}
	}
	return config.Client{}, false
}

// refuseClientID answers 409 for an id of the file and 400 for a
// reserved one.
func (s *Server) refuseClientID(w http.ResponseWriter, id string) bool {
	if _, ok := s.fileClient(id); ok {
		writeJSON(w, http.StatusConflict, apiError{"conflict", fmt.Sprintf("client %q is defined in the configuration file, which wins: change it there", id)})
		return true
	}
	if s.reserved(id) {
		writeJSON(w, http.StatusBadRequest, apiError{"invalid_request", fmt.Sprintf("id: %q is reserved for the built-in gate", id)})
		return true
	}
	return false
}

func (s *Server) roomExists(id string) bool {
	_, ok := s.store.Room(id)
	return ok
}

// listClients serves GET /admin/v1/clients: the file's, then the API's.
func (s *Server) listClients(w http.ResponseWriter, r *http.Request) {
	docs := []clientDoc{}
	for _, c := range s.fileClients {
		docs = append(docs, fileClientDoc(c))
	}
	if s.catalog != nil {
		clients, _, err := s.catalog.Clients(r.Context())
		if err != nil {
			s.apiStoreError(w, r, err)
			return
		}
		for _, c := range clients {
			if _, shadowed := s.fileClient(c.ID); !shadowed {
				docs = append(docs, runtimeClientDoc(c))
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"clients": docs})
}

// getClient serves GET /admin/v1/clients/{client}.
func (s *Server) getClient(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("client")
	if c, ok := s.fileClient(id); ok {
		writeJSON(w, http.StatusOK, fileClientDoc(c))
		return
	}
	if !s.catalogReady(w) {
		return
	}
	c, err := s.catalog.Client(r.Context(), id)
	if err != nil {
		s.catalogError(w, r, "client", id, err)
		return
	}
	writeJSON(w, http.StatusOK, runtimeClientDoc(c))
}

// splitPublic takes the API's own "public" key out of a client body.
func splitPublic(raw []byte) ([]byte, bool, error) {
	var body map[string]json.RawMessage
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil, false, fmt.Errorf("body: %w", err)
	}
	if body == nil {
		return nil, false, fmt.Errorf("body: must be a JSON object")
	}
	public := false
	if v, ok := body["public"]; ok {
		if err := json.Unmarshal(v, &public); err != nil {
			return nil, false, fmt.Errorf("public: must be true or false")
		}
		delete(body, "public")
	}
	out, _ := json.Marshal(body)
	return out, public, nil
}

// createClient serves POST /admin/v1/clients.
func (s *Server) createClient(w http.ResponseWriter, r *http.Request) {
	if !s.catalogReady(w) {
		return
	}
	raw, ok := readBody(w, r)
	if !ok {
		return
	}
	raw, public, err := splitPublic(raw)
	if err != nil {
		invalid(w, err)
		return
	}
	c, err := config.ParseClient(raw, !public, s.roomExists)
	if err != nil {
		invalid(w, err)
		return
	}
	if s.refuseClientID(w, c.ID) {
		return
	}
	var secret string
	var hash []byte
	if !public {
		secret = base64.RawURLEncoding.EncodeToString(randomBytes(32))
		sum := sha256.Sum256([]byte(secret))
		hash = sum[:]
	}
	created, err := s.catalog.CreateClient(r.Context(), *c, hash, principalName(r))
	if err != nil {
		s.catalogError(w, r, "client", c.ID, err)
		return
	}
	doc := runtimeClientDoc(created)
	s.audit(r, "client.create", "client/"+c.ID, nil, doc.Definition)
	s.applied(r)
	doc.ClientSecret = secret
	w.Header().Set("Location", s.opsBase+"/admin/v1/clients/"+c.ID)
	writeJSON(w, http.StatusCreated, doc)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// putClient serves PUT /admin/v1/clients/{client}: the definition
// replaced; the secret (or its absence) stays.
func (s *Server) putClient(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("client")
	if !s.catalogReady(w) || s.refuseClientID(w, id) {
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
	s.updateClient(w, r, id, func(cur catalog.Client) (config.Client, error) {
		c, err := config.ParseClient(raw, cur.SecretHash != nil, s.roomExists)
		if err != nil {
			return config.Client{}, badDefinition{err}
		}
		return *c, nil
	})
}

// patchClient serves PATCH /admin/v1/clients/{client}: a JSON merge patch
// (RFC 7396) of the definition.
func (s *Server) patchClient(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("client")
	if !s.catalogReady(w) || s.refuseClientID(w, id) {
		return
	}
	raw, ok := readBody(w, r)
	if !ok {
		return
	}
	var patch map[string]any
	if err := json.Unmarshal(raw, &patch); err != nil || patch == nil {
		invalid(w, fmt.Errorf("body: must be a JSON object"))
		return
	}
	s.updateClient(w, r, id, func(cur catalog.Client) (config.Client, error) {
		merged, err := mergePatch(definitionDoc(cur.Client), patch, id)
		if err != nil {
			return config.Client{}, badDefinition{err}
		}
		c, err := config.ParseClient(merged, cur.SecretHash != nil, s.roomExists)
		if err != nil {
			return config.Client{}, badDefinition{err}
		}
		return *c, nil
	})
}

func (s *Server) updateClient(w http.ResponseWriter, r *http.Request, id string, change func(catalog.Client) (config.Client, error)) {
	var cur catalog.Client
	var err error
	if cur, err = s.catalog.Client(r.Context(), id); err != nil {
		s.catalogError(w, r, "client", id, err)
		return
	}
	before, after, err := s.catalog.UpdateClient(r.Context(), id, principalName(r), func(config.Client) (config.Client, error) {
		return change(cur)
	})
	if err != nil {
		s.catalogError(w, r, "client", id, err)
		return
	}
	doc := runtimeClientDoc(after)
	s.audit(r, "client.update", "client/"+id, definitionDoc(before.Client), doc.Definition)
	s.applied(r)
	writeJSON(w, http.StatusOK, doc)
}

// deleteClient serves DELETE /admin/v1/clients/{client}: its relying
// party's next request is refused as from an unknown client
// (invalid_client), and tokens already issued to it stay valid until they
// expire, as after a restart without it.
func (s *Server) deleteClient(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("client")
	if !s.catalogReady(w) || s.refuseClientID(w, id) {
		return
	}
	before, err := s.catalog.DeleteClient(r.Context(), id)
	if err != nil {
		s.catalogError(w, r, "client", id, err)
		return
	}
	s.audit(r, "client.delete", "client/"+id, definitionDoc(before.Client), nil)
	s.applied(r)
	w.WriteHeader(http.StatusNoContent)
}
