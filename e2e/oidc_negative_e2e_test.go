package e2e

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"html"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/anteroom/anteroom/config"
)

// The OIDC negative suite: what a relying party, a visitor or an attacker
// can send that the provider must refuse, modelled on the OpenID
// conformance suite's Basic OP plan and on RFC 9700 (OAuth 2.0 Security
// Best Current Practice). Cases already covered elsewhere are not repeated:
// an unknown client, a public client without PKCE, PKCE plain, a bad client
// secret, a wrong verifier (TestBadRequestsGetTheRightErrorAndAdmitNobody,
// TestWrongVerifierDoesNotBurnTheCode), 20 concurrent redemptions of one
// code (TestConcurrentRedemptionsOfOneCode), prompt=none for a newcomer and
// for an admitted visitor (TestPromptNone).

const (
	otherClient = "other"
	otherSecret = "other-secret-0123456789"
)

// negativeEnv is one instance with the test clock, a second confidential
// client of the same room and the gate.
func negativeEnv(t *testing.T) *env {
	e := newEnv(t, false, func(c *config.Config) {
		c.Clients = append(c.Clients, config.Client{ID: otherClient, Secret: otherSecret, Room: roomID,
			RedirectURIs: []string{rpCallback}})
		c.Gate = &config.Gate{Rules: []config.Rule{{PathPrefix: "/", Action: "queue", Room: roomID}}}
		c.ApplyDefaults()
	})
	e.start()
	return e
}

// noRedirects is a client that shows each redirect instead of following it.
func (e *env) noRedirects() *http.Client {
	return &http.Client{Transport: e.transport(), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// tokenCall posts form to the token endpoint as client id (secret "" for
// none) and returns the status, the JSON body and the headers.
func (e *env) tokenCall(id, secret string, form url.Values) (int, map[string]any, http.Header) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, issuer+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if secret != "" {
		req.SetBasicAuth(id, secret)
	}
	resp, err := e.noRedirects().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&doc)
	return resp.StatusCode, doc, resp.Header
}

// refreshForm is a refresh grant of token.
func refreshForm(token string) url.Values {
	return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}}
}

func codeForm(code, verifier string) url.Values {
	f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {rpCallback}}
	if verifier != "" {
		f.Set("code_verifier", verifier)
	}
	return f
}

// admitted queues a new browser with the authorization URL u, admits it and
// returns the code the relying party gets.
func (e *env) admitted(u string, l login) string {
	e.t.Helper()
	b := e.browser()
	resp, body := visit(e.t, b, http.MethodGet, u)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.String(), issuer+"/wait/") {
		e.t.Fatalf("expected the waiting page, got %d at %s: %.200s", resp.StatusCode, resp.Request.URL, body)
	}
	e.advance(1)
	resp, _ = visit(e.t, b, http.MethodPost, resp.Request.URL.String()+"/continue")
	code := codeFrom(e.t, resp, l)
	if code == "" {
		e.t.Fatalf("no code after admission: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	return code
}

// rpError reads the OAuth error a redirect to the relying party carries, in
// the query or, for response types other than code, the fragment.
func rpError(resp *http.Response) (errCode, state string) {
	loc, err := resp.Location()
	if err != nil || loc.Host != rpHost {
		return "", ""
	}
	q := loc.Query()
	if frag, err := url.ParseQuery(loc.Fragment); err == nil && frag.Get("error") != "" {
		q = frag
	}
	if q.Get("code") != "" {
		return "code issued", ""
	}
	return q.Get("error"), q.Get("state")
}

func (e *env) tail() float64 {
	e.t.Helper()
	_, doc := e.admin(http.MethodGet, "/admin/v1/rooms/"+roomID, "")
	return doc["tail"].(float64)
}

func TestOIDCNegativeAuthorizationRequests(t *testing.T) {
	e := negativeEnv(t)
	r := e.rp(clientID, secret, rpCallback)
	plain := e.noRedirects()

	t.Run("an unregistered redirect_uri gets a page in the waiting room's style, no redirect", func(t *testing.T) {
		u := strings.Replace(r.authURL(newLogin()), url.QueryEscape(rpCallback), url.QueryEscape("https://evil.example/cb"), 1)
		resp, body := visit(t, plain, http.MethodGet, u)
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" ||
			!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, "This link does not work") ||
			strings.Contains(body, "evil.example") || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Fatalf("%d %v\n%.300s", resp.StatusCode, resp.Header, body)
		}
	})
	t.Run("a missing response_type is invalid_request at the relying party", func(t *testing.T) {
		l := newLogin()
		u := strings.Replace(r.authURL(l), "response_type=code&", "", 1)
		resp, _ := visit(t, plain, http.MethodGet, u)
		if errCode, state := rpError(resp); errCode != "invalid_request" || state != l.state {
			t.Fatalf("%d %s: %q %q", resp.StatusCode, resp.Header.Get("Location"), errCode, state)
		}
	})
	t.Run("an unsupported response_type is unsupported_response_type and queues nobody", func(t *testing.T) {
		before := e.tail()
		for _, rt := range []string{"token", "id_token", "code id_token"} {
			l := newLogin()
			u := strings.Replace(r.authURL(l), "response_type=code", "response_type="+url.QueryEscape(rt), 1)
			resp, _ := visit(t, plain, http.MethodGet, u)
			if errCode, state := rpError(resp); errCode != "unsupported_response_type" || state != l.state {
				t.Fatalf("response_type=%s: %d %s", rt, resp.StatusCode, resp.Header.Get("Location"))
			}
		}
		if e.tail() != before {
			t.Fatal("a refused request took a place in the queue")
		}
	})
	t.Run("unknown parameters are ignored", func(t *testing.T) {
		queue(t, e.browser(), r, newLogin())
		b := e.browser()
		resp, _ := visit(t, b, http.MethodGet, r.authURL(newLogin(), oauth2.SetAuthURLParam("frobnicate", "yes"),
			oauth2.SetAuthURLParam("claims_locales", "tlh"), oauth2.SetAuthURLParam("x-vendor", "\x01")))
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.String(), issuer+"/wait/") {
			t.Fatalf("%d at %s", resp.StatusCode, resp.Request.URL)
		}
	})
	t.Run("a POST to /authorize works as a GET does", func(t *testing.T) {
		u, _ := url.Parse(r.authURL(newLogin()))
		resp, err := plain.PostForm(issuer+"/authorize", u.Query())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, issuer+"/wait/") {
			t.Fatalf("%d %q", resp.StatusCode, loc)
		}
	})
	t.Run("/authorize answers no CORS, a preflight included", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodOptions, issuer+"/authorize", nil)
		req.Header.Set("Origin", "https://evil.example")
		req.Header.Set("Access-Control-Request-Method", "GET")
		resp, err := plain.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" || resp.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Fatalf("preflight answered CORS: %v", resp.Header)
		}
	})
	t.Run("prompt=none while waiting is login_required, and the place is kept", func(t *testing.T) {
		b := e.browser()
		waitURL := queue(t, b, r, newLogin())
		pos := pollStatus(t, b, waitURL).Position
		tail := e.tail()
		l := newLogin()
		resp, _ := visit(t, b, http.MethodGet, r.authURL(l, oauth2.SetAuthURLParam("prompt", "none")))
		if errCode, state := rpError(resp); errCode != "login_required" || state != l.state {
			t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
		if st := pollStatus(t, b, waitURL); st.Position != pos || e.tail() != tail {
			t.Fatalf("prompt=none moved the visitor: %+v (tail %v, was %v)", st, e.tail(), tail)
		}
	})
}

// TestOIDCNegativeMaxAge: OIDC Core 3.1.2.1. A waiting room's
// authentication is passing the queue, so auth_time is admitted_at, and a
// relying party that asks for max_age gets a visitor whose admission is at
// most that old, or who passes the queue again; prompt=login is max_age=0.
func TestOIDCNegativeMaxAge(t *testing.T) {
	e := negativeEnv(t)
	r := e.rp(clientID, secret, rpCallback)
	b := e.browser()
	first := newLogin()
	waitURL := queue(t, b, r, first)
	e.advance(1)
	resp, _ := visit(t, b, http.MethodPost, waitURL+"/continue")
	if codeFrom(t, resp, first) == "" {
		t.Fatal("no code for the first login")
	}
	admittedAt := e.clock.Now().Unix()
	e.clock.Advance(2 * time.Minute)

	// Recent enough: through at once, and the ID token says when.
	l := newLogin()
	resp, _ = visit(t, b, http.MethodGet, r.authURL(l, oauth2.SetAuthURLParam("max_age", "300")))
	code := codeFrom(t, resp, l)
	if code == "" {
		t.Fatalf("max_age=300 after 2 minutes: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	tok, err := r.oauth.Exchange(r.ctx, code, oauth2.VerifierOption(l.verifier))
	if err != nil {
		t.Fatal(err)
	}
	idt, err := r.verifier.Verify(r.ctx, tok.Extra("id_token").(string))
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		AuthTime int64 `json:"auth_time"`
	}
	if err := idt.Claims(&claims); err != nil || claims.AuthTime != admittedAt {
		t.Fatalf("auth_time %d, want the admission's %d (%v)", claims.AuthTime, admittedAt, err)
	}

	// Too old: prompt=none cannot re-authenticate, so login_required.
	l = newLogin()
	resp, _ = visit(t, b, http.MethodGet, r.authURL(l, oauth2.SetAuthURLParam("max_age", "60"), oauth2.SetAuthURLParam("prompt", "none")))
	if errCode, _ := rpError(resp); errCode != "login_required" {
		t.Fatalf("max_age=60 with prompt=none after 2 minutes: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	// Too old, interactively: the page asks first. Any site can send a
	// browser here with max_age, so the GET gives nothing up.
	tail := e.tail()
	l = newLogin()
	resp, body := visit(t, b, http.MethodGet, r.authURL(l, oauth2.SetAuthURLParam("max_age", "60")))
	waitURL = resp.Request.URL.String()
	requeueURL, declineURL := answerURL(t, body, waitURL+"/requeue"), answerURL(t, body, waitURL+"/decline")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(waitURL, issuer+"/wait/") {
		t.Fatalf("max_age=60 after 2 minutes: %d at %s: %.400s", resp.StatusCode, waitURL, body)
	}
	if e.tail() != tail {
		t.Fatal("asking whether to queue again queued someone")
	}
	if resp, body := visit(t, b, http.MethodGet, waitURL+"?format=json"); resp.StatusCode != http.StatusConflict ||
		!strings.Contains(body, `"error":"requeue_required"`) || !strings.Contains(body, `"requeue_url":"`+requeueURL+`"`) ||
		!strings.Contains(body, `"decline_url":"`+declineURL+`"`) {
		t.Fatalf("max_age=60 in JSON: %d %s", resp.StatusCode, body)
	}
	// The browser keeps its admission meanwhile: a silent login passes.
	silent := newLogin()
	if resp, _ := visit(t, b, http.MethodGet, r.authURL(silent, oauth2.SetAuthURLParam("prompt", "none"))); codeFrom(t, resp, silent) == "" {
		t.Fatalf("the admission was given up by asking: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	// A form another site posts comes without the cookie (SameSite=Lax),
	// and one from another origin of the same site (a sibling subdomain)
	// without the question's token: neither gives anybody's place up.
	for name, post := range map[string]func() *http.Response{
		"without the cookie": func() *http.Response { resp, _ := visit(t, e.browser(), http.MethodPost, requeueURL); return resp },
		"without the token":  func() *http.Response { resp, _ := visit(t, b, http.MethodPost, waitURL+"/requeue"); return resp },
		"with another request's token": func() *http.Response {
			other := sealedIDOf(t, e, r.authURL(newLogin(), oauth2.SetAuthURLParam("prompt", "login")))
			_, q, _ := strings.Cut(requeueURL, "?")
			resp, _ := visit(t, b, http.MethodPost, other+"/requeue?"+q)
			return resp
		},
		"from another origin": func() *http.Response {
			resp, _ := postWith(t, b, requeueURL, map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "https://blog.example.com"})
			return resp
		},
		"declining without the token": func() *http.Response { resp, _ := visit(t, b, http.MethodPost, waitURL+"/decline"); return resp },
	} {
		if resp := post(); resp.StatusCode != http.StatusForbidden || e.tail() != tail {
			t.Fatalf("requeue %s: %d, tail %v (was %v)", name, resp.StatusCode, e.tail(), tail)
		}
	}
	silent = newLogin()
	if resp, _ := visit(t, b, http.MethodGet, r.authURL(silent, oauth2.SetAuthURLParam("prompt", "none"))); codeFrom(t, resp, silent) == "" {
		t.Fatalf("the admission did not survive the forged answers: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The visitor's own choice: a new place at the back.
	resp, _ = postWith(t, b, requeueURL, map[string]string{"Sec-Fetch-Site": "same-origin"})
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != waitURL {
		t.Fatalf("requeue: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	if st := pollStatus(t, b, waitURL); st.State != "waiting" || st.Position != int64(tail)+1 {
		t.Fatalf("max_age=60 after 2 minutes: %+v, want a new place %v", st, tail+1)
	}
	// That new place, once admitted, answers the request it was taken for.
	e.advance(1)
	resp, _ = visit(t, b, http.MethodPost, waitURL+"/continue")
	if codeFrom(t, resp, l) == "" {
		t.Fatalf("the new admission did not continue: %d at %s", resp.StatusCode, resp.Request.URL)
	}

	// prompt=login is max_age=0: even this fresh admission is too old for
	// a request sent a second later. Declining keeps the admission and
	// sends the relying party access_denied.
	e.clock.Advance(time.Second)
	tail = e.tail()
	l = newLogin()
	resp, body = visit(t, b, http.MethodGet, r.authURL(l, oauth2.SetAuthURLParam("prompt", "login")))
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Request.URL.Path, "/wait/") {
		t.Fatalf("prompt=login: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	resp, _ = visit(t, b, http.MethodPost, answerURL(t, body, resp.Request.URL.String()+"/decline"))
	if errCode, state := rpError(resp); errCode != "access_denied" || state != l.state || e.tail() != tail {
		t.Fatalf("decline: %d %s, tail %v (was %v)", resp.StatusCode, resp.Header.Get("Location"), e.tail(), tail)
	}
	silent = newLogin()
	if resp, _ := visit(t, b, http.MethodGet, r.authURL(silent, oauth2.SetAuthURLParam("prompt", "none"))); codeFrom(t, resp, silent) == "" {
		t.Fatalf("declining gave the admission up: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	// And a continue sent straight away, without the page, is no way round.
	b2 := e.browser()
	old := newLogin()
	w2 := queue(t, b2, r, old)
	e.advance(1)
	if resp, _ := visit(t, b2, http.MethodPost, w2+"/continue"); codeFrom(t, resp, old) == "" {
		t.Fatal("no admission for the second browser")
	}
	e.clock.Advance(2 * time.Minute)
	id := strings.TrimPrefix(sealedIDOf(t, e, r.authURL(newLogin(), oauth2.SetAuthURLParam("max_age", "60"))), issuer+"/wait/")
	resp, _ = visit(t, b2, http.MethodPost, issuer+"/wait/"+id+"/continue")
	if loc, _ := resp.Location(); loc != nil && loc.Host == rpHost {
		t.Fatalf("a continue without the page let a stale admission through: %s", loc)
	}
}

// answerURL returns the action of the question page's form that posts to
// prefix (its URL carries the question's token).
func answerURL(t *testing.T, page, prefix string) string {
	t.Helper()
	_, rest, ok := strings.Cut(page, `action="`+prefix+`?`)
	end := strings.IndexByte(rest, '"')
	if !ok || end < 0 {
		t.Fatalf("no form posting to %s in %.600s", prefix, page)
	}
	return prefix + "?" + html.UnescapeString(rest[:end])
}

// postWith posts to u in browser b with headers (what a browser adds to a
// form it submits) and returns the last response and its body.
func postWith(t *testing.T, b *http.Client, u string, headers map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := b.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// sealedIDOf sends an authorization request without a browser and returns
// the waiting page's URL it is sent to.
func sealedIDOf(t *testing.T, e *env, u string) string {
	t.Helper()
	resp, _ := visit(t, e.noRedirects(), http.MethodGet, u)
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, issuer+"/wait/") {
		t.Fatalf("authorize: %d %q", resp.StatusCode, loc)
	}
	return loc
}

func TestOIDCNegativeTokenEndpoint(t *testing.T) {
	e := negativeEnv(t)
	r := e.rp(clientID, secret, rpCallback)

	t.Run("PKCE downgrade: a challenge was sent, the verifier is not", func(t *testing.T) {
		l := newLogin()
		code := e.admitted(r.authURL(l), l)
		if status, doc, _ := e.tokenCall(clientID, secret, codeForm(code, "")); status != http.StatusBadRequest || doc["error"] != "invalid_request" {
			t.Fatalf("%d %v", status, doc)
		}
		if status, doc, _ := e.tokenCall(clientID, secret, codeForm(code, l.verifier)); status != http.StatusOK {
			t.Fatalf("the refused attempt burnt the code: %d %v", status, doc)
		}
	})
	t.Run("PKCE downgrade: a verifier is sent, no challenge was", func(t *testing.T) {
		l := newLogin()
		code := e.admitted(r.oauth.AuthCodeURL(l.state), l)
		if status, doc, _ := e.tokenCall(clientID, secret, codeForm(code, l.verifier)); status != http.StatusBadRequest || doc["error"] != "invalid_request" {
			t.Fatalf("%d %v", status, doc)
		}
	})
	t.Run("a code is refused to another client, and not burnt", func(t *testing.T) {
		l := newLogin()
		code := e.admitted(r.authURL(l), l)
		if status, doc, _ := e.tokenCall(otherClient, otherSecret, codeForm(code, l.verifier)); status != http.StatusBadRequest || doc["error"] != "invalid_grant" {
			t.Fatalf("%d %v", status, doc)
		}
		if status, doc, _ := e.tokenCall(clientID, secret, codeForm(code, l.verifier)); status != http.StatusOK {
			t.Fatalf("the other client's attempt burnt the code: %d %v", status, doc)
		}
	})
	t.Run("an expired code is refused", func(t *testing.T) {
		l := newLogin()
		code := e.admitted(r.authURL(l), l)
		e.clock.Advance(5*time.Minute + time.Second)
		if status, doc, _ := e.tokenCall(clientID, secret, codeForm(code, l.verifier)); status != http.StatusBadRequest || doc["error"] != "invalid_grant" {
			t.Fatalf("%d %v", status, doc)
		}
	})
	t.Run("a replayed code revokes the refresh token it bought too", func(t *testing.T) {
		l := newLogin()
		code := e.admitted(r.authURL(l, oauth2.SetAuthURLParam("scope", "openid offline_access")), l)
		status, doc, hdr := e.tokenCall(clientID, secret, codeForm(code, l.verifier))
		refresh, _ := doc["refresh_token"].(string)
		if status != http.StatusOK || refresh == "" || hdr.Get("Cache-Control") != "no-store" {
			t.Fatalf("exchange: %d %v %v", status, doc, hdr)
		}
		if status, _, _ := e.tokenCall(clientID, secret, codeForm(code, l.verifier)); status == http.StatusOK {
			t.Fatal("the replayed code was taken")
		}
		if active := introspect(t, e, doc["access_token"].(string)); active != false {
			t.Fatalf("access token of a replayed code: active=%v", active)
		}
		if status, doc, _ := e.tokenCall(clientID, secret, refreshForm(refresh)); status != http.StatusBadRequest || doc["error"] != "invalid_grant" {
			t.Fatalf("refresh token of a replayed code: %d %v", status, doc)
		}
	})
	t.Run("a replayed code revokes the tokens its refresh token was rotated into", func(t *testing.T) {
		l := newLogin()
		code := e.admitted(r.authURL(l, oauth2.SetAuthURLParam("scope", "openid offline_access")), l)
		_, doc, _ := e.tokenCall(clientID, secret, codeForm(code, l.verifier))
		first, _ := doc["refresh_token"].(string)
		status, doc, _ := e.tokenCall(clientID, secret, refreshForm(first))
		rotated, _ := doc["refresh_token"].(string)
		access, _ := doc["access_token"].(string)
		if status != http.StatusOK || rotated == "" || access == "" {
			t.Fatalf("refresh: %d %v", status, doc)
		}
		if active := introspect(t, e, access); active != true {
			t.Fatalf("the rotated access token before the replay: active=%v", active)
		}
		if status, _, _ := e.tokenCall(clientID, secret, codeForm(code, l.verifier)); status == http.StatusOK {
			t.Fatal("the replayed code was taken")
		}
		if active := introspect(t, e, access); active != false {
			t.Fatalf("access token rotated from a replayed code's refresh token: active=%v", active)
		}
		if status, doc, _ := e.tokenCall(clientID, secret, refreshForm(rotated)); status != http.StatusBadRequest || doc["error"] != "invalid_grant" {
			t.Fatalf("refresh token rotated from a replayed code's: %d %v", status, doc)
		}
	})
	t.Run("revoking a refresh token revokes every access token of its grant", func(t *testing.T) {
		firstAccess, first := offlineTokens(t, e, r)
		status, doc, _ := e.tokenCall(clientID, secret, refreshForm(first))
		if status != http.StatusOK {
			t.Fatalf("refresh: %d %v", status, doc)
		}
		if status := revoke(t, e, doc["refresh_token"].(string)); status != http.StatusOK {
			t.Fatalf("revoke: %d", status)
		}
		for _, tok := range []string{firstAccess, doc["access_token"].(string)} {
			if active := introspect(t, e, tok); active != false {
				t.Fatalf("access token of a revoked refresh token's grant: active=%v", active)
			}
		}
	})
	t.Run("a refresh token is bound to its client, rotated, and reusing the old one revokes the grant", func(t *testing.T) {
		_, old := offlineTokens(t, e, r)
		refresh := func(id, sec, token string) (int, map[string]any, http.Header) {
			return e.tokenCall(id, sec, refreshForm(token))
		}
		if status, doc, _ := refresh(otherClient, otherSecret, old); status != http.StatusBadRequest || doc["error"] != "invalid_grant" {
			t.Fatalf("another client's refresh: %d %v", status, doc)
		}
		status, doc, hdr := refresh(clientID, secret, old)
		next, _ := doc["refresh_token"].(string)
		if status != http.StatusOK || next == "" || next == old || hdr.Get("Cache-Control") != "no-store" {
			t.Fatalf("refresh: %d %v %v", status, doc, hdr)
		}
		access, _ := doc["access_token"].(string)
		status, doc, _ = refresh(clientID, secret, next)
		newest, _ := doc["refresh_token"].(string)
		if status != http.StatusOK || newest == "" {
			t.Fatalf("the new refresh token: %d %v", status, doc)
		}
		// RFC 9700 §4.14.2: a rotated-out token presented again was stolen,
		// or its client lost track; every token of the grant is revoked.
		if status, doc, _ := refresh(clientID, secret, old); status != http.StatusBadRequest || doc["error"] != "invalid_grant" {
			t.Fatalf("the rotated-out refresh token: %d %v", status, doc)
		}
		if status, doc, _ := refresh(clientID, secret, newest); status != http.StatusBadRequest || doc["error"] != "invalid_grant" {
			t.Fatalf("the newest refresh token after a reuse: %d %v", status, doc)
		}
		if active := introspect(t, e, access); active != false {
			t.Fatalf("an access token of the grant after a reuse: active=%v", active)
		}
	})
	t.Run("of concurrent refreshes with one token one wins, and the others revoke its grant", func(t *testing.T) {
		_, token := offlineTokens(t, e, r)
		var wins atomic.Int64
		var winner atomic.Value
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				status, doc, _ := e.tokenCall(clientID, secret, refreshForm(token))
				if status == http.StatusOK {
					wins.Add(1)
					winner.Store(doc["refresh_token"].(string))
				}
			})
		}
		wg.Wait()
		if wins.Load() > 1 {
			t.Fatalf("%d of 10 concurrent refreshes with one token succeeded", wins.Load())
		}
		if w, ok := winner.Load().(string); ok {
			if status, doc, _ := e.tokenCall(clientID, secret, refreshForm(w)); status != http.StatusBadRequest {
				t.Fatalf("the winner's refresh token after 9 reuses: %d %v", status, doc)
			}
		}
	})
	t.Run("alg none and HS256 keyed with the public key are refused at userinfo and introspection", func(t *testing.T) {
		l := newLogin()
		code := e.admitted(r.authURL(l), l)
		_, doc, _ := e.tokenCall(clientID, secret, codeForm(code, l.verifier))
		real, _ := doc["access_token"].(string)
		parts := strings.Split(real, ".")
		var hdr map[string]any
		raw, _ := base64.RawURLEncoding.DecodeString(parts[0])
		_ = json.Unmarshal(raw, &hdr)
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		none, _ := json.Marshal(map[string]any{"alg": "none", "typ": "JWT", "kid": hdr["kid"]})
		forged := map[string]string{"alg none": base64.RawURLEncoding.EncodeToString(none) + "." + parts[1] + "."}
		for name, key := range publicKeyBytes(t, e) {
			signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: jose.JSONWebKey{Key: key, KeyID: hdr["kid"].(string)}},
				(&jose.SignerOptions{}).WithType("JWT"))
			if err != nil {
				t.Fatal(err)
			}
			jws, _ := signer.Sign(payload)
			forged["HS256 keyed with the public key as "+name], _ = jws.CompactSerialize()
		}
		check := func(token string) (userinfo int, active any) {
			req, _ := http.NewRequest(http.MethodGet, issuer+"/userinfo", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := e.noRedirects().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode, introspect(t, e, token)
		}
		if status, active := check(real); status != http.StatusOK || active != true {
			t.Fatalf("the real token: userinfo %d, active %v", status, active)
		}
		for name, token := range forged {
			if status, active := check(token); status == http.StatusOK || active == true {
				t.Errorf("%s: userinfo %d, active %v", name, status, active)
			}
		}
	})
}

// publicKeyBytes returns the JWKS's signing key in the encodings an HS256
// forger would key HMAC with: PEM and DER.
func publicKeyBytes(t *testing.T, e *env) map[string][]byte {
	t.Helper()
	resp, err := (&http.Client{Transport: e.transport()}).Get(issuer + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("JWKS: %v", err)
	}
	der, err := x509.MarshalPKIXPublicKey(set.Keys[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{"PEM": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), "DER": der}
}

// TestOIDCNegativeEveryPageRefusesFraming: clickjacking (RFC 9700 §4.16):
// no page Anteroom serves may be framed, be it the waiting page, a message,
// the dashboard, the logged-out page, a gate page or an error page.
func TestOIDCNegativeEveryPageRefusesFraming(t *testing.T) {
	e := negativeEnv(t)
	r := e.rp(clientID, secret, rpCallback)
	b := e.browser()
	waitURL := queue(t, b, r, newLogin())
	pages := map[string]string{
		"waiting page":             waitURL,
		"message: unknown request": issuer + "/wait/nonsense",
		"message: copied link":     waitURL,
		"dashboard sign-in":        issuer + "/admin/",
		"logged out":               issuer + "/logged-out",
		"gate: bad return address": issuer + "/gate/start?rd=https://evil.example/",
		"gate: foreign state":      issuer + "/gate/callback?state=x&code=y",
		"authorize error":          strings.Replace(r.authURL(newLogin()), "client_id="+clientID, "client_id=nobody", 1),
		"static file":              issuer + "/static/style.css",
	}
	for name, u := range pages {
		client := e.noRedirects()
		if name == "waiting page" {
			client = b
		}
		resp, body := visit(t, client, http.MethodGet, u)
		h := resp.Header
		if h.Get("X-Frame-Options") != "DENY" || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Errorf("%s (%d): X-Frame-Options %q, CSP %q", name, resp.StatusCode, h.Get("X-Frame-Options"), h.Get("Content-Security-Policy"))
		}
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			t.Errorf("%s: a redirect (%d), not a page", name, resp.StatusCode)
		}
		_ = body
	}
}

// A relying party that asked for response_mode=form_post reads the answer
// from a form post, errors included (OAuth 2.0 Form Post Response Mode):
// declining to queue again posts access_denied, and so does prompt=none
// for a visitor who would have to queue.
func TestRefusalsUseTheFormPostResponseMode(t *testing.T) {
	e := negativeEnv(t)
	r := e.rp(clientID, secret, rpCallback)
	b := e.browser()
	first := newLogin()
	waitURL := queue(t, b, r, first)
	e.advance(1)
	if resp, _ := visit(t, b, http.MethodPost, waitURL+"/continue"); codeFrom(t, resp, first) == "" {
		t.Fatal("no code for the first login")
	}
	e.clock.Advance(time.Second)
	formPost := oauth2.SetAuthURLParam("response_mode", "form_post")
	wantPost := func(what string, resp *http.Response, body, errCode, state string) {
		t.Helper()
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `action="`+rpCallback+`"`) ||
			!strings.Contains(body, `name="error" value="`+errCode+`"`) || !strings.Contains(body, `name="state" value="`+state+`"`) ||
			!strings.Contains(body, `name="iss" value="`+issuer+`"`) || // RFC 9207 §2
			resp.Header.Get("Location") != "" {
			t.Errorf("%s: %d Location=%q %.500s, want a page posting error=%s to %s", what, resp.StatusCode, resp.Header.Get("Location"), body, errCode, rpCallback)
		}
	}
	l := newLogin()
	resp, body := visit(t, b, http.MethodGet, r.authURL(l, oauth2.SetAuthURLParam("prompt", "login"), formPost))
	resp, body = visit(t, b, http.MethodPost, answerURL(t, body, resp.Request.URL.String()+"/decline"))
	wantPost("declining to queue again", resp, body, "access_denied", l.state)

	l = newLogin()
	resp, body = visit(t, e.browser(), http.MethodGet, r.authURL(l, oauth2.SetAuthURLParam("prompt", "none"), formPost))
	wantPost("prompt=none for a newcomer", resp, body, "login_required", l.state)
}
