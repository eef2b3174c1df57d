package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/oauth2"

	"github.com/anteroom/anteroom/oidc"
)

// Spec-exact answers of the provider's endpoints: discovery advertises what
// works and nothing else, userinfo answers as RFC 6750 §3 says, client
// authentication failures as RFC 6749 §5.2 says, every authorization
// response carries iss (RFC 9207), and bodies are capped. See
// docs/oidc-conformance.md for the conformance suite's modules.

// call sends method to path with form (as the body for POST, else the
// query), Basic credentials when id is not empty, and headers; it returns
// the status, the headers and the body.
func (e *env) call(method, path string, form url.Values, id, sec string, headers map[string]string) (int, http.Header, string) {
	e.t.Helper()
	u := issuer + path
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(form.Encode())
	} else if len(form) > 0 {
		u += "?" + form.Encode()
	}
	req, _ := http.NewRequest(method, u, body)
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if id != "" {
		req.SetBasicAuth(id, sec)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := e.noRedirects().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// jsonError is the "error" of a JSON body, or "" if it is not one.
func jsonError(body string) string {
	var doc struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal([]byte(body), &doc)
	return doc.Error
}

// rpResponse is an authorization response as a relying party reads it:
// from the query, the fragment or a form post.
func rpResponse(t *testing.T, resp *http.Response, body string) url.Values {
	t.Helper()
	if loc, err := resp.Location(); err == nil {
		if frag, _ := url.ParseQuery(loc.Fragment); frag.Has("iss") || frag.Has("error") || frag.Has("code") {
			return frag
		}
		return loc.Query()
	}
	v := url.Values{}
	for _, m := range strings.Split(body, "<input ")[1:] {
		name := between(m, `name="`, `"`)
		v.Set(name, strings.ReplaceAll(between(m, `value="`, `"`), "&#43;", "+"))
	}
	return v
}

func between(s, start, end string) string {
	_, rest, _ := strings.Cut(s, start)
	v, _, _ := strings.Cut(rest, end)
	return v
}

// checkIss is what a relying party implementing RFC 9207 §2.4 does: the
// iss of the response must equal the issuer it sent the request to, the
// one in discovery.
func checkIss(t *testing.T, what string, v url.Values, r *rp) {
	t.Helper()
	var d struct {
		Issuer string `json:"issuer"`
	}
	if err := r.provider.Claims(&d); err != nil || v.Get("iss") != d.Issuer || d.Issuer != issuer {
		t.Errorf("%s: iss %q, discovery issuer %q (%v): %v", what, v.Get("iss"), d.Issuer, err, v)
	}
}

func TestDiscoveryIsHonest(t *testing.T) {
	e := negativeEnv(t)
	r := e.rp(clientID, secret, rpCallback)
	var d map[string]any
	if err := r.provider.Claims(&d); err != nil {
		t.Fatal(err)
	}
	list := func(k string) []string {
		var out []string
		vs, _ := d[k].([]any)
		for _, v := range vs {
			s, _ := v.(string)
			out = append(out, s)
		}
		return out
	}
	// OpenID Connect Discovery 1.0 §3, RFC 8414 §2: exactly what works.
	for k, want := range map[string][]string{
		"response_types_supported":                      {"code"},
		"response_modes_supported":                      {"query", "fragment", "form_post"},
		"grant_types_supported":                         {"authorization_code", "refresh_token"},
		"token_endpoint_auth_methods_supported":         {"none", "client_secret_basic", "client_secret_post"},
		"revocation_endpoint_auth_methods_supported":    {"none", "client_secret_basic", "client_secret_post"},
		"introspection_endpoint_auth_methods_supported": {"client_secret_basic"},
		"code_challenge_methods_supported":              {"S256"},
		"scopes_supported":                              {"openid", "offline_access"},
		"subject_types_supported":                       {"public"},
	} {
		if got := list(k); !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", k, got, want)
		}
	}
	for _, k := range []string{"device_authorization_endpoint", "check_session_iframe", "registration_endpoint",
		"request_object_signing_alg_values_supported", "token_endpoint_auth_signing_alg_values_supported",
		"introspection_endpoint_auth_signing_alg_values_supported", "revocation_endpoint_auth_signing_alg_values_supported"} {
		if _, ok := d[k]; ok {
			t.Errorf("%s is advertised: %v", k, d[k])
		}
	}
	for k, want := range map[string]any{"authorization_response_iss_parameter_supported": true,
		"request_uri_parameter_supported": false, "issuer": issuer} {
		if d[k] != want {
			t.Errorf("%s: %v, want %v", k, d[k], want)
		}
	}

	t.Run("each advertised response type works and the others are unsupported_response_type", func(t *testing.T) {
		sealedIDOf(t, e, r.authURL(newLogin()))
		for _, rt := range []string{"token", "id_token", "id_token token", "code id_token", "code token", "none"} {
			l := newLogin()
			u := strings.Replace(r.authURL(l), "response_type=code", "response_type="+url.QueryEscape(rt), 1)
			resp, body := visit(t, e.noRedirects(), http.MethodGet, u)
			v := rpResponse(t, resp, body)
			if v.Get("error") != "unsupported_response_type" || v.Get("state") != l.state {
				t.Errorf("response_type=%s: %d %v", rt, resp.StatusCode, v)
			}
			checkIss(t, "response_type="+rt, v, r)
		}
	})
	t.Run("each advertised response mode carries the code, an unknown one is refused", func(t *testing.T) {
		for _, mode := range list("response_modes_supported") {
			l := newLogin()
			b := e.browser()
			resp, _ := visit(t, b, http.MethodGet, r.authURL(l, oauth2.SetAuthURLParam("response_mode", mode)))
			waitURL := resp.Request.URL.String()
			if !strings.HasPrefix(waitURL, issuer+"/wait/") {
				t.Fatalf("response_mode=%s: %d at %s", mode, resp.StatusCode, waitURL)
			}
			e.advance(1)
			resp, body := visit(t, b, http.MethodPost, waitURL+"/continue")
			v := rpResponse(t, resp, body)
			if v.Get("code") == "" || v.Get("state") != l.state {
				t.Fatalf("response_mode=%s: %d %v", mode, resp.StatusCode, v)
			}
			if loc, _ := resp.Location(); (mode == "fragment") != (loc != nil && loc.Fragment != "") {
				t.Errorf("response_mode=%s answered at %v", mode, loc)
			}
			checkIss(t, "response_mode="+mode, v, r)
		}
		l := newLogin()
		resp, body := visit(t, e.noRedirects(), http.MethodGet, r.authURL(l, oauth2.SetAuthURLParam("response_mode", "jwt")))
		if v := rpResponse(t, resp, body); v.Get("error") != "invalid_request" || v.Get("state") != l.state {
			t.Errorf("response_mode=jwt: %d %v", resp.StatusCode, v)
		}
	})
	t.Run("each advertised grant type works and the others are unsupported_grant_type", func(t *testing.T) {
		_, refresh := offlineTokens(t, e, r)
		if status, doc, _ := e.tokenCall(clientID, secret, refreshForm(refresh)); status != http.StatusOK {
			t.Fatalf("refresh_token: %d %v", status, doc)
		}
		for _, g := range []string{"implicit", "client_credentials", "password", "urn:ietf:params:oauth:grant-type:jwt-bearer",
			"urn:ietf:params:oauth:grant-type:device_code", "urn:ietf:params:oauth:grant-type:token-exchange"} {
			form := url.Values{"grant_type": {g}, "assertion": {"x"}, "device_code": {"x"}}
			if status, doc, _ := e.tokenCall(clientID, secret, form); status != http.StatusBadRequest || doc["error"] != "unsupported_grant_type" {
				t.Errorf("grant_type=%s: %d %v", g, status, doc)
			}
		}
	})
	t.Run("each advertised token endpoint auth method works", func(t *testing.T) {
		l := newLogin()
		code := e.admitted(r.authURL(l), l)
		if status, doc, _ := e.tokenCall(clientID, secret, codeForm(code, l.verifier)); status != http.StatusOK {
			t.Errorf("client_secret_basic: %d %v", status, doc)
		}
		l = newLogin()
		code = e.admitted(r.authURL(l), l)
		form := codeForm(code, l.verifier)
		form.Set("client_id", clientID)
		form.Set("client_secret", secret)
		if status, doc, _ := e.tokenCall("", "", form); status != http.StatusOK {
			t.Errorf("client_secret_post: %d %v", status, doc)
		}
		pub := e.rp(publicAppID, "", publicRP)
		l = newLogin()
		code = e.admitted(pub.authURL(l), l)
		form = url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {publicRP},
			"client_id": {publicAppID}, "code_verifier": {l.verifier}}
		if status, doc, _ := e.tokenCall("", "", form); status != http.StatusOK {
			t.Errorf("none: %d %v", status, doc)
		}
	})
	t.Run("each advertised revocation and introspection auth method works, and only those", func(t *testing.T) {
		access, _ := offlineTokens(t, e, r)
		if status, _, body := e.call(http.MethodPost, "/oauth/introspect", url.Values{"token": {access}}, clientID, secret, nil); status != http.StatusOK || !strings.Contains(body, `"active":true`) {
			t.Errorf("introspection, client_secret_basic: %d %s", status, body)
		}
		post := url.Values{"token": {access}, "client_id": {clientID}, "client_secret": {secret}}
		if status, _, body := e.call(http.MethodPost, "/oauth/introspect", post, "", "", nil); status != http.StatusUnauthorized || jsonError(body) != "invalid_client" {
			t.Errorf("introspection, client_secret_post (not advertised): %d %s", status, body)
		}
		if status, _, body := e.call(http.MethodPost, "/revoke", post, "", "", nil); status != http.StatusOK {
			t.Errorf("revocation, client_secret_post: %d %s", status, body)
		}
		access, _ = offlineTokens(t, e, r)
		if status, _, body := e.call(http.MethodPost, "/revoke", url.Values{"token": {access}}, clientID, secret, nil); status != http.StatusOK {
			t.Errorf("revocation, client_secret_basic: %d %s", status, body)
		}
		if status, _, body := e.call(http.MethodPost, "/revoke", url.Values{"token": {"unknown"}, "client_id": {publicAppID}}, "", "", nil); status != http.StatusOK {
			t.Errorf("revocation, none: %d %s", status, body)
		}
	})
	t.Run("the advertised endpoints answer, the device endpoint does not exist", func(t *testing.T) {
		for _, k := range []string{"jwks_uri", "end_session_endpoint"} {
			u, _ := url.Parse(d[k].(string))
			if status, _, body := e.call(http.MethodGet, u.Path, nil, "", "", nil); status == http.StatusNotFound || status >= 500 {
				t.Errorf("%s %s: %d %.200s", k, u, status, body)
			}
		}
		if status, _, _ := e.call(http.MethodPost, "/device_authorization", url.Values{"client_id": {clientID}}, "", "", nil); status != http.StatusNotFound {
			t.Errorf("/device_authorization: %d", status)
		}
	})
	t.Run("ID tokens are signed with an advertised algorithm and carry advertised claims", func(t *testing.T) {
		l := newLogin()
		code := e.admitted(r.authURL(l), l)
		tok, err := r.oauth.Exchange(r.ctx, code, oauth2.VerifierOption(l.verifier))
		if err != nil {
			t.Fatal(err)
		}
		raw := tok.Extra("id_token").(string)
		hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0])
		var h struct {
			Alg string `json:"alg"`
		}
		_ = json.Unmarshal(hdr, &h)
		if !slices.Contains(list("id_token_signing_alg_values_supported"), h.Alg) {
			t.Errorf("ID token alg %s, advertised %v", h.Alg, d["id_token_signing_alg_values_supported"])
		}
		idt, err := r.verifier.Verify(r.ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		var claims map[string]any
		_ = idt.Claims(&claims)
		info, err := r.provider.UserInfo(r.ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			t.Fatal(err)
		}
		var infoClaims map[string]any
		_ = info.Claims(&infoClaims)
		for _, c := range list("claims_supported") {
			if _, ok := claims[c]; !ok {
				if _, ok := infoClaims[c]; !ok {
					t.Errorf("claim %s is advertised but neither in the ID token nor at userinfo", c)
				}
			}
		}
	})
	t.Run("PKCE: S256 works, plain is refused", func(t *testing.T) {
		l := newLogin()
		u := r.oauth.AuthCodeURL(l.state, oauth2.SetAuthURLParam("code_challenge", l.verifier), oauth2.SetAuthURLParam("code_challenge_method", "plain"))
		resp, body := visit(t, e.noRedirects(), http.MethodGet, u)
		if v := rpResponse(t, resp, body); v.Get("error") != "invalid_request" {
			t.Errorf("plain: %d %v", resp.StatusCode, v)
		}
	})
}

// TestUserinfoErrorsFollowRFC6750: OIDC Core §5.3.3 answers userinfo
// errors as RFC 6750 §3 does.
func TestUserinfoErrorsFollowRFC6750(t *testing.T) {
	e := negativeEnv(t)
	r := e.rp(clientID, secret, rpCallback)
	access, refresh := offlineTokens(t, e, r)
	bearer := map[string]string{"Authorization": "Bearer " + access}

	for name, tc := range map[string]struct {
		method  string
		form    url.Values
		headers map[string]string
	}{
		"GET with the header":      {http.MethodGet, nil, bearer},
		"POST with the header":     {http.MethodPost, url.Values{}, bearer},
		"POST with the form body":  {http.MethodPost, url.Values{"access_token": {access}}, nil},
		"GET with the query (2.3)": {http.MethodGet, url.Values{"access_token": {access}}, nil},
	} {
		if status, h, body := e.call(tc.method, "/userinfo", tc.form, "", "", tc.headers); status != http.StatusOK || !strings.Contains(body, `"room":"`+roomID+`"`) || h.Get("WWW-Authenticate") != "" {
			t.Errorf("%s: %d %v %s", name, status, h, body)
		}
	}
	// §3.1: no token at all gets the challenge without an error code.
	if status, h, _ := e.call(http.MethodGet, "/userinfo", nil, "", "", nil); status != http.StatusUnauthorized || h.Get("WWW-Authenticate") != "Bearer" {
		t.Errorf("no token: %d %q", status, h.Get("WWW-Authenticate"))
	}
	// §3.1 invalid_request: more than one method.
	if status, h, body := e.call(http.MethodPost, "/userinfo", url.Values{"access_token": {access}}, "", "", bearer); status != http.StatusBadRequest ||
		!strings.HasPrefix(h.Get("WWW-Authenticate"), `Bearer error="invalid_request"`) || jsonError(body) != "invalid_request" {
		t.Errorf("token in two places: %d %q %s", status, h.Get("WWW-Authenticate"), body)
	}
	invalid := func(what string, headers map[string]string) {
		t.Helper()
		status, h, body := e.call(http.MethodGet, "/userinfo", nil, "", "", headers)
		if status != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), `Bearer error="invalid_token"`) || jsonError(body) != "invalid_token" {
			t.Errorf("%s: %d %q %s", what, status, h.Get("WWW-Authenticate"), body)
		}
	}
	invalid("garbage", map[string]string{"Authorization": "Bearer garbage"})
	invalid("a JWT with a broken signature", map[string]string{"Authorization": "Bearer " + access[:len(access)-4] + "AAAA"})
	// §3.1 insufficient_scope: a token narrowed to offline_access at a
	// refresh is no OpenID Connect authorization.
	status, doc, _ := e.tokenCall(clientID, secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "scope": {"offline_access"}})
	if status != http.StatusOK {
		t.Fatalf("narrowing refresh: %d %v", status, doc)
	}
	narrow := doc["access_token"].(string)
	if status, h, body := e.call(http.MethodGet, "/userinfo", nil, "", "", map[string]string{"Authorization": "Bearer " + narrow}); status != http.StatusForbidden ||
		!strings.HasPrefix(h.Get("WWW-Authenticate"), `Bearer error="insufficient_scope"`) || jsonError(body) != "insufficient_scope" {
		t.Errorf("without openid: %d %q %s", status, h.Get("WWW-Authenticate"), body)
	}
	// Revoked (the refresh rotated the first access token's grant on, so
	// revoke the new one).
	if status := revoke(t, e, narrow); status != http.StatusOK {
		t.Fatalf("revoke: %d", status)
	}
	invalid("revoked", map[string]string{"Authorization": "Bearer " + narrow})
}

// TestClientAuthFailuresAreInvalidClient: RFC 6749 §5.2, which RFC 7009
// §2.2.1 (revocation) and RFC 7662 §2.3 (introspection) refer to: a client
// that fails to authenticate gets 401 invalid_client as JSON, with
// WWW-Authenticate when it used the Authorization header; and the token
// endpoint checks the client before it looks at the code.
func TestClientAuthFailuresAreInvalidClient(t *testing.T) {
	e := negativeEnv(t)
	r := e.rp(clientID, secret, rpCallback)
	access, _ := offlineTokens(t, e, r)
	for _, path := range []string{"/oauth/token", "/oauth/introspect", "/revoke"} {
		form := func(extra ...string) url.Values {
			f := url.Values{"token": {access}, "grant_type": {"authorization_code"}, "code": {"x"}, "redirect_uri": {rpCallback}}
			for i := 0; i < len(extra); i += 2 {
				f.Set(extra[i], extra[i+1])
			}
			return f
		}
		for name, tc := range map[string]struct {
			form      url.Values
			id, sec   string
			headers   map[string]string
			challenge bool
		}{
			"wrong Basic secret":                       {form(), clientID, "wrong", nil, true},
			"unknown Basic client":                     {form(), "nobody", secret, nil, true},
			"another scheme in the header":             {form(), "", "", map[string]string{"Authorization": "Bearer x"}, true},
			"wrong client_secret_post":                 {form("client_id", clientID, "client_secret", "wrong"), "", "", nil, false},
			"a confidential client without its secret": {form("client_id", clientID), "", "", nil, false},
			"no client at all":                         {form(), "", "", nil, false},
			"a client assertion":                       {form("client_id", clientID, "client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", "client_assertion", "x.y.z"), "", "", nil, false},
		} {
			status, h, body := e.call(http.MethodPost, path, tc.form, tc.id, tc.sec, tc.headers)
			challenge := h.Get("WWW-Authenticate")
			if status != http.StatusUnauthorized || jsonError(body) != "invalid_client" || !strings.HasPrefix(h.Get("Content-Type"), "application/json") ||
				tc.challenge != strings.HasPrefix(challenge, `Basic realm="`) {
				t.Errorf("%s, %s: %d %q %q %s", path, name, status, h.Get("Content-Type"), challenge, body)
			}
		}
		// RFC 6749 §3.1/§3.2: no parameter twice. A client_id in the query
		// and another in the body would let the check here and the
		// library's read different clients.
		for _, twice := range []url.Values{
			func() url.Values { f := form("client_id", publicAppID); f.Add("client_id", clientID); return f }(),
			func() url.Values { f := form(); f.Add("token", access); f.Add("code", "y"); return f }(),
		} {
			if status, _, body := e.call(http.MethodPost, path, twice, clientID, secret, nil); status != http.StatusBadRequest || jsonError(body) != "invalid_request" {
				t.Errorf("%s, a parameter twice %v: %d %s", path, twice, status, body)
			}
		}
		if status, _, body := e.call(http.MethodPost, path+"?client_id="+publicAppID, form("client_id", clientID), clientID, secret, nil); status != http.StatusBadRequest || jsonError(body) != "invalid_request" {
			t.Errorf("%s, client_id in the query and the body: %d %s", path, status, body)
		}
		// RFC 6749 §2.3: one method per request.
		if status, _, body := e.call(http.MethodPost, path, form("client_id", clientID, "client_secret", secret), clientID, secret, nil); status != http.StatusBadRequest || jsonError(body) != "invalid_request" {
			t.Errorf("%s, two methods: %d %s", path, status, body)
		}
	}
	// A public client may not introspect (RFC 7662 §2.1).
	if status, _, body := e.call(http.MethodPost, "/oauth/introspect", url.Values{"token": {access}, "client_id": {publicAppID}}, "", "", nil); status != http.StatusUnauthorized || jsonError(body) != "invalid_client" {
		t.Errorf("public client introspecting: %d %s", status, body)
	}
}

// TestAuthorizationResponsesCarryIss: RFC 9207 §2: every authorization
// response, success and error, in the query and in a form post, names the
// issuer, and the relying party checks it against discovery (§2.4).
func TestAuthorizationResponsesCarryIss(t *testing.T) {
	e := negativeEnv(t)
	r := e.rp(clientID, secret, rpCallback)
	formPost := oauth2.SetAuthURLParam("response_mode", "form_post")

	l := newLogin()
	b := e.browser()
	waitURL := queue(t, b, r, l)
	e.advance(1)
	resp, body := visit(t, b, http.MethodPost, waitURL+"/continue")
	checkIss(t, "code in the query", rpResponse(t, resp, body), r)

	l = newLogin()
	resp, body = visit(t, b, http.MethodGet, r.authURL(l, formPost, oauth2.SetAuthURLParam("prompt", "none")))
	if v := rpResponse(t, resp, body); v.Get("code") == "" {
		t.Fatalf("form_post code: %d %.300s", resp.StatusCode, body)
	} else {
		checkIss(t, "code in a form post", v, r)
	}
	for what, u := range map[string]string{
		"login_required in the query":          r.authURL(newLogin(), oauth2.SetAuthURLParam("prompt", "none")),
		"login_required in a form post":        r.authURL(newLogin(), oauth2.SetAuthURLParam("prompt", "none"), formPost),
		"invalid_request (missing scope)":      strings.Replace(r.authURL(newLogin()), "scope=openid&", "", 1),
		"invalid_request in a form post":       strings.Replace(r.authURL(newLogin(), formPost), "scope=openid&", "", 1),
		"request_not_supported":                r.authURL(newLogin(), oauth2.SetAuthURLParam("request", "e30.e30.")),
		"request_uri_not_supported":            r.authURL(newLogin(), oauth2.SetAuthURLParam("request_uri", "https://rp.example.com/r")),
		"unsupported_response_type, form post": strings.Replace(r.authURL(newLogin(), formPost), "response_type=code", "response_type=token", 1),
	} {
		resp, body := visit(t, e.browser(), http.MethodGet, u)
		v := rpResponse(t, resp, body)
		if v.Get("error") == "" {
			t.Errorf("%s: no error: %d %v %.200s", what, resp.StatusCode, v, body)
		}
		checkIss(t, what, v, r)
	}
	// The library's callback, kept for old links, refuses with iss too.
	id := strings.TrimPrefix(sealedIDOf(t, e, r.authURL(newLogin())), issuer+"/wait/")
	resp, body = visit(t, e.noRedirects(), http.MethodGet, issuer+"/authorize/callback?id="+url.QueryEscape(id))
	if v := rpResponse(t, resp, body); v.Get("error") != "interaction_required" {
		t.Errorf("callback: %d %v", resp.StatusCode, v)
	} else {
		checkIss(t, "callback", v, r)
	}
}

// captureLog sends the default logger's records to a buffer until the
// test ends (the package's tests do not run in parallel).
func captureLog(t *testing.T) func() string {
	t.Helper()
	var mu sync.Mutex
	var buf bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(old) })
	return func() string { mu.Lock(); defer mu.Unlock(); return buf.String() }
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestGarbageAuthorizationRequestsAreLoggedOnceAtInfo: a malformed
// authorization request is the client's mistake: one INFO line with the
// reason, never ERROR (the library logged a missing client_id as a
// server_error at ERROR, and Anteroom logged it again).
func TestGarbageAuthorizationRequestsAreLoggedOnceAtInfo(t *testing.T) {
	e := negativeEnv(t)
	r := e.rp(clientID, secret, rpCallback)
	for what, u := range map[string]string{
		"no parameters":            issuer + "/authorize",
		"no redirect_uri":          issuer + "/authorize?client_id=" + clientID + "&response_type=code&scope=openid",
		"unknown client":           strings.Replace(r.authURL(newLogin()), "client_id="+clientID, "client_id=nobody", 1),
		"unregistered redirect":    strings.Replace(r.authURL(newLogin()), url.QueryEscape(rpCallback), url.QueryEscape("https://evil.example/"), 1),
		"unsupported type":         strings.Replace(r.authURL(newLogin()), "response_type=code", "response_type=token", 1),
		"an undecodable parameter": issuer + "/authorize?client_id=" + clientID + "&max_age=soon",
	} {
		logs := captureLog(t)
		resp, _ := visit(t, e.noRedirects(), http.MethodGet, u)
		if resp.StatusCode < 300 || resp.StatusCode >= 500 {
			t.Errorf("%s: %d", what, resp.StatusCode)
		}
		out := logs()
		if n := strings.Count(out, "\n"); n != 1 || !strings.Contains(out, "level=INFO") || !strings.Contains(out, "authorization request refused") {
			t.Errorf("%s: want one INFO line, got %d:\n%s", what, n, out)
		}
	}
}

// TestOIDCRequestBodiesAreCapped: every endpoint that reads a form refuses
// a body over oidc.MaxRequestBody with 413, before the library parses it.
func TestOIDCRequestBodiesAreCapped(t *testing.T) {
	e := negativeEnv(t)
	big := url.Values{"pad": {strings.Repeat("a", oidc.MaxRequestBody)}, "client_id": {clientID}}
	for _, path := range []string{"/oauth/token", "/oauth/introspect", "/revoke", "/userinfo", "/authorize", "/end_session", "/authorize/callback"} {
		status, _, body := e.call(http.MethodPost, path, big, clientID, secret, nil)
		if status != http.StatusRequestEntityTooLarge || jsonError(body) != "invalid_request" {
			t.Errorf("%s: %d %.200s", path, status, body)
		}
	}
	// Just under the cap is parsed (and refused for what it says).
	small := url.Values{"pad": {strings.Repeat("a", oidc.MaxRequestBody-100)}, "grant_type": {"password"}}
	if status, _, body := e.call(http.MethodPost, "/oauth/token", small, clientID, secret, nil); status != http.StatusBadRequest || jsonError(body) != "unsupported_grant_type" {
		t.Errorf("under the cap: %d %.200s", status, body)
	}
}

// TestOptionalAuthorizationParametersAreAccepted: the Basic OP plan's
// modules that send optional parameters (OIDC Core §3.1.2.1) expect a
// normal answer: scopes Anteroom has no claims for (profile, email,
// address, phone; in any order), display, login_hint, ui_locales,
// claims_locales, acr_values, the claims parameter (OIDC Core §5.5,
// claims_parameter_supported is false, so it is ignored) and an
// id_token_hint for the visitor who is admitted.
func TestOptionalAuthorizationParametersAreAccepted(t *testing.T) {
	e := negativeEnv(t)
	r := e.rp(clientID, secret, rpCallback)
	b := e.browser()
	l := newLogin()
	waitURL := queue(t, b, r, l)
	e.advance(1)
	resp, _ := visit(t, b, http.MethodPost, waitURL+"/continue")
	tok, err := r.oauth.Exchange(r.ctx, codeFrom(t, resp, l), oauth2.VerifierOption(l.verifier))
	if err != nil {
		t.Fatal(err)
	}
	idToken := tok.Extra("id_token").(string)
	for name, params := range map[string]map[string]string{
		"oidcc-scope-all":                       {"scope": "openid profile email address phone"},
		"oidcc-ensure-other-scope-order":        {"scope": "email openid"},
		"oidcc-display-page":                    {"display": "page"},
		"oidcc-display-popup":                   {"display": "popup"},
		"oidcc-login-hint":                      {"login_hint": "visitor@example.com"},
		"oidcc-ui-locales":                      {"ui_locales": "se"},
		"oidcc-claims-locales":                  {"claims_locales": "se"},
		"oidcc-ensure-request-with-acr-values":  {"acr_values": "1 2"},
		"oidcc-claims-essential":                {"claims": `{"userinfo":{"name":{"essential":true}}}`},
		"oidcc-id-token-hint":                   {"id_token_hint": idToken, "prompt": "none"},
		"oidcc-ensure-request-without-nonce...": {"nonce": ""},
	} {
		l := newLogin()
		var opts []oauth2.AuthCodeOption
		for k, v := range params {
			opts = append(opts, oauth2.SetAuthURLParam(k, v))
		}
		resp, _ := visit(t, b, http.MethodGet, r.authURL(l, opts...))
		code := codeFrom(t, resp, l)
		if code == "" {
			t.Errorf("%s: no code: %d at %s %s", name, resp.StatusCode, resp.Request.URL, resp.Header.Get("Location"))
			continue
		}
		if _, err := r.oauth.Exchange(r.ctx, code, oauth2.VerifierOption(l.verifier)); err != nil {
			t.Errorf("%s: exchange: %v", name, err)
		}
	}
}

// TestAPIEndpointsKeepCORS: discovery, token, introspection, revocation and
// userinfo are answered (or refused) by Anteroom's own handlers now; a
// browser app still reads every answer, errors included, and its preflight
// is answered; never with credentials.
func TestAPIEndpointsKeepCORS(t *testing.T) {
	e := negativeEnv(t)
	origin := map[string]string{"Origin": "https://spa.example"}
	for name, tc := range map[string]struct {
		method, path string
		form         url.Values
	}{
		"discovery":                  {http.MethodGet, "/.well-known/openid-configuration", nil},
		"userinfo without a token":   {http.MethodGet, "/userinfo", nil},
		"token without a client":     {http.MethodPost, "/oauth/token", url.Values{"grant_type": {"authorization_code"}}},
		"introspection, public":      {http.MethodPost, "/oauth/introspect", url.Values{"client_id": {publicAppID}, "token": {"x"}}},
		"revocation, unknown client": {http.MethodPost, "/revoke", url.Values{"client_id": {"nobody"}, "token": {"x"}}},
	} {
		_, h, _ := e.call(tc.method, tc.path, tc.form, "", "", origin)
		if h.Get("Access-Control-Allow-Origin") != "*" || h.Get("Access-Control-Allow-Credentials") != "" || len(h.Values("Vary")) > 1 {
			t.Errorf("%s: %v", name, h)
		}
		status, h, _ := e.call(http.MethodOptions, tc.path, nil, "", "", map[string]string{"Origin": "https://spa.example",
			"Access-Control-Request-Method": http.MethodPost, "Access-Control-Request-Headers": "authorization"})
		if status >= 300 || h.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(h.Get("Access-Control-Allow-Methods"), http.MethodPost) {
			t.Errorf("%s, preflight: %d %v", name, status, h)
		}
	}
}
