package oidc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"sync/atomic"
)

// Workarounds for the OIDC library. Everything Anteroom does only because
// of how zitadel/oidc (v3, github.com/zitadel/oidc/v3 v3.51.17, package op)
// behaves is listed here: the upstream behaviour, the function that
// behaves so, what Anteroom does instead and where, and the test that
// fails when the workaround goes. When the library changes, this is the
// list to check. The first two live in this file; the others replace a
// whole endpoint or a storage step and live with it.
//
//  1. Storage errors become invalid_grant. op.AuthRequestByCode and
//     op.RefreshTokenRequestByRefreshToken wrap any error of the storage as
//     invalid_grant, which a relying party treats as final; op.AuthRequestError
//     (the callback) answers 400 with the error's text. Storage marks a
//     store failure with down, and guardOutage answers 503
//     temporarily_unavailable with Retry-After instead (below).
//     TestRedisOutageAnswers503AndRecoversWithoutRestart,
//     TestTokenEndpointDuringAnOutageAsksToRetry,
//     TestRefreshRetriedAfterAStoreFailureKeepsTheGrant.
//  2. The form_post page needs inline script. op.AuthResponseFormPost
//     (form_post.html.tmpl) submits from an inline onload attribute, which
//     Anteroom's Content-Security-Policy blocks. formPost (below) allows its
//     own script by hash. TestFormPostResponseModeWorksUnderTheCSP.
//  3. Refused authorization requests: plain-text pages, ERROR logs, no
//     form_post, no iss. op.Authorize answers through op.AuthRequestError,
//     which writes the error's text as the page when it cannot redirect,
//     logs a missing client_id or redirect_uri as server_error, and
//     redirects where the relying party asked for form_post. Provider.authorize
//     and authError (authorize.go) answer as the request asked, with iss,
//     and show SetErrorPage's page to a person. The library's callback,
//     kept for old links, is held in a bufferedWriter so that iss can be
//     added to its redirect (withIss, Provider.serve).
//     TestOIDCNegativeAuthorizationRequests,
//     TestGarbageAuthorizationRequestsAreLoggedOnceAtInfo,
//     TestRefusalsUseTheFormPostResponseMode,
//     TestAuthorizationResponsesCarryIss.
//  4. Unsupported response types are unauthorized_client.
//     op.ValidateAuthReqResponseType refuses a type the client does not
//     list with unauthorized_client; client.ResponseTypes lists them all,
//     and CreateAuthRequest (authrequest.go) answers
//     unsupported_response_type (RFC 6749 §4.1.2.1).
//     TestOIDCNegativeAuthorizationRequests, TestDiscoveryIsHonest.
//  5. Client authentication after the code lookup, and in several error
//     shapes. op.ClientIDFromRequest and op.AuthorizeCodeClient look the code
//     up before they check the client, and answer some failures as plain
//     text or unauthorized_client. authenticateClient (clientauth.go)
//     authenticates first, as RFC 6749 §2.3 and §5.2 say.
//     TestClientAuthFailuresAreInvalidClient,
//     TestPublicClientNamedInTheBasicHeaderRedeems.
//  6. A code must survive a failed check. op.AuthorizeCodeClient checks
//     PKCE and the client after Storage.AuthRequestByCode, so
//     AuthRequestByCode only looks, and the code is spent in mint
//     (code.go, token.go). TestOIDCNegativeTokenEndpoint,
//     TestConcurrentRedemptionsOfOneCode.
//  7. A reused refresh token is found before its client is checked.
//     op.ValidateRefreshTokenRequest checks the client after
//     Storage.TokenRequestByRefreshToken, so the grant is revoked later, in
//     CreateAccessAndRefreshTokens (refresh.go), and only for the token's
//     own client. TestAnotherClientCannotRevokeAConfidentialClientsGrant.
//  8. Revocation names tokens two ways. op.Revoke passes RevokeToken the
//     id GetRefreshTokenInfo gave, or else the token as presented;
//     refresh token ids carry refreshTokenKeyPrefix to tell them apart
//     (revocation.go). TestRevokeWantsTheTokenNotItsStorageKey.
//  9. Grants the library routes but Anteroom does not offer. op.Exchange
//     routes the JWT-bearer grant and others to handlers that fail later
//     with other errors; checkGrantType (clientauth.go) answers
//     unsupported_grant_type. TestDiscoveryIsHonest.
// 10. Userinfo errors without WWW-Authenticate. op.Userinfo answers a
//     missing token with a plain-text 401 and a revoked one with 403 {};
//     Provider.userinfo (userinfo.go) answers as RFC 6750 §3 says.
//     TestUserinfoErrorsFollowRFC6750.
// 11. Discovery advertises what the router routes. op.CreateDiscoveryConfig
//     lists the implicit grant, id_token response types, the device
//     endpoint and private_key_jwt; Provider.discovery (discovery.go) lists
//     what Anteroom answers, and Provider.serve answers
//     /device_authorization, which op.CreateRouter routes anyway, with 404.
//     TestDiscoveryIsHonest.
// 12. CORS with credentials for any origin. op's default CORS options
//     reflect every Origin with credentials; NewProvider sets its own with
//     op.WithCORSOptions, and Provider.serve applies them to the endpoints
//     it answers without the library's router. TestAPIEndpointsKeepCORS.
// 13. The JWKS without Cache-Control. op.Keys sends none, and caches guess;
//     Provider.serve sets max-age from the keys' publication window.
//     TestSigningKeysRotateAcrossInstancesWithOverlap.

// Workaround 1: storage failures are not OAuth errors.
//
// The library turns every storage error into an OAuth error of its own
// choosing (invalid_grant at the token endpoint, a 400 with the error's text
// at the callback). A relying party treats invalid_grant as final, so a
// Redis outage would throw away logins and refresh tokens. Storage marks
// infrastructure failures on the request's context instead, and the
// provider's handler replaces whatever the library wrote with a 503 the
// client will retry.

type outageKey struct{}

type outage struct{ hit atomic.Bool }

// down marks the request as failed by the store and returns err.
func down(ctx context.Context, err error) error {
	if o, ok := ctx.Value(outageKey{}).(*outage); ok {
		o.hit.Store(true)
	}
	return err
}

// bufferedWriter holds a response back until the handler is done, so it
// can be replaced. Token endpoint responses are small.
type bufferedWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header { return b.header }
func (b *bufferedWriter) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}
func (b *bufferedWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

// guardOutage runs h with an outage marker; if the store failed, the client
// gets 503 temporarily_unavailable with Retry-After and the details go to
// the log only.
func guardOutage(w http.ResponseWriter, r *http.Request, h http.Handler) {
	o := &outage{}
	buf := &bufferedWriter{header: w.Header()}
	h.ServeHTTP(buf, r.WithContext(context.WithValue(r.Context(), outageKey{}, o)))
	if o.hit.Load() {
		slog.WarnContext(r.Context(), "store unavailable", "path", r.URL.Path)
		for k := range w.Header() {
			if k != "Cache-Control" && k != "Pragma" {
				w.Header().Del(k)
			}
		}
		w.Header().Set("Retry-After", "5")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]string{
			"error":             "temporarily_unavailable",
			"error_description": "the waiting room cannot reach its store; try again shortly",
		})
		return
	}
	buf.flushTo(w)
}

// flushTo writes the held-back response to w (whose header map the buffer
// shares).
func (b *bufferedWriter) flushTo(w http.ResponseWriter) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	w.WriteHeader(b.status)
	_, _ = w.Write(b.body.Bytes())
}

// Workaround 2: a form_post page the Content-Security-Policy lets run.
//
// The library's form_post page submits itself from an inline onload
// attribute, which Anteroom's Content-Security-Policy (no inline script)
// blocks: the visitor would be left on a blank page. This one allows exactly
// its own script, by hash, and posts only to the relying party's origin; a
// button does the same without JavaScript.

const formPostScript = `document.forms[0].submit();`

var (
	formPostCSP = func() string {
		sum := sha256.Sum256([]byte(formPostScript))
		return "default-src 'none'; script-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; frame-ancestors 'none'; base-uri 'none'"
	}()
	formPostPage = template.Must(template.New("form_post").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Continue</title></head>
<body><form method="post" action="{{.Action}}">{{range .Fields}}{{if .Value}}
<input type="hidden" name="{{.Name}}" value="{{.Value}}">{{end}}{{end}}
<noscript><button type="submit">Continue</button></noscript>
</form><script>` + formPostScript + `</script></body></html>
`))
)

// formField is a parameter of a form_post response; an empty one is left
// out.
type formField struct{ Name, Value string }

// formPost answers with the authorization response's fields (the code and
// state, or an error) as an auto-submitting form to redirectURI
// (response_mode=form_post).
func (p *Provider) formPost(w http.ResponseWriter, redirectURI string, fields ...formField) error {
	u, err := url.Parse(redirectURI)
	if err != nil {
		return err
	}
	var page bytes.Buffer
	if err := formPostPage.Execute(&page, struct {
		Action string
		Fields []formField
	}{redirectURI, fields}); err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", formPostCSP+"; form-action "+u.Scheme+"://"+u.Host)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(page.Bytes())
	return nil
}
