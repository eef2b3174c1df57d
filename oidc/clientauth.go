package oidc

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/anteroom/anteroom/internal/route"
)

// MaxRequestBody caps the body of every request to the provider's
// endpoints. Their largest legitimate body is a token request with a
// refresh token or an authorization request by POST, a few KiB; without a
// cap the form parser would read up to 10 MB per request.
const MaxRequestBody = 64 << 10

// writeJSON answers status with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// oauthError is the JSON error body of RFC 6749 §5.2.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// parseForm caps r's body at MaxRequestBody and parses its form. A body
// over the cap gets 413 with invalid_request, anything else unparsable 400
// invalid_request; it returns false when it answered.
func parseForm(w http.ResponseWriter, r *http.Request) bool {
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, MaxRequestBody)
	}
	err := r.ParseForm()
	if err == nil {
		return true
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		slog.InfoContext(r.Context(), "oidc request refused", "path", r.URL.Path, "reason", "body too large")
		w.Header().Set("Connection", "close")
		writeJSON(w, http.StatusRequestEntityTooLarge, oauthError{"invalid_request", fmt.Sprintf("the request body exceeds %d KiB", MaxRequestBody>>10)})
		return false
	}
	writeJSON(w, http.StatusBadRequest, oauthError{"invalid_request", "the request body cannot be parsed"})
	return false
}

// clientUse is what an endpoint lets a client do without a secret.
type clientUse int

const (
	// publicAllowed: a public client names itself by client_id (token,
	// revocation).
	publicAllowed clientUse = iota
	// secretRequired: only a confidential client that authenticates with
	// the Basic header may call (introspection, RFC 7662 §2.1; the library
	// reads no other method there).
	secretRequired
)

// authenticateClient authenticates the client of a token, introspection
// or revocation request (RFC 6749 §2.3) before the library sees it, and
// answers a failure as RFC 6749 §5.2 says, which RFC 7009 §2.2.1 and RFC
// 7662 §2.3 refer to: 401 invalid_client as JSON, with WWW-Authenticate
// when the client tried the Authorization header. The library answers
// some of these cases with plain text or unauthorized_client and looks a
// code up before it checks the client (workaround 5 in workarounds.go).
// It returns false when it answered. The form must be parsed.
func (p *Provider) authenticateClient(w http.ResponseWriter, r *http.Request, use clientUse) bool {
	header := r.Header.Get("Authorization") != ""
	refuse := func(status int, code, description string) bool {
		if status == http.StatusUnauthorized && header {
			w.Header().Set("WWW-Authenticate", `Basic realm="`+p.issuer+`", charset="UTF-8"`)
		}
		slog.InfoContext(r.Context(), "client authentication failed", "path", r.URL.Path, "reason", description)
		writeJSON(w, status, oauthError{code, description})
		return false
	}
	// RFC 6749 §3.1, §3.2: parameters must not be included more than
	// once. This check reads the body's first client_id while the library
	// reads the last of the query's and the body's together: with two,
	// they could judge two different clients.
	for _, name := range repeatableNot {
		if len(r.Form[name]) > 1 {
			return refuse(http.StatusBadRequest, string(zoidc.InvalidRequest), name+" is included more than once")
		}
	}
	formID, formSecret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if r.PostForm.Get("client_assertion") != "" || r.PostForm.Get("client_assertion_type") != "" {
		return refuse(http.StatusUnauthorized, string(zoidc.InvalidClient), "client assertions (private_key_jwt) are not supported")
	}
	id, sec, basic := r.BasicAuth()
	switch {
	case header && !basic:
		return refuse(http.StatusUnauthorized, string(zoidc.InvalidClient), "clients authenticate with HTTP Basic or in the form")
	case basic && formSecret != "":
		return refuse(http.StatusBadRequest, string(zoidc.InvalidRequest), "more than one client authentication method")
	case basic:
		// RFC 6749 §2.3.1: id and secret are form-encoded first.
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		sec, err2 = url.QueryUnescape(sec)
		if err1 != nil || err2 != nil {
			return refuse(http.StatusUnauthorized, string(zoidc.InvalidClient), "malformed Basic credentials")
		}
		if formID != "" && formID != id {
			return refuse(http.StatusBadRequest, string(zoidc.InvalidRequest), "client_id differs from the authenticated client")
		}
		// At the token endpoint, a public client naming itself in the
		// header with an empty password (golang.org/x/oauth2's
		// AuthStyleInHeader without a secret) authenticates nothing, as
		// with client_id in the form: the library redeems it, and PKCE
		// proves the code. (The library's revocation endpoint never took
		// it, so it is refused there as before.)
		if c, ok := p.storage.clients.get(id); ok && sec == "" && c.public && use == publicAllowed && r.URL.Path == route.Token {
			return true
		}
		if p.storage.AuthorizeClientIDSecret(r.Context(), id, sec) != nil {
			return refuse(http.StatusUnauthorized, string(zoidc.InvalidClient), "invalid client credentials")
		}
		return true
	case use == secretRequired:
		return refuse(http.StatusUnauthorized, string(zoidc.InvalidClient), "authenticate with HTTP Basic")
	case formID == "":
		return refuse(http.StatusUnauthorized, string(zoidc.InvalidClient), "client authentication is required")
	case formSecret != "":
		if p.storage.AuthorizeClientIDSecret(r.Context(), formID, formSecret) != nil {
			return refuse(http.StatusUnauthorized, string(zoidc.InvalidClient), "invalid client credentials")
		}
		return true
	}
	c, ok := p.storage.clients.get(formID)
	if !ok || !c.public {
		return refuse(http.StatusUnauthorized, string(zoidc.InvalidClient), "client authentication is required")
	}
	return true
}

// repeatableNot are the parameters of the token, introspection and
// revocation endpoints that authenticateClient refuses to see twice.
var repeatableNot = []string{"client_id", "client_secret", "grant_type", "code", "redirect_uri", "code_verifier",
	"refresh_token", "token", "token_type_hint", "scope", "client_assertion", "client_assertion_type"}

// checkGrantType answers a token request whose grant Anteroom does not
// offer with unsupported_grant_type (RFC 6749 §5.2): the library would
// route the JWT-bearer grant to a handler that fails later with another
// error. It returns false when it answered.
func checkGrantType(w http.ResponseWriter, r *http.Request) bool {
	g := r.PostForm.Get("grant_type")
	if g == "" {
		writeJSON(w, http.StatusBadRequest, oauthError{string(zoidc.InvalidRequest), "grant_type is missing"})
		return false
	}
	for _, s := range supportedGrantTypes {
		if g == string(s) {
			return true
		}
	}
	writeJSON(w, http.StatusBadRequest, oauthError{string(zoidc.UnsupportedGrantType), "supported grant types: " + joinGrants()})
	return false
}

func joinGrants() string {
	s := make([]string, len(supportedGrantTypes))
	for i, g := range supportedGrantTypes {
		s[i] = string(g)
	}
	return strings.Join(s, ", ")
}

// AuthorizeClientIDSecret implements op.Storage with a constant-time compare.
func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	c, ok := s.clients.get(id)
	if !ok || c.public {
		return errors.New("invalid client credentials")
	}
	// Only the secret's hash is kept (a client added through the admin
	// API is never stored with its secret); hashes of equal length are
	// compared in constant time.
	got := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(c.secretHash[:], got[:]) != 1 {
		return errors.New("invalid client credentials")
	}
	return nil
}

// GetKeyByIDAndClientID implements op.Storage; JWT client authentication is not offered.
func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("jwt profile is not supported")
}

// ValidateJWTProfileScopes implements op.Storage; the JWT profile grant is not offered.
func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("jwt profile is not supported")
}
