package oidc

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"

	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// The authorization endpoint is the library's Authorize, step by step, with
// Anteroom's own error answer: the library logs every refused request
// itself, at ERROR as a server_error for a request without client_id or
// redirect_uri, and answers a relying party that asked for form_post with
// a redirect it does not read. A refused request is a client's mistake:
// logged once, at INFO, and answered as the request asked, with iss.
// (Workarounds 3 and 4 in workarounds.go.)

// authorize serves the authorization endpoint (OIDC Core §3.1.2).
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !parseForm(w, r) {
		return
	}
	r = r.WithContext(op.ContextWithIssuer(r.Context(), p.issuer))
	ctx := r.Context()
	authReq, err := op.ParseAuthorizeRequest(r, p.op.Decoder())
	if err != nil {
		p.authError(w, r, nil, err)
		return
	}
	if authReq.ClientID == "" {
		p.authError(w, r, nil, zoidc.ErrInvalidRequest().WithDescription("client_id is missing"))
		return
	}
	c, ok := p.storage.clients.get(authReq.ClientID)
	if !ok {
		p.authError(w, r, nil, zoidc.ErrInvalidClient().WithDescription("unknown client"))
		return
	}
	// The redirect_uri is checked first: until it is, no error may go
	// there (RFC 6749 §4.1.2.1).
	sub, err := op.ValidateAuthRequestClient(ctx, authReq, c, p.op.IDTokenHintVerifier(ctx))
	if err != nil {
		p.authError(w, r, authReq, err)
		return
	}
	switch {
	case authReq.ResponseMode != "" && !slices.Contains(supportedResponseModes, string(authReq.ResponseMode)):
		// Answered in the response type's default mode.
		authReq.ResponseMode = ""
		p.authError(w, r, authReq, zoidc.ErrInvalidRequest().WithDescription("unsupported response_mode"))
		return
	case authReq.RequestParam != "":
		// OIDC Core §6.1: request objects are not supported
		// (request_parameter_supported is false).
		p.authError(w, r, authReq, zoidc.ErrRequestNotSupported())
		return
	case r.Form.Get("request_uri") != "":
		// OIDC Core §6.2 (request_uri_parameter_supported is false).
		e := zoidc.ErrRequestNotSupported().WithDescription("request_uri is not supported")
		e.ErrorType = "request_uri_not_supported"
		p.authError(w, r, authReq, e)
		return
	}
	req, err := p.storage.CreateAuthRequest(ctx, authReq, sub)
	if err != nil {
		p.authError(w, r, authReq, err)
		return
	}
	op.RedirectToLogin(req.GetID(), c, w, r)
}

// authError answers a refused authorization request: at the relying party
// once its redirect_uri is known to be registered (authReq validated and
// the error not marked otherwise), else on a page for the person, since
// redirecting anywhere else would make Anteroom an open redirector.
func (p *Provider) authError(w http.ResponseWriter, r *http.Request, authReq *zoidc.AuthRequest, err error) {
	var e *zoidc.Error
	if !errors.As(err, &e) {
		e = zoidc.ErrServerError().WithParent(err)
	}
	level := slog.LevelInfo
	if e.ErrorType == zoidc.ServerError {
		level = slog.LevelError
	}
	attrs := []any{"error", string(e.ErrorType), "reason", e.Description}
	if authReq != nil {
		attrs = append(attrs, "client_id", authReq.ClientID)
	}
	if authReq == nil || authReq.RedirectURI == "" || e.IsRedirectDisabled() {
		slog.Log(r.Context(), level, "authorization request refused", append(attrs, "answered", "page")...)
		if p.errorPage != nil {
			p.errorPage(w, r)
			return
		}
		http.Error(w, "invalid authorization request", http.StatusBadRequest)
		return
	}
	slog.Log(r.Context(), level, "authorization request refused", append(attrs, "answered", "relying party")...)
	if err := p.respond(w, r, authReq.RedirectURI, authReq.ResponseType, authReq.ResponseMode, errorFields(e, authReq.State)...); err != nil {
		http.Error(w, "invalid authorization request", http.StatusBadRequest)
	}
}

// errorFields are the parameters of an error response (RFC 6749
// §4.1.2.1).
func errorFields(e *zoidc.Error, state string) []formField {
	return []formField{{"error", string(e.ErrorType)}, {"error_description", e.Description}, {"state", state}}
}

// respond sends an authorization response, a code or an error, to
// redirectURI in the response mode the request asked for (OAuth 2.0
// Multiple Response Type Encoding Practices §2.1, Form Post Response Mode),
// with iss (RFC 9207 §2), so that a relying party talking to several
// providers can tell which one answered (the mix-up defence RFC 9700 §4.4
// recommends). Every answer to a relying party's redirect_uri goes through
// here. Nothing is written when it returns an error.
func (p *Provider) respond(w http.ResponseWriter, r *http.Request, redirectURI string, rt zoidc.ResponseType, mode zoidc.ResponseMode, fields ...formField) error {
	fields = append(fields, formField{"iss", p.issuer})
	if mode == zoidc.ResponseModeFormPost {
		return p.formPost(w, redirectURI, fields...)
	}
	u, err := url.Parse(redirectURI)
	if err != nil {
		return err
	}
	params := url.Values{}
	for _, f := range fields {
		if f.Value != "" {
			params.Set(f.Name, f.Value)
		}
	}
	// Multiple Response Types §5: a type that returns tokens from the
	// authorization endpoint defaults to the fragment; code to the query.
	if mode == zoidc.ResponseModeFragment || (mode == "" && rt != zoidc.ResponseTypeCode) {
		u.RawFragment = params.Encode()
		u.Fragment, _ = url.PathUnescape(u.RawFragment)
	} else {
		q := u.Query()
		for k, v := range params {
			q[k] = v
		}
		u.RawQuery = q.Encode()
	}
	// RFC 9700 §4.11: 303, so that a POST is never repeated at the
	// relying party.
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
	return nil
}

// withIss adds iss (RFC 9207) to a redirect the library built to a relying
// party: into the fragment if the response is there, else the query.
func withIss(location, issuer string) string {
	u, err := url.Parse(location)
	if err != nil {
		return location
	}
	if frag, err := url.ParseQuery(u.Fragment); err == nil && (frag.Has("error") || frag.Has("code")) {
		frag.Set("iss", issuer)
		u.RawFragment = frag.Encode()
		u.Fragment, _ = url.PathUnescape(u.RawFragment)
		return u.String()
	}
	q := u.Query()
	q.Set("iss", issuer)
	u.RawQuery = q.Encode()
	return u.String()
}
