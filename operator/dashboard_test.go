package operator

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/anteroom/anteroom/internal/testredis"
	"github.com/anteroom/anteroom/waitingroom"
)

func testSecret(b byte) []byte { return []byte(strings.Repeat(string(rune('a'+b)), 32)) }

func TestAdminSessionCookie(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	const token = "admin-token-0123456789"
	a := newAdminSessions([][]byte{testSecret(1)}, token, true, "/admin/")
	v := a.value(a.tokens[0], now.Add(adminSessionTTL))
	if strings.Contains(v, token) {
		t.Fatalf("cookie value %q carries the token", v)
	}
	if a.valid(v, now) == nil || a.valid(v, now.Add(adminSessionTTL-time.Second)) == nil {
		t.Fatal("a fresh cookie does not verify")
	}
	if a.valid(v, now.Add(adminSessionTTL)) != nil {
		t.Fatal("an expired cookie verifies")
	}
	// Any change to the expiry or the tag breaks it.
	i := strings.LastIndexByte(v, '.')
	for _, bad := range []string{
		"", "v2", "v2.", ".", v[:i], v[:i] + ".", v + "A", "v2.9999999999.admin" + v[i:],
		strings.Replace(v, "v2.", "v1.", 1), strings.Replace(v, ".admin.", ".other.", 1), v[:i+1] + strings.Repeat("A", len(v)-i-1),
	} {
		if a.valid(bad, now) != nil {
			t.Errorf("value %q verifies", bad)
		}
	}
	// Another token, or other secrets, do not accept it.
	if newAdminSessions([][]byte{testSecret(1)}, token+"x", true, "/admin/").valid(v, now) != nil {
		t.Fatal("a cookie survives a change of the admin token")
	}
	if newAdminSessions([][]byte{testSecret(2)}, token, true, "/admin/").valid(v, now) != nil {
		t.Fatal("a cookie verifies under another secret")
	}
	// Rotation: a new first secret signs, the old one still verifies.
	rotated := newAdminSessions([][]byte{testSecret(2), testSecret(1)}, token, true, "/admin/")
	if rotated.valid(v, now) == nil {
		t.Fatal("rotation signs out: the old secret no longer verifies")
	}
	if a.valid(rotated.value(rotated.tokens[0], now.Add(time.Hour)), now) != nil {
		t.Fatal("the old secret alone verifies a cookie the new one signed")
	}
	if !a.tokenMatches(token) || a.tokenMatches(token[:len(token)-1]) || a.tokenMatches("") {
		t.Fatal("tokenMatches")
	}
}

func TestAdminSessionSetClearAndRoomNamedAdmin(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	a := newAdminSessions([][]byte{testSecret(1)}, "admin-token-0123456789", false, "/queue/admin/")
	rec := httptest.NewRecorder()
	a.set(rec, a.tokens[0], now)
	c := rec.Result().Cookies()[0]
	if c.Name != adminCookieName || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/queue/admin/" ||
		c.Secure || c.MaxAge != int(adminSessionTTL.Seconds()) {
		t.Fatalf("cookie: %+v", c)
	}
	// A room called "admin" has a ticket cookie of the same name, sent
	// first here: the session is still found.
	r := httptest.NewRequest(http.MethodGet, "/admin/", nil)
	r.AddCookie(&http.Cookie{Name: adminCookieName, Value: "MTIzNDU2Nzg5MA"})
	r.AddCookie(&http.Cookie{Name: adminCookieName, Value: c.Value})
	if a.signedIn(r, now) == nil {
		t.Fatal("the session is not found beside another cookie of its name")
	}
	r = httptest.NewRequest(http.MethodGet, "/admin/", nil)
	r.AddCookie(&http.Cookie{Name: adminCookieName, Value: "MTIzNDU2Nzg5MA"})
	if a.signedIn(r, now) != nil || !a.present(r) {
		t.Fatal("a foreign cookie of the name signs in")
	}
	rec = httptest.NewRecorder()
	a.clear(rec)
	if c := rec.Result().Cookies()[0]; c.MaxAge >= 0 || c.Value != "" || c.Path != "/queue/admin/" {
		t.Fatalf("clear: %+v", c)
	}
}

func TestHistoryKeepsOneSamplePerStepForAnHour(t *testing.T) {
	h := newHistory([]string{"launch"})
	t0 := time.Unix(1_800_000_000, 0) // a multiple of 10 s
	h.record(t0, "launch", 5, 100, 105, 0)
	h.record(t0.Add(9*time.Second), "launch", 6, 101, 107, 0) // same step: ignored
	h.record(t0.Add(10*time.Second), "launch", 4, 110, 114, 2)
	h.record(t0.Add(5*time.Second), "launch", 4, 110, 114, 2) // the clock went back: ignored
	h.record(t0.Add(40*time.Second), "launch", 0, 130, 130, 3)
	h.record(t0, "other", 1, 1, 1, 0) // unknown room: ignored
	got := h.since("launch", t0.Add(40*time.Second))
	if len(got) != 3 {
		t.Fatalf("samples: %+v", got)
	}
	if got[0].Admitted != nil || got[0].T != t0.Unix() || got[0].Waiting != 5 {
		t.Fatalf("first sample: %+v", got[0])
	}
	if *got[1].Admitted != 10 || got[1].Abandoned != 2 || *got[2].Admitted != 20 || got[2].Abandoned != 1 || got[2].T != t0.Unix()+40 {
		t.Fatalf("deltas: %+v %+v", got[1], got[2])
	}
	if s := h.since("other", t0); s == nil || len(s) != 0 {
		t.Fatalf("unknown room: %#v", s)
	}

	// Two hours of samples: the ring keeps the last hour, oldest first.
	for i := range 2 * historyLen {
		h.record(t0.Add(time.Hour+time.Duration(i)*historyStep), "launch", int64(i), 200+int64(i), 300, 3)
	}
	end := t0.Add(time.Hour + (2*historyLen-1)*historyStep)
	got = h.since("launch", end)
	if len(got) != historyLen || got[0].Waiting != historyLen || got[len(got)-1].Waiting != 2*historyLen-1 {
		t.Fatalf("after wrapping: %d samples, first %+v, last %+v", len(got), got[0], got[len(got)-1])
	}
	for i := 1; i < len(got); i++ {
		if got[i].T-got[i-1].T != int64(historyStep/time.Second) || *got[i].Admitted != 1 {
			t.Fatalf("sample %d: %+v after %+v", i, got[i], got[i-1])
		}
	}
	// Half an hour later, half of them are older than an hour.
	if n := len(h.since("launch", end.Add(30*time.Minute))); n != historyLen/2 {
		t.Fatalf("half an hour later: %d samples", n)
	}
}

// TestDashboardAssetsAgree ties the page, its script and the server
// together: the CSP (default-src 'self') forbids inline scripts and
// styles, the script must send the session cookie, and every field the
// script fills must be in the template.
func TestDashboardAssetsAgree(t *testing.T) {
	read := func(name string) string {
		b, err := fs.ReadFile(assets, name)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	js := read("static/dashboard.js")
	if !strings.Contains(js, `credentials: "same-origin"`) {
		t.Fatal("dashboard.js does not send the session cookie to its own origin")
	}
	page := read("templates/dashboard.html")
	inline := regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>\s*[^<\s]|<style|\sstyle=|\son[a-z]+=|javascript:`)
	for _, name := range []string{"templates/dashboard.html", "templates/login.html", "templates/disabled.html"} {
		if m := inline.FindString(read(name)); m != "" {
			t.Errorf("%s has inline code or style, which the CSP blocks: %q", name, m)
		}
	}
	if !strings.Contains(page, `src="{{.StaticURL}}/dashboard.js"`) || !strings.Contains(page, `data-api="{{.APIURL}}"`) {
		t.Fatal("dashboard.html does not load its script or name the API")
	}
	for _, m := range regexp.MustCompile(`field\(c, "([a-z_]+)"\)`).FindAllStringSubmatch(js, -1) {
		if !strings.Contains(page, `data-field="`+m[1]+`"`) {
			t.Errorf("dashboard.js fills %q, which dashboard.html lacks", m[1])
		}
	}
	for _, m := range regexp.MustCompile(`(data-action|data-form)="([a-z_]+)"`).FindAllStringSubmatch(page, -1) {
		if !strings.Contains(js, m[2]+":") && !strings.Contains(js, `"`+m[2]+`"`) {
			t.Errorf("dashboard.html has %s=%q, which dashboard.js does not handle", m[1], m[2])
		}
	}
}

// The operator's mux serves the dashboard by itself (the ops listener has
// no visitor's routes): every file its pages link to is among its routes,
// and without admin.token the dashboard and the API say they are disabled.
func TestDashboardStandsAloneAndIsDisabledWithoutAToken(t *testing.T) {
	h, _ := signInSite(t)
	get := func(h http.Handler, path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, testIssuer+path, nil))
		return w
	}
	login := get(h, "/admin/")
	if login.Code != http.StatusOK || !strings.Contains(login.Body.String(), `name="token"`) {
		t.Fatalf("sign-in page: %d %.300s", login.Code, login.Body)
	}
	signedIn := signIn(h, "203.0.113.1", signInToken)
	r := httptest.NewRequest(http.MethodGet, testIssuer+"/admin/", nil)
	r.AddCookie(signedIn.Result().Cookies()[0])
	dash := httptest.NewRecorder()
	h.ServeHTTP(dash, r)
	if !strings.Contains(dash.Body.String(), `data-api="`+testIssuer+`/admin/v1"`) {
		t.Fatalf("dashboard: %d %.300s", dash.Code, dash.Body)
	}
	links := regexp.MustCompile(`(?:href|src)="` + regexp.QuoteMeta(testIssuer) + `(/static/[^"]+)"`)
	for _, page := range []string{login.Body.String(), dash.Body.String()} {
		found := links.FindAllStringSubmatch(page, -1)
		if len(found) == 0 {
			t.Fatalf("no static link in %.300s", page)
		}
		for _, m := range found {
			if w := get(h, m[1]); w.Code != http.StatusOK || w.Header().Get("Cache-Control") != "public, max-age=3600" {
				t.Errorf("%s: %d %q", m[1], w.Code, w.Header().Get("Cache-Control"))
			}
		}
	}

	store, err := waitingroom.NewStore(testredis.Start(t).Client(t), []waitingroom.Room{fuzzRoom})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Issuer: testIssuer, Store: store, CookieSecrets: [][]byte{testSecret(1)}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.Register(mux)
	if w := get(mux, "/admin/"); w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "The dashboard is disabled") {
		t.Fatalf("dashboard without a token: %d %.300s", w.Code, w.Body)
	}
	if w := get(mux, "/admin/v1/rooms"); w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "set admin.token") {
		t.Fatalf("API without a token: %d %s", w.Code, w.Body)
	}
}
