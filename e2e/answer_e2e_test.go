package e2e

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// The waiting page answers the relying party itself: the admitted visitor
// goes straight back with the code, once.
func TestContinueAnswersWithTheCodeOnce(t *testing.T) {
	h := newHarness(t)
	v := h.visitor()
	waitURL := v.queue()
	h.advance(1)
	resp, _ := visit(t, v.browser, http.MethodPost, waitURL+"/continue")
	code := codeFrom(t, resp, v.login)
	if resp.StatusCode != http.StatusSeeOther || code == "" {
		t.Fatalf("continue: %d to %q, want 303 to the relying party with a code", resp.StatusCode, resp.Header.Get("Location"))
	}
	// A second click (or the page's own retry) cannot mint another code.
	resp, body := visit(t, v.browser, http.MethodPost, waitURL+"/continue")
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "You are through already") {
		t.Fatalf("second continue: %d %.200s", resp.StatusCode, body)
	}
	if _, err := v.redeem(code); err != nil {
		t.Fatalf("exchange: %v", err)
	}
}

// response_mode=form_post gets a page that posts the code to the relying
// party by itself, which the waiting room's Content-Security-Policy allows
// (the library's own page, with an inline onload handler, it blocks).
func TestFormPostResponseModeWorksUnderTheCSP(t *testing.T) {
	e := newEnv(t, false, nil)
	e.start()
	r := e.rp(clientID, secret, rpCallback)
	b := e.browser()
	l := newLogin()
	resp, _ := visit(t, b, http.MethodGet, r.authURL(l, oauth2.SetAuthURLParam("response_mode", "form_post")))
	waitURL := resp.Request.URL.String()
	e.advance(1)
	resp, body := visit(t, b, http.MethodPost, waitURL+"/continue")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("continue: %d %.300s", resp.StatusCode, body)
	}
	field := func(name string) string {
		m := regexp.MustCompile(`name="` + name + `" value="([^"]*)"`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no %s in the form: %s", name, body)
		}
		return m[1]
	}
	if !strings.Contains(body, `action="`+rpCallback+`"`) || field("state") != l.state {
		t.Fatalf("form: %s", body)
	}
	script := regexp.MustCompile(`<script>([^<]*)</script>`).FindStringSubmatch(body)
	if script == nil {
		t.Fatalf("no script: %s", body)
	}
	sum := sha256.Sum256([]byte(script[1]))
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'") ||
		!strings.Contains(csp, "form-action https://"+rpHost) || strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("Content-Security-Policy %q does not allow exactly the page's script and the relying party's origin", csp)
	}
	if _, err := r.oauth.Exchange(r.ctx, field("code"), oauth2.VerifierOption(l.verifier)); err != nil {
		t.Fatalf("exchange the posted code: %v", err)
	}
}
