package operator

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// originHeaders are the headers a browser says where a request comes from
// by: Sec-Fetch-Site (Fetch Metadata), and Origin (RFC 6454 §7), which
// browsers without Sec-Fetch-Site send on a cross-origin POST.
type originHeaders struct {
	name           string
	site, origin   string
	host           string // the Host the request arrives with ("": the issuer's)
	crossOriginish bool   // refused for a change the cookie authorises
}

var originCases = []originHeaders{
	{name: "no header (no browser, or one older than both)"},
	{name: "same-origin", site: "same-origin"},
	{name: "typed by the user", site: "none"},
	{name: "same-site, another origin", site: "same-site", crossOriginish: true},
	{name: "cross-site", site: "cross-site", crossOriginish: true},
	{name: "cross-site, another Origin", site: "cross-site", origin: "https://evil.example", crossOriginish: true},
	{name: "old browser, another Origin", origin: "https://evil.example", crossOriginish: true},
	{name: "old browser, our Origin", origin: testIssuer},
	{name: "old browser, our Origin through a proxy that rewrites Host", origin: testIssuer, host: "anteroom-upstream:8080"},
	{name: "old browser, another Origin through that proxy", origin: "https://evil.example", host: "anteroom-upstream:8080", crossOriginish: true},
}

func (c originHeaders) apply(r *http.Request) {
	if c.site != "" {
		r.Header.Set("Sec-Fetch-Site", c.site)
	}
	if c.origin != "" {
		r.Header.Set("Origin", c.origin)
	}
	if c.host != "" {
		r.Host = c.host
	}
}

// A cookie-authorised change to a room, signing in and signing out must
// come from the dashboard's own origin, by net/http's CrossOriginProtection:
// Sec-Fetch-Site same-origin or none, or without it an Origin that is the
// request's host or the issuer's. Reads and bearer-token calls are not
// checked: another origin cannot read an answer, and a browser never adds
// an Authorization header by itself.
func TestCookieChangesMustComeFromTheDashboardsOrigin(t *testing.T) {
	h, _ := signInSite(t)
	signedIn := signIn(h, "203.0.113.1", signInToken)
	if signedIn.Code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", signedIn.Code)
	}
	cookie := signedIn.Result().Cookies()[0]
	call := func(method, path, body string, c originHeaders, header ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, testIssuer+path, strings.NewReader(body))
		r.AddCookie(cookie)
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		c.apply(r)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for _, c := range originCases {
		t.Run(c.name, func(t *testing.T) {
			// Sign-in.
			r := httptest.NewRequest(http.MethodPost, testIssuer+"/admin/login", strings.NewReader(url.Values{"token": {signInToken}}.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			c.apply(r)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if c.crossOriginish {
				if w.Code != http.StatusForbidden || len(w.Result().Cookies()) != 0 || !strings.Contains(w.Body.String(), "Sign in from this site&#39;s own page.") {
					t.Errorf("sign-in: %d %v %.200s, want 403 and no cookie", w.Code, w.Result().Cookies(), w.Body)
				}
			} else if w.Code != http.StatusSeeOther || len(w.Result().Cookies()) != 1 {
				t.Errorf("sign-in: %d %v, want 303 and the cookie", w.Code, w.Result().Cookies())
			}

			// A change with the cookie.
			w = call(http.MethodPatch, "/admin/v1/rooms/launch", `{"rate_per_minute":42}`, c)
			if want := map[bool]int{false: http.StatusOK, true: http.StatusForbidden}[c.crossOriginish]; w.Code != want {
				t.Errorf("PATCH with the cookie: %d %s, want %d", w.Code, w.Body, want)
			}
			if w := call(http.MethodPost, "/admin/v1/rooms/launch/advance", `{"count":1}`, c); c.crossOriginish && w.Code != http.StatusForbidden {
				t.Errorf("advance with the cookie: %d, want 403", w.Code)
			}
			// A read, and a bearer call, are not checked.
			if w := call(http.MethodGet, "/admin/v1/rooms/launch", "", c); w.Code != http.StatusOK {
				t.Errorf("GET with the cookie: %d", w.Code)
			}
			if w := call(http.MethodPatch, "/admin/v1/rooms/launch", `{"rate_per_minute":60}`, c, "Authorization", "Bearer "+signInToken); w.Code != http.StatusOK {
				t.Errorf("PATCH with the bearer token: %d %s", w.Code, w.Body)
			}

			// Sign-out.
			w = call(http.MethodPost, "/admin/logout", "", c)
			if want := map[bool]int{false: http.StatusSeeOther, true: http.StatusForbidden}[c.crossOriginish]; w.Code != want {
				t.Errorf("sign-out: %d, want %d", w.Code, want)
			}
		})
	}
}
