package web

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anteroom/anteroom/internal/testredis"
	"github.com/anteroom/anteroom/waitingroom"
)

// fakeFlow is an AuthFlow whose every request queues for room "launch",
// except request "gone", which is unknown.
type fakeFlow struct{}

func (fakeFlow) Open(id string) (AuthRequest, error) {
	if id == "gone" {
		return nil, waitingroom.ErrUnknownRequest
	}
	return fakeRequest(id), nil
}

// fakeRequest is a request of fakeFlow, named by its id.
type fakeRequest string

func (f fakeRequest) ID() string                  { return string(f) }
func (fakeRequest) Room() string                  { return "launch" }
func (fakeRequest) PromptNone() bool              { return false }
func (fakeRequest) Created() time.Time            { return time.Unix(1_800_000_000, 0) }
func (fakeRequest) Fresh(waitingroom.Ticket) bool { return true }
func (fakeRequest) Close()                        {}

func (fakeRequest) Finish(w http.ResponseWriter, r *http.Request, _ waitingroom.Ticket) error {
	http.Redirect(w, r, "https://rp.example.com/cb?code=x", http.StatusSeeOther)
	return nil
}

func (fakeRequest) LoginRequired(w http.ResponseWriter, _ *http.Request) {
	http.Error(w, "login_required", http.StatusBadRequest)
}

func (fakeRequest) Decline(w http.ResponseWriter, _ *http.Request) {
	http.Error(w, "access_denied", http.StatusBadRequest)
}

const testIssuer = "http://127.0.0.1:1"

func testSecret(b byte) []byte { return []byte(strings.Repeat(string(rune('a'+b)), 32)) }

// testOptions are a Server's options without a store: enough for New to
// fail on a bad override directory.
func testOptions(webDir string) Options {
	return Options{Issuer: testIssuer, Flow: fakeFlow{}, CookieSecrets: [][]byte{testSecret(1)}, WebDir: webDir}
}

// newTestSite runs a Server with webDir (empty: none) over a fresh Redis,
// with one manual room, "launch", in which every visitor waits.
func newTestSite(t *testing.T, webDir string) http.Handler {
	t.Helper()
	rdb := testredis.Start(t).Client(t)
	store, err := waitingroom.NewStore(rdb, []waitingroom.Room{{ID: "launch", Name: "Launch", State: waitingroom.StateOpen,
		SessionTTL: 30 * time.Minute, MaxWait: 6 * time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Seed(context.Background()); err != nil {
		t.Fatal(err)
	}
	o := testOptions(webDir)
	o.Store, o.Cache = store, waitingroom.NewCache(store, time.Second)
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.RegisterPublic(mux)
	return SecurityHeaders(mux)
}

// get requests path with Accept-Language lang (none when empty) and, when
// jsonMode is set, asks for JSON.
func get(t *testing.T, h http.Handler, path, lang string, jsonMode bool) (*http.Response, string) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	if lang != "" {
		r.Header.Set("Accept-Language", lang)
	}
	if jsonMode {
		r.Header.Set("Accept", "application/json")
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	b, _ := io.ReadAll(w.Result().Body)
	return w.Result(), string(b)
}

var requests atomic.Int64

// newRequestPath is the waiting page of a new auth request: a request is
// bound to the first browser that opens it.
func newRequestPath() string { return fmt.Sprintf("/wait/req%d", requests.Add(1)) }

var htmlLang = regexp.MustCompile(`<html lang="([^"]*)"`)

func langOf(t *testing.T, page string) string {
	t.Helper()
	m := htmlLang.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no <html lang> in %.300s", page)
	}
	return m[1]
}

func TestWaitingPageLanguage(t *testing.T) {
	h := newTestSite(t, "")
	for _, c := range []struct {
		header, lang string
		want         []string
	}{
		{"de-DE,de;q=0.9,en;q=0.8", "de", []string{"Ihre Nummer", "Personen vor Ihnen", "Geschätzte Wartezeit", "Warteraum", `aria-label="Fortschritt in der Warteschlange"`, "Weiter zur Website"}},
		{"fr", "en", []string{"Your number", "People ahead of you", "Estimated wait", `aria-label="Progress through the queue"`}},
		{"", "en", []string{"Your number"}},
		{"en;q=0.5,de;q=0.6", "de", []string{"Ihre Nummer"}},
		{"de;q=0,en", "en", []string{"Your number"}},
		{"de-CH", "de", []string{"Ihre Nummer"}},
		{"this is ; not a header", "en", []string{"Your number"}},
	} {
		resp, page := get(t, h, newRequestPath(), c.header, false)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%q: %d %.300s", c.header, resp.StatusCode, page)
		}
		if got := langOf(t, page); got != c.lang {
			t.Errorf("%q: lang %q, want %q", c.header, got, c.lang)
		}
		for _, w := range c.want {
			if !strings.Contains(html.UnescapeString(page), w) && !strings.Contains(page, w) {
				t.Errorf("%q: page lacks %q", c.header, w)
			}
		}
		if !slices.Contains(resp.Header.Values("Vary"), "Accept-Language") {
			t.Errorf("%q: Vary %q", c.header, resp.Header.Values("Vary"))
		}
	}

	// wait.js gets its texts in the page's language, as JSON.
	_, page := get(t, h, newRequestPath(), "de", false)
	m := regexp.MustCompile(`(?s)<script type="application/json" id="strings">(.*?)</script>`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no strings for wait.js")
	}
	var strs map[string]string
	if err := json.Unmarshal([]byte(m[1]), &strs); err != nil {
		t.Fatalf("strings for wait.js: %v in %s", err, m[1])
	}
	if strs["wait.eta.minutes"] != "etwa {minutes} Minuten" || len(strs) != len(scriptKeys) {
		t.Fatalf("strings for wait.js: %v", strs)
	}
}

func TestMessagePagesAreLocalisedAndJSONIsNot(t *testing.T) {
	h := newTestSite(t, "")
	resp, page := get(t, h, "/wait/gone", "de-DE,de;q=0.9", false)
	if resp.StatusCode != http.StatusBadRequest || langOf(t, page) != "de" || !strings.Contains(page, "Dieser Link funktioniert nicht") {
		t.Fatalf("German message page: %d %s", resp.StatusCode, page)
	}
	_, page = get(t, h, "/logged-out", "fr", false)
	if langOf(t, page) != "en" || !strings.Contains(page, "You have logged out") {
		t.Fatalf("logged-out page for fr: %s", page)
	}
	// JSON answers are what they were, in English whatever the language.
	for _, lang := range []string{"", "de"} {
		resp, body := get(t, h, "/wait/gone", lang, true)
		want := `{"error":"invalid_request","error_description":"This waiting-room link is not valid. Go back to the site and try again."}` + "\n"
		if resp.StatusCode != http.StatusBadRequest || body != want {
			t.Fatalf("JSON error (%q): %d %s", lang, resp.StatusCode, body)
		}
	}
	// A message whose texts are no keys is shown as it is.
	b, _ := json.Marshal(message{http.StatusNotFound, "not_found", "Disabled", "Set admin.token."})
	if string(b) != `{"error":"not_found","error_description":"Set admin.token."}` {
		t.Fatalf("literal message: %s", b)
	}
}

func TestStatusJSONUnchanged(t *testing.T) {
	h := newTestSite(t, "")
	r := httptest.NewRequest(http.MethodGet, "/wait/abc", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	cookies := w.Result().Cookies()
	for _, lang := range []string{"", "de"} {
		r := httptest.NewRequest(http.MethodGet, "/wait/abc?format=json", nil)
		r.Header.Set("Accept-Language", lang)
		for _, c := range cookies {
			r.AddCookie(c)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		want := `{"room":"launch","state":"waiting","position":1,"serving":0,"ahead":0,"eta_seconds":null,"queue_full":false,"progress":0,"continue_url":""}` + "\n"
		// continue_url is omitted while waiting.
		want = strings.Replace(want, `,"continue_url":""`, "", 1)
		if got := w.Body.String(); got != want {
			t.Fatalf("status JSON (%q):\n got %s\nwant %s", lang, got, want)
		}
		if ct := w.Result().Header.Get("Content-Type"); ct != "application/json" {
			t.Fatalf("content type %q", ct)
		}
	}
}

func TestBuiltinCataloguesAgree(t *testing.T) {
	c, err := loadCatalogue(nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.langs[0].tag != "en" {
		t.Fatalf("first language %q", c.langs[0].tag)
	}
	en := builtinEnglish()
	for _, l := range c.langs {
		own := l.chain[0]
		if missing := slices.DeleteFunc(slices.Sorted(maps.Keys(en)), func(k string) bool { _, ok := own[k]; return ok }); len(missing) > 0 {
			t.Errorf("%s lacks %v", l.tag, missing)
		}
		for k, text := range own {
			if !slices.Equal(slices.Sorted(slices.Values(placeholders(text))), slices.Sorted(slices.Values(placeholders(en[k])))) {
				t.Errorf("%s %q: placeholders %v, English %v", l.tag, k, placeholders(text), placeholders(en[k]))
			}
		}
	}
	for _, k := range scriptKeys {
		if _, ok := en[k]; !ok {
			t.Errorf("wait.js needs %q, which English lacks", k)
		}
	}
	// Every message's title and text is a key.
	for _, m := range []message{msgUnknown, msgExpired, msgClaimed, msgClosed, msgNoTicket, msgLoggedOut, msgUnavailable} {
		if _, ok := en[m.Title]; !ok {
			t.Errorf("message title %q is no key", m.Title)
		}
		if _, ok := en[m.Text]; !ok {
			t.Errorf("message text %q is no key", m.Text)
		}
	}
}

func TestLocaleFormats(t *testing.T) {
	c, err := loadCatalogue(nil, "")
	if err != nil {
		t.Fatal(err)
	}
	en, de := locale{lang: c.pick("en")}, locale{lang: c.pick("de")}
	secs := func(n int64) *int64 { return &n }
	for _, x := range []struct {
		l    locale
		eta  *int64
		want string
	}{
		{en, nil, "—"}, {en, secs(30), "less than a minute"}, {en, secs(90), "about a minute"},
		{en, secs(420), "about 7 minutes"}, {en, secs(3900), "about 1h 05m"},
		{de, secs(30), "weniger als eine Minute"}, {de, secs(420), "etwa 7 Minuten"}, {de, secs(3900), "etwa 1 Std. 05 Min."},
	} {
		if got := x.l.Duration(x.eta); got != x.want {
			t.Errorf("%s eta: %q, want %q", x.l.Lang(), got, x.want)
		}
	}
	for _, x := range []struct {
		l    locale
		d    time.Duration
		want string
	}{
		{en, time.Hour, "1 hour"}, {en, 6 * time.Hour, "6 hours"}, {en, 90 * time.Minute, "90 minutes"}, {en, time.Minute, "1 minute"},
		{de, time.Hour, "1 Stunde"}, {de, 6 * time.Hour, "6 Stunden"}, {de, 90 * time.Minute, "90 Minuten"},
	} {
		if got := x.l.keptFor(x.d); got != x.want {
			t.Errorf("%s keptFor(%s): %q, want %q", x.l.Lang(), x.d, got, x.want)
		}
	}
	at := time.Date(2026, 12, 1, 8, 5, 0, 0, time.UTC)
	if got := en.opening(at); got != "08:05 UTC on 1 December" {
		t.Errorf("English opening: %q", got)
	}
	if got := de.opening(at); got != "1. Dezember um 08:05 UTC" {
		t.Errorf("German opening: %q", got)
	}
	// Markup: the text is escaped, a template.HTML value is not.
	got, err := en.HTML("wait.prequeue", "time", opening{ISO: "2026-12-01T08:05:00Z", Text: "<08:05>"}.Element())
	if err != nil || !strings.HasPrefix(string(got), `The room opens at <time datetime="2026-12-01T08:05:00Z">&lt;08:05&gt;</time>.`) {
		t.Errorf("HTML: %q %v", got, err)
	}
	if s, _ := en.T("wait.title", "room", "<b>"); s != "<b> · waiting room" {
		t.Errorf("T: %q", s)
	}
	if _, err := en.T("wait.title", "room"); err == nil {
		t.Error("an odd number of arguments is accepted")
	}
	if s, err := en.T("no.such.key"); s != "no.such.key" || err != nil {
		t.Errorf("unknown key: %q %v", s, err)
	}
	if _, err := (locale{lang: en.lang, strict: true}).T("no.such.key"); err == nil {
		t.Error("strict: an unknown key is accepted")
	}
}

// A malformed entry of Accept-Language (RFC 9110 §12.5.4) is skipped, not
// taken as a reason to ignore the whole header: the visitor still gets the
// language they named properly.
func TestAcceptLanguageSkipsMalformedEntries(t *testing.T) {
	c, err := loadCatalogue(nil, "")
	if err != nil {
		t.Fatal(err)
	}
	for header, want := range map[string]string{
		"fr;q=abc, de;q=0.8":                "de",
		"!!!, de, ???":                      "de",
		"en;q=0.1, xx-@@-garbage, de;q=0.9": "de",
		"de;q=1.5, en;q=0.5":                "en", // q above 1 is malformed
		"de;q=0, en;q=0.1":                  "en", // q=0: not acceptable
		"de;x=1, en;q=0.2":                  "en", // a parameter that is not q
		"en;q=0.2, de;q=0.9, ;q=1":          "de",
		"*;q=1, de;q=0.5":                   "de",
		"de-AT;q=0.7, fr;q=0.9":             "de",
		";;;,,,":                            "en",
		"":                                  "en",
		"de;q=0.x, en":                      "en",
		"en;q=0.001, de;q=0.002":            "de",
		"  de ; q = 0.5 ,  en ; q = 0.4  ":  "de",
		strings.Repeat("x-@, ", 40) + " de": "en", // past maxAcceptLanguages
	} {
		if got := c.pick(header).tag; !strings.HasPrefix(got, want) {
			t.Errorf("Accept-Language %q: %s, want %s", header, got, want)
		}
	}
}

// Durations shown to visitors come from the locale files in every
// language the page speaks: the page's .ETA, and .Duration for an
// operator's template (which replaced an English-only template function).
func TestDurationsAreLocalised(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"locales/fr.json": `{"wait.eta.less_than_minute": "moins d'une minute", "wait.eta.minutes": "environ {minutes} minutes", "wait.eta.hours": "environ {hours} h {minutes}"}`,
		"templates/wait.html": `<html lang="{{.Lang}}"><form action="{{.ContinueURL}}" data-status="{{.StatusURL}}"></form>` +
			`<p id="eta">{{.Duration .Status.ETASeconds}}</p><script type="application/json">{{.Strings}}</script>`,
	})
	th, err := loadTheme(dir, pageFuncs())
	if err != nil {
		t.Fatal(err)
	}
	secs := func(n int64) *int64 { return &n }
	want := map[string][]string{ // 30 s, 7 min, 65 min
		"en": {"less than a minute", "about 7 minutes", "about 1h 05m"},
		"de": {"weniger als eine Minute", "etwa 7 Minuten", "etwa 1 Std. 05 Min."},
		"fr": {"moins d'une minute", "environ 7 minutes", "environ 1 h 05"},
	}
	if len(th.locales.langs) != len(want) {
		t.Fatalf("languages %d, want a case for each of %v", len(th.locales.langs), want)
	}
	for _, l := range th.locales.langs {
		for i, s := range []*int64{secs(30), secs(420), secs(3900)} {
			var b strings.Builder
			if err := th.pages.ExecuteTemplate(&b, "wait.html", waitPage{locale: locale{lang: l, strict: true}, Status: waitingroom.VisitorStatus{ETASeconds: s}}); err != nil {
				t.Fatal(err)
			}
			if w := `<p id="eta">` + html.EscapeString(want[l.tag][i]) + `</p>`; !strings.Contains(b.String(), w) {
				t.Errorf("%s %ds: page lacks %s in %s", l.tag, *s, w, b.String())
			}
		}
	}
	// Every built-in language words every duration itself.
	c, err := loadCatalogue(nil, "")
	if err != nil {
		t.Fatal(err)
	}
	en := locale{lang: c.langs[0]}
	for _, l := range c.langs[1:] {
		for _, s := range []*int64{secs(30), secs(90), secs(420), secs(3900)} {
			if got := (locale{lang: l}).Duration(s); got == en.Duration(s) {
				t.Errorf("%s: %ds is %q, as in English", l.tag, *s, got)
			}
		}
		for _, d := range []time.Duration{time.Minute, 2 * time.Minute, time.Hour, 6 * time.Hour} {
			if got := (locale{lang: l}).keptFor(d); got == en.keptFor(d) {
				t.Errorf("%s: keptFor(%s) is %q, as in English", l.tag, d, got)
			}
		}
	}
}
