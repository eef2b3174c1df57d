package operator

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/anteroom/anteroom/keys"
)

// SigningKeys is what the admin API needs of the signing keys (a
// *keys.Manager): to list them, and to retire one that leaked.
type SigningKeys interface {
	// Status lists the published keys, the signing key first.
	Status() []keys.PublishedKey
	// Retire removes the key kid from the shared record at once and
	// returns the key that signs afterwards; errors wrap
	// keys.ErrUnknownKey for a kid the record does not hold.
	Retire(ctx context.Context, kid string) (keys.Key, error)
}

// keyJSON is a published signing key for operators; times are unix
// seconds, not_after null while no newer key has taken over.
type keyJSON struct {
	KID       string        `json:"kid"`
	Alg       string        `json:"alg"`
	State     keys.KeyState `json:"state"`
	NotBefore int64         `json:"not_before"`
	NotAfter  *int64        `json:"not_after"`
}

// adminKeys serves GET /admin/v1/keys: the keys this instance publishes,
// from memory.
func (s *Server) adminKeys(w http.ResponseWriter, _ *http.Request) {
	if s.keys == nil {
		writeJSON(w, http.StatusNotFound, apiError{"not_found", "this server manages no signing keys"})
		return
	}
	docs := []keyJSON{}
	for _, k := range s.keys.Status() {
		doc := keyJSON{KID: k.ID, Alg: string(k.Algorithm), State: k.State, NotBefore: k.NotBefore.Unix()}
		if !k.NotAfter.IsZero() {
			at := k.NotAfter.Unix()
			doc.NotAfter = &at
		}
		docs = append(docs, doc)
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": docs})
}

// adminRetireKey serves POST /admin/v1/keys/{kid}/retire: the key leaves
// the JWKS at once on this instance, and on the others at their next
// refresh of the keys.
func (s *Server) adminRetireKey(w http.ResponseWriter, r *http.Request) {
	if s.keys == nil {
		writeJSON(w, http.StatusNotFound, apiError{"not_found", "this server manages no signing keys"})
		return
	}
	kid := r.PathValue("kid")
	signing, err := s.keys.Retire(r.Context(), kid)
	switch {
	case errors.Is(err, keys.ErrUnknownKey):
		writeJSON(w, http.StatusNotFound, apiError{"not_found", "no such signing key (never issued here, or already retired)"})
		return
	case err != nil:
		slog.WarnContext(r.Context(), "admin request failed", "route", r.Pattern, "kid", kid, "err", err)
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, apiError{"temporarily_unavailable", "the signing keys could not be changed; try again"})
		return
	}
	s.audit(r, "key.retire", "key/"+kid, map[string]string{"kid": kid}, map[string]string{"signing": signing.ID})
	writeJSON(w, http.StatusOK, struct {
		Retired string `json:"retired"`
		Signing string `json:"signing"`
	}{kid, signing.ID})
}
