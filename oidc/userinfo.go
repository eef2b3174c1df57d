package oidc

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// The library's userinfo endpoint answers a missing or unreadable token
// with a plain-text 401 and a revoked one with 403 {}, neither with
// WWW-Authenticate, so a client cannot tell "log in again" from "not
// allowed". OIDC Core §5.3.3 says to answer as RFC 6750 §3 does, which this
// handler does. (Workaround 10 in workarounds.go.)

// bearerError answers a userinfo request with the RFC 6750 §3 error code
// (empty: no token was sent, which gets no error attribute, §3.1) in
// WWW-Authenticate and in a JSON body.
func bearerError(w http.ResponseWriter, status int, code, description string) {
	challenge := "Bearer"
	if code != "" {
		challenge += ` error="` + code + `"`
		if description != "" {
			challenge += `, error_description="` + description + `"`
		}
		if code == "insufficient_scope" {
			challenge += `, scope="openid"`
		}
	}
	w.Header().Set("WWW-Authenticate", challenge)
	w.Header().Set("Cache-Control", "no-store")
	if code == "" {
		w.WriteHeader(status)
		return
	}
	writeJSON(w, status, oauthError{code, description})
}

// userinfo serves OIDC Core §5.3 for the access tokens Anteroom issued.
func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !parseForm(w, r) {
		return
	}
	// RFC 6750 §2: the token comes in the Authorization header, the form
	// body or the query, and in exactly one of them (§3.1
	// invalid_request: "uses more than one method").
	var found []string
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, _ := strings.Cut(h, " ")
		if strings.EqualFold(scheme, "Bearer") {
			token = strings.TrimSpace(token)
			if token == "" {
				bearerError(w, http.StatusBadRequest, "invalid_request", "the Bearer credentials are empty")
				return
			}
			found = append(found, token)
		}
	}
	found = append(found, r.PostForm["access_token"]...)
	found = append(found, r.URL.Query()["access_token"]...)
	switch {
	case len(found) == 0:
		bearerError(w, http.StatusUnauthorized, "", "")
		return
	case len(found) > 1:
		bearerError(w, http.StatusBadRequest, "invalid_request", "send the access token in exactly one place")
		return
	}
	ctx := op.ContextWithIssuer(r.Context(), p.issuer)
	tokenID, subject, ok := p.tokenIDAndSubject(r.WithContext(ctx), found[0])
	if !ok {
		bearerError(w, http.StatusUnauthorized, "invalid_token", "the access token is invalid")
		return
	}
	rec, err := p.storage.readToken(ctx, accessTokenKey(tokenID))
	if err != nil || rec.Queue.Subject != subject {
		// A store failure marked the context: guardOutage answers 503.
		bearerError(w, http.StatusUnauthorized, "invalid_token", "the access token is expired or revoked")
		return
	}
	if !slices.Contains(rec.Scopes, zoidc.ScopeOpenID) {
		// An OAuth-only token (no openid scope, e.g. narrowed at a
		// refresh) is no OpenID Connect authorization (OIDC Core §5.3).
		bearerError(w, http.StatusForbidden, "insufficient_scope", "the access token was not issued for the openid scope")
		return
	}
	info := new(zoidc.UserInfo)
	setUserinfo(info, &rec.Queue)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, info)
}

// tokenIDAndSubject reads an access token: an opaque one (the gate's) is
// the id and subject sealed by the provider's crypto, a JWT one must verify
// against the provider's keys and issuer.
func (p *Provider) tokenIDAndSubject(r *http.Request, token string) (id, subject string, ok bool) {
	if plain, err := p.op.Crypto().Decrypt(token); err == nil {
		id, subject, ok = strings.Cut(plain, ":")
		return id, subject, ok && !strings.Contains(subject, ":")
	}
	claims, err := op.VerifyAccessToken[*zoidc.AccessTokenClaims](r.Context(), token, p.op.AccessTokenVerifier(r.Context()))
	if err != nil {
		return "", "", false
	}
	return claims.JWTID, claims.Subject, true
}

// What the tokens say of the visitor, for the library's ID tokens, JWT
// access tokens and its (unused) userinfo: the queue claims of the request or
// token already read. Only SetUserinfoFromToken reads the store (readToken).

// SetUserinfoFromScopes implements op.Storage; SetUserinfoFromRequest does the work.
func (s *storage) SetUserinfoFromScopes(context.Context, *zoidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest puts the queue claims into the ID token.
func (s *storage) SetUserinfoFromRequest(_ context.Context, info *zoidc.UserInfo, req op.IDTokenRequest, _ []string) error {
	q, _, _, err := grant(req.(op.TokenRequest))
	if err != nil {
		return err
	}
	setUserinfo(info, q)
	return nil
}

func setUserinfo(info *zoidc.UserInfo, q *QueueClaims) {
	info.Subject = q.Subject
	for k, v := range q.Claims() {
		info.AppendClaims(k, v)
	}
}

// SetUserinfoFromToken implements op.Storage. Provider.userinfo answers the
// userinfo endpoint itself (RFC 6750 errors) and reads the token directly.
func (s *storage) SetUserinfoFromToken(ctx context.Context, info *zoidc.UserInfo, tokenID, subject, _ string) error {
	rec, err := s.readToken(ctx, accessTokenKey(tokenID))
	if err != nil {
		return err
	}
	if rec.Queue.Subject != subject {
		return errors.New("token subject mismatch")
	}
	setUserinfo(info, &rec.Queue)
	return nil
}

// GetPrivateClaimsFromScopes implements op.Storage; GetPrivateClaimsFromRequest does the work.
func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

// GetPrivateClaimsFromRequest puts the queue claims into JWT access tokens.
func (s *storage) GetPrivateClaimsFromRequest(_ context.Context, req op.TokenRequest, _ []string) (map[string]any, error) {
	q, _, _, err := grant(req)
	if err != nil {
		return nil, err
	}
	return q.Claims(), nil
}
