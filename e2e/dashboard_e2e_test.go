package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"
)

// operatorBrowser is an operator's browser on the dashboard: it keeps cookies and
// shows each redirect instead of following it.
type operatorBrowser struct {
	t *testing.T
	c *http.Client
}

func (e *env) operator() *operatorBrowser {
	jar, _ := cookiejar.New(nil)
	return &operatorBrowser{t: e.t, c: &http.Client{Jar: jar, Transport: e.transport(),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (o *operatorBrowser) do(req *http.Request) (*http.Response, string) {
	o.t.Helper()
	resp, err := o.c.Do(req)
	if err != nil {
		o.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (o *operatorBrowser) get(path string) (*http.Response, string) {
	req, _ := http.NewRequest(http.MethodGet, issuer+path, nil)
	return o.do(req)
}

// signIn posts the login form, as the browser does from the sign-in page.
func (o *operatorBrowser) signIn(token string, header ...string) (*http.Response, string) {
	o.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, issuer+"/admin/login", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return o.do(req)
}

// api makes an admin API call the way dashboard.js does (call()) from a
// browser: the cookie, JSON, and Sec-Fetch-Site: same-origin; header adds
// or overrides headers.
func (o *operatorBrowser) api(method, path, body string, header ...string) (int, map[string]any) {
	o.t.Helper()
	req, _ := http.NewRequest(method, issuer+"/admin/v1"+path, strings.NewReader(body))
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, text := o.do(req)
	var doc map[string]any
	if err := json.Unmarshal([]byte(text), &doc); err != nil {
		o.t.Fatalf("%s %s: %d, not JSON: %.200s", method, path, resp.StatusCode, text)
	}
	return resp.StatusCode, doc
}

func adminCookie(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == "anteroom_admin" {
			return c
		}
	}
	return nil
}

func isLoginPage(body string) bool {
	return strings.Contains(body, `action="`+issuer+`/admin/login"`) && strings.Contains(body, `name="token"`) &&
		!strings.Contains(body, "dashboard.js")
}

func isDashboard(body string) bool {
	return strings.Contains(body, `data-api="`+issuer+`/admin/v1"`) && strings.Contains(body, `/static/dashboard.js"`) &&
		!strings.Contains(body, `name="token"`)
}

func TestDashboardSignInAndOut(t *testing.T) {
	e := newEnv(t, false, nil)
	e.start()
	o := e.operator()

	resp, body := o.get("/admin/")
	if resp.StatusCode != http.StatusOK || !isLoginPage(body) {
		t.Fatalf("without a cookie: %d %.300s", resp.StatusCode, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Fatalf("CSP: %q", csp)
	}
	if resp, _ := o.get("/admin"); resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != issuer+"/admin/" {
		t.Fatalf("/admin: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, path := range []string{"/static/dashboard.js", "/static/dashboard.css"} {
		if resp, _ := o.get(path); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
	}

	// A wrong token: the form again, with an error, and no cookie.
	for _, wrong := range []string{"", "admin-token-012345678", adminToken + "0", strings.ToUpper(adminToken)} {
		resp, body = o.signIn(wrong)
		if resp.StatusCode != http.StatusUnauthorized || !isLoginPage(body) || !strings.Contains(body, "not the admin token") || adminCookie(resp) != nil {
			t.Fatalf("token %q: %d %v %.300s", wrong, resp.StatusCode, resp.Cookies(), body)
		}
	}
	if _, body := o.get("/admin/"); !isLoginPage(body) {
		t.Fatal("a wrong token signed in")
	}
	// The right token from another site's form: refused.
	if resp, _ := o.signIn(adminToken, "Sec-Fetch-Site", "cross-site"); resp.StatusCode != http.StatusForbidden || adminCookie(resp) != nil {
		t.Fatalf("cross-site sign-in: %d %v", resp.StatusCode, resp.Cookies())
	}

	// The right token: a sealed cookie, then the dashboard.
	resp, _ = o.signIn(adminToken)
	c := adminCookie(resp)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != issuer+"/admin/" || c == nil {
		t.Fatalf("sign-in: %d %s %v", resp.StatusCode, resp.Header.Get("Location"), resp.Cookies())
	}
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/admin/" || c.Secure ||
		c.MaxAge != int((12*time.Hour).Seconds()) || strings.Contains(c.Value, adminToken) {
		t.Fatalf("cookie: %+v", c)
	}
	if resp, body := o.get("/admin/"); resp.StatusCode != http.StatusOK || !isDashboard(body) || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("dashboard: %d %.300s", resp.StatusCode, body)
	}

	// A cookie that is not ours (here the raw token) is no session.
	forger := e.operator()
	u, _ := url.Parse(issuer + "/admin/")
	forger.c.Jar.SetCookies(u, []*http.Cookie{{Name: "anteroom_admin", Value: adminToken, Path: "/admin/"}})
	if _, body := forger.get("/admin/"); !isLoginPage(body) || !strings.Contains(body, "session has ended") {
		t.Fatalf("a forged cookie: %.300s", body)
	}
	if code, _ := forger.api(http.MethodGet, "/rooms", ""); code != http.StatusUnauthorized {
		t.Fatalf("a forged cookie on the API: %d", code)
	}

	// Twelve hours later the session has ended.
	e.clock.Advance(12*time.Hour + time.Second)
	if _, body := o.get("/admin/"); !isLoginPage(body) {
		t.Fatal("the session outlived 12 hours")
	}
	if code, _ := o.api(http.MethodGet, "/rooms", ""); code != http.StatusUnauthorized {
		t.Fatalf("an expired session on the API: %d", code)
	}

	// Signing out clears the cookie.
	o.signIn(adminToken)
	req, _ := http.NewRequest(http.MethodPost, issuer+"/admin/logout", nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, _ = o.do(req)
	if c := adminCookie(resp); resp.StatusCode != http.StatusSeeOther || c == nil || c.MaxAge >= 0 || c.Path != "/admin/" {
		t.Fatalf("sign-out: %d %v", resp.StatusCode, resp.Cookies())
	}
	if _, body := o.get("/admin/"); !isLoginPage(body) {
		t.Fatal("still signed in after signing out")
	}
	if code, _ := o.api(http.MethodGet, "/rooms", ""); code != http.StatusUnauthorized {
		t.Fatalf("the API after signing out: %d", code)
	}
}

func TestDashboardCookieDrivesTheAdminAPIFromItsOrigin(t *testing.T) {
	e := newEnv(t, false, nil)
	e.start()
	r := e.rp(clientID, secret, rpCallback)
	for range 3 {
		queue(t, e.browser(), r, newLogin())
	}
	o := e.operator()
	if code, _ := o.api(http.MethodGet, "/rooms", ""); code != http.StatusUnauthorized {
		t.Fatalf("the API before signing in: %d", code)
	}
	if resp, _ := o.signIn(adminToken); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}

	// The cookie reads the rooms, with the dashboard's figures.
	code, doc := o.api(http.MethodGet, "/rooms", "")
	rooms, _ := doc["rooms"].([]any)
	if code != http.StatusOK || len(rooms) != 1 {
		t.Fatalf("rooms: %d %v", code, doc)
	}
	room := rooms[0].(map[string]any)
	if room["id"] != roomID || room["waiting"] != float64(3) || room["tail"] != float64(3) || room["abandoned"] != float64(0) {
		t.Fatalf("room: %v", room)
	}
	if code, _ := o.api(http.MethodGet, "/rooms/"+roomID, ""); code != http.StatusOK {
		t.Fatalf("a read: %d", code)
	}

	// "Set rate" on the form: the request dashboard.js sends.
	code, doc = o.api(http.MethodPatch, "/rooms/"+roomID, `{"rate_per_minute":1200}`)
	if pol, _ := doc["policy"].(map[string]any); code != http.StatusOK || pol["rate_per_minute"] != float64(1200) {
		t.Fatalf("set rate: %d %v", code, doc)
	}
	rate := func() any { return e.roomStatus()["policy"].(map[string]any)["rate_per_minute"] }
	if got := rate(); got != float64(1200) {
		t.Fatalf("rate after the dashboard set it: %v", got)
	}

	// From another origin, the cookie changes nothing (the cases in full:
	// operator.TestCookieChangesMustComeFromTheDashboardsOrigin).
	for _, c := range []struct {
		name   string
		header []string
	}{
		{"cross-site", []string{"Sec-Fetch-Site", "cross-site"}},
		{"same-site", []string{"Sec-Fetch-Site", "same-site"}},
		{"a form of another site, from a browser without Sec-Fetch-Site", []string{"Sec-Fetch-Site", "", "Origin", "https://evil.example", "Content-Type", "application/x-www-form-urlencoded"}},
	} {
		code, doc := o.api(http.MethodPatch, "/rooms/"+roomID, `{"rate_per_minute":5}`, c.header...)
		if code != http.StatusForbidden || doc["error"] != "forbidden" {
			t.Fatalf("PATCH with the cookie, %s: %d %v", c.name, code, doc)
		}
		if code, _ := o.api(http.MethodPost, "/rooms/"+roomID+"/advance", `{"count":1}`, c.header...); code != http.StatusForbidden {
			t.Fatalf("advance with the cookie, %s: %d", c.name, code)
		}
	}
	if got := rate(); got != float64(1200) {
		t.Fatalf("a refused PATCH changed the rate to %v", got)
	}
	if got := e.serving(); got != 0 {
		t.Fatalf("a refused advance moved serving to %d", got)
	}

	// Advance, capacity and state, as the controls send them.
	if code, doc := o.api(http.MethodPost, "/rooms/"+roomID+"/advance", `{"count":2}`); code != http.StatusOK || doc["serving"] != float64(2) || doc["waiting"] != float64(1) {
		t.Fatalf("advance: %d %v", code, doc)
	}
	if code, doc := o.api(http.MethodPatch, "/rooms/"+roomID, `{"max_active":50}`); code != http.StatusOK || doc["policy"].(map[string]any)["max_active"] != float64(50) {
		t.Fatalf("set capacity: %d %v", code, doc)
	}
	for _, state := range []string{"paused", "open", "closed", "open"} {
		if code, doc := o.api(http.MethodPatch, "/rooms/"+roomID, `{"state":"`+state+`"}`); code != http.StatusOK || doc["state"] != state {
			t.Fatalf("state %s: %d %v", state, code, doc)
		}
	}
	if code, doc := o.api(http.MethodPatch, "/rooms/"+roomID, `{"rate_per_minute":-1}`); code != http.StatusBadRequest {
		t.Fatalf("a bad rate through the dashboard: %d %v", code, doc)
	}

	// The bearer token works as before, from anywhere; a wrong one is
	// refused even beside a valid cookie.
	if code, doc := e.admin(http.MethodPatch, "/admin/v1/rooms/"+roomID, `{"rate_per_minute":600}`); code != http.StatusOK {
		t.Fatalf("bearer PATCH: %d %v", code, doc)
	}
	if code, _ := o.api(http.MethodPatch, "/rooms/"+roomID, `{"rate_per_minute":7}`, "Authorization", "Bearer wrong-token-0123456789"); code != http.StatusUnauthorized {
		t.Fatalf("a wrong bearer token beside the cookie: %d", code)
	}
	if got := rate(); got != float64(600) {
		t.Fatalf("rate: %v", got)
	}
}

func TestDashboardHistoryFillsEveryTenSeconds(t *testing.T) {
	e := newEnv(t, false, nil)
	e.start()
	o := e.operator()
	if code, _ := o.api(http.MethodGet, "/rooms/"+roomID+"/history", ""); code != http.StatusUnauthorized {
		t.Fatalf("history without a session: %d", code)
	}
	o.signIn(adminToken)

	type sample struct {
		T         int64  `json:"t"`
		Waiting   int64  `json:"waiting"`
		Serving   int64  `json:"serving"`
		Tail      int64  `json:"tail"`
		Admitted  *int64 `json:"admitted"`
		Abandoned int64  `json:"abandoned"`
	}
	type historyDoc struct {
		Room            string   `json:"room"`
		Now             int64    `json:"now"`
		IntervalSeconds int64    `json:"interval_seconds"`
		Samples         []sample `json:"samples"`
	}
	read := func() historyDoc {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, issuer+"/admin/v1/rooms/"+roomID+"/history", nil)
		resp, body := o.do(req)
		var h historyDoc
		if err := json.Unmarshal([]byte(body), &h); resp.StatusCode != http.StatusOK || err != nil {
			t.Fatalf("history: %d %v %.300s", resp.StatusCode, err, body)
		}
		return h
	}
	// waitFor polls until the instance's sampler, which checks the clock
	// every half second, has taken n samples.
	waitFor := func(n int) historyDoc {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			h := read()
			if len(h.Samples) >= n {
				return h
			}
			if time.Now().After(deadline) {
				t.Fatalf("history has %d samples, want %d: %+v", len(h.Samples), n, h)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// The first sample is the instance's start; then five visitors queue.
	first := waitFor(1).Samples[0]
	r := e.rp(clientID, secret, rpCallback)
	for range 5 {
		queue(t, e.browser(), r, newLogin())
	}
	for i := 1; i <= 3; i++ {
		e.advance(i) // serving: 1, 3, 6 (but never past the tail, 5)
		e.clock.Advance(10 * time.Second)
		waitFor(i + 1)
	}
	h := read()
	if h.Room != roomID || h.IntervalSeconds != 10 || h.Now != e.clock.Now().Unix() || len(h.Samples) != 4 {
		t.Fatalf("history: %+v", h)
	}
	if first.Admitted != nil || first.Serving != 0 || first.Tail != 0 || h.Samples[0] != first {
		t.Fatalf("first sample: %+v", first)
	}
	wantServing, wantTail := []int64{0, 1, 3, 5}, []int64{0, 5, 5, 5}
	for i, s := range h.Samples {
		if s.Serving != wantServing[i] || s.Tail != wantTail[i] || s.Waiting != wantTail[i]-wantServing[i] {
			t.Fatalf("sample %d: %+v, want serving %d and tail %d", i, s, wantServing[i], wantTail[i])
		}
		if i > 0 && (s.T-h.Samples[i-1].T != 10 || s.Admitted == nil || *s.Admitted != wantServing[i]-wantServing[i-1]) {
			t.Fatalf("sample %d: %+v after %+v", i, s, h.Samples[i-1])
		}
	}

	// An hour and more later, the old samples have aged out.
	e.clock.Advance(time.Hour)
	h = waitFor(1)
	if len(h.Samples) != 1 || h.Samples[0].T != e.clock.Now().Unix() {
		t.Fatalf("after an hour: %+v", h.Samples)
	}
	if code, _ := o.api(http.MethodGet, "/rooms/nowhere/history", ""); code != http.StatusNotFound {
		t.Fatalf("unknown room: %d", code)
	}
}

// TestDashboardInABrowser signs in to the dashboard in headless Chromium
// under the real CSP, and uses its controls: the page must show the room
// and its chart, ask before every change, change nothing when the operator
// says no, and raise no script error or CSP violation. With
// ANTEROOM_SCREENSHOTS=DIR it saves a screenshot there.
func TestDashboardInABrowser(t *testing.T) {
	chromium := requireChromium(t)
	if err := redisServer.FlushAll(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	cfg := testConfig()
	cfg.Issuer = base
	cfg.Rooms[0].Name = "Product launch"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	clock := newClock()
	serveApp(t, cfg, ln, clock.Now)

	bearer := func(method, path, body string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(method, base+"/admin/v1/rooms/"+roomID+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var doc map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %d %v", method, path, resp.StatusCode, err)
		}
		return doc
	}
	// Four visitors queue, and the history gets a few samples: the clock
	// moves 10 s at a time, and the sampler looks every half second.
	for range 4 {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
		q := url.Values{"client_id": {clientID}, "redirect_uri": {rpCallback}, "response_type": {"code"}, "scope": {"openid"},
			"state": {rand22()}, "nonce": {rand22()}, "code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())},
			"code_challenge_method": {"S256"}}
		resp, err := c.Get(base + "/authorize?" + q.Encode())
		if err != nil || !strings.Contains(resp.Request.URL.Path, "/wait/") {
			t.Fatalf("visitor: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	for i := range 3 {
		if i > 0 {
			bearer(http.MethodPost, "/advance", `{"count":1}`)
		}
		clock.Advance(10 * time.Second)
		deadline := time.Now().Add(10 * time.Second)
		for len(bearer(http.MethodGet, "/history", "")["samples"].([]any)) < i+2 {
			if time.Now().After(deadline) {
				t.Fatal("no history samples")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	ctx := browser(t, chromium)
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var dialogs, problems []string
	var refuse atomic.Bool
	go func() {
		for ev, err := range chromedp.Events(ctx, page.JavascriptDialogOpening) {
			if err != nil {
				return
			}
			accept := !refuse.Load() // decided before the test can see the dialog
			mu.Lock()
			dialogs = append(dialogs, ev.Message)
			mu.Unlock()
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: accept})
		}
	}()
	go func() {
		for ev, err := range chromedp.Events(ctx, runtime.ExceptionThrown) {
			if err != nil {
				return
			}
			mu.Lock()
			problems = append(problems, "exception: "+ev.ExceptionDetails.Text+" "+ev.ExceptionDetails.URL)
			mu.Unlock()
		}
	}()
	go func() {
		for ev, err := range chromedp.Events(ctx, cdplog.EntryAdded) {
			if err != nil {
				return
			}
			if e := ev.Entry; e.Source == cdplog.EntrySourceSecurity || e.Source == cdplog.EntrySourceJavascript ||
				strings.Contains(e.Text, "Content Security Policy") {
				mu.Lock()
				problems = append(problems, string(e.Source)+": "+e.Text)
				mu.Unlock()
			}
		}
	}()
	poll := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
			body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("%s: %v\ndialogs: %q\nproblems: %q\npage: %.1500s", what, err, dialogs, problems, body)
		}
	}
	lastDialog := func() string {
		mu.Lock()
		defer mu.Unlock()
		if len(dialogs) == 0 {
			return ""
		}
		return dialogs[len(dialogs)-1]
	}
	fieldIs := func(name, want string) string {
		return fmt.Sprintf(`(document.querySelector('[data-field=%q]') || {}).textContent === %q`, name, want)
	}

	// Sign in: a wrong token first.
	if err := chromedp.Do(ctx,
		chromedp.EmulateViewport(1280, 1000),
		chromedp.Navigate(base+"/admin/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), "not-the-token-0123456789"),
		chromedp.Submit(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("login-error")),
		chromedp.SendKeys(chromedp.ID("token"), adminToken),
		chromedp.Submit(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.CSS(".room")),
	); err != nil {
		t.Fatalf("sign in: %v", err)
	}
	poll("the room's figures", fieldIs("waiting", "2")+" && "+fieldIs("serving", "2")+" && "+fieldIs("tail", "4")+
		" && "+fieldIs("name", "Product launch")+" && "+fieldIs("state", "open"))
	poll("the chart", `document.querySelectorAll('.chart svg path.waiting').length === 2 && !!document.querySelector('.chart svg path.admitted')`)
	screenshot(t, ctx, "dashboard.png")

	// Set the rate through the form.
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`form[data-form="rate"] input`), ""),
		chromedp.SendKeys(chromedp.CSS(`form[data-form="rate"] input`), "1234"),
		chromedp.Click(chromedp.CSS(`form[data-form="rate"] button`)),
	); err != nil {
		t.Fatal(err)
	}
	poll("the rate's confirmation", `(document.getElementById("flash") || {}).textContent.includes("rate set to")`)
	if d := lastDialog(); !strings.Contains(d, "admission rate of Product launch") {
		t.Fatalf("confirmation asked: %q", d)
	}
	if rate := bearer(http.MethodGet, "", "")["policy"].(map[string]any)["rate_per_minute"]; rate != float64(1234) {
		t.Fatalf("rate after the form: %v", rate)
	}

	// Pause, then say no to closing: the room stays paused.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[data-action="pause"]`))); err != nil {
		t.Fatal(err)
	}
	poll("paused", fieldIs("state", "paused"))
	refuse.Store(true)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[data-action="close"]`))); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.HasPrefix(lastDialog(), "Close Product launch?") {
		if time.Now().After(deadline) {
			t.Fatalf("closing asked nothing: %q", lastDialog())
		}
		time.Sleep(20 * time.Millisecond)
	}
	refuse.Store(false)
	if state := bearer(http.MethodGet, "", "")["state"]; state != "paused" {
		t.Fatalf("a refused confirmation changed the state to %v", state)
	}

	// Advance by 2 and resume.
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`form[data-form="advance"] input`), ""),
		chromedp.SendKeys(chromedp.CSS(`form[data-form="advance"] input`), "2"),
		chromedp.Click(chromedp.CSS(`form[data-form="advance"] button`)),
	); err != nil {
		t.Fatal(err)
	}
	poll("advanced", fieldIs("serving", "4")+" && "+fieldIs("waiting", "0"))
	// The page handled the refused close before this advance: it did not
	// close the room.
	if state := bearer(http.MethodGet, "", "")["state"]; state != "paused" {
		t.Fatalf("a refused confirmation changed the state to %v", state)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[data-action="resume"]`))); err != nil {
		t.Fatal(err)
	}
	poll("resumed", fieldIs("state", "open"))
	if doc := bearer(http.MethodGet, "", ""); doc["state"] != "open" || doc["serving"] != float64(4) {
		t.Fatalf("after the controls: %v", doc)
	}

	// The challenge: its badge shows the mode and difficulty, and the
	// select switches it live.
	poll("the challenge badge", `(document.querySelector('[data-field="challenge"]') || {}).textContent === "challenge off · none now"`)
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`form[data-form="challenge"] select`), "always"),
		chromedp.Click(chromedp.CSS(`form[data-form="challenge"] button`)),
	); err != nil {
		t.Fatal(err)
	}
	poll("the challenge's confirmation", `(document.getElementById("flash") || {}).textContent.includes("challenge set to always")`)
	poll("the difficulty", `document.querySelector('[data-field="challenge"]').textContent.startsWith("challenge always · 200")`)
	if ch := bearer(http.MethodGet, "", "")["challenge"].(map[string]any); ch["mode"] != "always" || ch["difficulty"] != float64(200000) {
		t.Fatalf("challenge after the form: %v", ch)
	}
	// Issue 16: a room and a client created from the dashboard, the
	// client's secret shown once, the audit log, and the room deleted.
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("room-def"), `{"id": "drop", "name": "The Drop", "admission": {"rate_per_minute": 30}}`),
		chromedp.Click(chromedp.CSS(`#new-room button`)),
	); err != nil {
		t.Fatal(err)
	}
	poll("the new room's card", `[...document.querySelectorAll('.room')].some(r => r.querySelector('[data-field="id"]').textContent === "drop" &&
		r.querySelector('[data-field="source"]').textContent === "created at run time")`)
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("client-def"), `{"id": "drop-shop", "room": "drop", "redirect_uris": ["https://drop.example/cb"]}`),
		chromedp.Click(chromedp.CSS(`#new-client button`)),
	); err != nil {
		t.Fatal(err)
	}
	poll("the secret, once", `/shown once: store it now: [A-Za-z0-9_-]{43}$/.test(document.getElementById("secret").textContent)`)
	poll("the clients", `[...document.querySelectorAll('#clients tbody tr')].some(r => r.textContent.includes("drop-shop") && !!r.querySelector('button[data-client="drop-shop"]'))`)
	// An invalid room: the error names the key, as the file's do.
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("room-def"), `{"id": "bad", "max_wait": "5s"}`),
		chromedp.Click(chromedp.CSS(`#new-room button`)),
	); err != nil {
		t.Fatal(err)
	}
	poll("the invalid room's error", `document.getElementById("error").textContent.includes("max_wait: must be at least 1m")`)
	poll("the audit log", `[...document.querySelectorAll('#audit tbody tr')].map(r => r.children[2].textContent).join(",").startsWith("client.create,room.create,room.patch")`)
	if err := chromedp.Do(ctx, chromedp.Click(`//section[.//code[text()="drop"]]//button[@data-field="delete"]`)); err != nil {
		t.Fatal(err)
	}
	poll("the room deleted", `![...document.querySelectorAll('.room [data-field="id"]')].some(e => e.textContent === "drop")`)
	if resp, err := http.Get(base + "/api/v1/rooms/drop"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("the deleted room is still served: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Fatalf("the page reported problems:\n%s", strings.Join(problems, "\n"))
	}
	if len(dialogs) != 7 || !strings.HasPrefix(dialogs[6], "Delete the room The Drop?") {
		t.Fatalf("confirmations: %q", dialogs)
	}
}
