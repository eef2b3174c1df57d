package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/anteroom/anteroom/waitingroom"
)

// An error page gives the visitor a way back to the site and the
// request's id, which support finds the request's log lines by.
func TestErrorPagesLinkBackToTheSiteAndNameTheRequest(t *testing.T) {
	// No Redis is needed: the page is rendered without the store.
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	store, err := waitingroom.NewStore(rdb, []waitingroom.Room{{ID: "launch", Name: "Launch", State: waitingroom.StateOpen,
		SessionTTL: 30 * time.Minute, MaxWait: 6 * time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	site := func(siteURL string) http.Handler {
		o := testOptions("")
		o.Store, o.Cache, o.SiteURL = store, waitingroom.NewCache(store, time.Second), siteURL
		s, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		return RequestIDs(http.HandlerFunc(s.RequestError))
	}
	page := func(h http.Handler, referer, lang string) string {
		r := httptest.NewRequest(http.MethodGet, "/authorize?client_id=nobody", nil)
		r.Header.Set("X-Request-Id", "req-0123abcd")
		r.Header.Set("Accept-Language", lang)
		if referer != "" {
			r.Header.Set("Referer", referer)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusBadRequest {
			t.Fatalf("status %d", w.Code)
		}
		return w.Body.String()
	}
	configured, unconfigured := site("https://shop.example.com/home"), site("")
	for _, x := range []struct {
		h        http.Handler
		referer  string
		lang     string
		link     string // "": none
		refLabel string
	}{
		{configured, "https://elsewhere.example/x", "en", `<a href="https://shop.example.com/home">Back to the site</a>`, "Reference: req-0123abcd"},
		{unconfigured, "https://shop.example.com/cart?item=1#x", "en", `<a href="https://shop.example.com/">Back to the site</a>`, "Reference: req-0123abcd"},
		{unconfigured, "https://shop.example.com/cart", "de", `<a href="https://shop.example.com/">Zurück zur Website</a>`, "Referenz: req-0123abcd"},
		{unconfigured, testIssuer + "/wait/abc", "en", "", "Reference: req-0123abcd"},
		{unconfigured, "javascript:alert(1)", "en", "", "Reference: req-0123abcd"},
		{unconfigured, "", "en", "", "Reference: req-0123abcd"},
	} {
		body := page(x.h, x.referer, x.lang)
		if x.link != "" && !strings.Contains(body, x.link) {
			t.Errorf("referer %q: no link %s in %s", x.referer, x.link, body)
		}
		if x.link == "" && strings.Contains(body, `class="back"`) {
			t.Errorf("referer %q: a link back where there should be none: %s", x.referer, body)
		}
		if !strings.Contains(body, x.refLabel) {
			t.Errorf("referer %q: the page does not show %q: %s", x.referer, x.refLabel, body)
		}
	}
}
