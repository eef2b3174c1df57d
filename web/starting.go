package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// msgStarting is the JSON answer while starting, in the words of the
// provider's outage answer: its reader is a program.
var msgStarting = message{http.StatusServiceUnavailable, "temporarily_unavailable", "", "the waiting room cannot reach its store; try again shortly"}

// NewStarting returns what an instance answers while it cannot serve yet:
// Redis did not answer at start-up, so the room's state and the shared
// signing keys are not loaded. The instance listens all the same, so a
// load balancer sees it alive but not ready, and people and relying
// parties get the answers they get during an outage (see fail and the
// provider's guardOutage) instead of a refused connection:
//
//   - GET /healthz: 200, the process lives (restarting it would not bring
//     Redis back);
//   - GET /readyz: 503, not ready;
//   - GET /static/: the pages' files, so the page below has its style;
//   - a person's page (Accept: text/html): the room's "we are having
//     trouble" page, 503 with Retry-After, which reloads itself;
//   - anything else (token, userinfo, introspection, revocation, JWKS,
//     the status JSON, the admin API): 503 with Retry-After and
//     {"error": "temporarily_unavailable"}, which relying parties retry.
//
// issuer and webDir are those of the configuration, so the page looks like
// the room's (web.dir's templates, style and texts).
func NewStarting(issuer, webDir string) (http.Handler, error) {
	if u, err := url.Parse(issuer); err != nil || u.Host == "" {
		return nil, fmt.Errorf("issuer %q is not an absolute URL", issuer)
	}
	th, err := loadTheme(webDir, pageFuncs())
	if err != nil {
		return nil, err
	}
	if th.pages.Lookup("message.html") == nil {
		return nil, fmt.Errorf("template message.html is missing")
	}
	s := &Server{issuer: issuer, pages: th.pages, static: th.static, locales: th.locales}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "5")
		http.Error(w, "redis unreachable", http.StatusServiceUnavailable)
	})
	mux.Handle("GET /static/", http.StripPrefix("/static/", cacheFor(time.Hour, http.FileServerFS(s.static))))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Header.Get("Accept"), "text/html") && queryValue(r.URL.RawQuery, "format") != "json" {
			s.fail(w, r, msgUnavailable, nil)
			return
		}
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, msgStarting)
	})
	return mux, nil
}
