package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anteroom/anteroom/config"
	"github.com/anteroom/anteroom/server"
)

// acceptLanguage sends every request with an Accept-Language header, as a
// browser set to that language does.
type acceptLanguage struct {
	rt   http.RoundTripper
	lang string
}

func (a acceptLanguage) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Accept-Language", a.lang)
	return a.rt.RoundTrip(r)
}

// TestWebDirectory: web.dir in the configuration reaches the waiting page,
// its French is chosen for a French browser, German is built in, and its
// static files are served.
func TestWebDirectory(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"locales/fr.json":  `{"wait.position": "Votre numéro", "page.eyebrow": "Salle d'attente"}`,
		"static/style.css": "body{background:#123}",
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e := newEnv(t, false, func(c *config.Config) { c.Web.Dir = dir })
	e.start()
	r := e.rp(clientID, secret, rpCallback)
	for _, c := range []struct{ accept, lang, text string }{
		{"fr-CA,fr;q=0.9,en;q=0.5", "fr", "Votre numéro"},
		{"de-DE,de;q=0.9,en;q=0.8", "de", "Ihre Nummer"},
		{"ja", "en", "Your number"},
	} {
		b := e.browser()
		b.Transport = acceptLanguage{b.Transport, c.accept}
		resp, body := visit(t, b, http.MethodGet, r.authURL(newLogin()))
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `<html lang="`+c.lang+`"`) || !strings.Contains(body, c.text) {
			t.Fatalf("%s: %d %.600s", c.accept, resp.StatusCode, body)
		}
	}
	resp, body := visit(t, e.browser(), http.MethodGet, issuer+"/static/style.css")
	if resp.StatusCode != http.StatusOK || body != "body{background:#123}" {
		t.Fatalf("style.css: %d %.100s", resp.StatusCode, body)
	}

	// A broken template stops the instance from starting, naming the file.
	if err := os.MkdirAll(filepath.Join(dir, "templates"), 0o755); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "templates", "message.html")
	if err := os.WriteFile(bad, []byte("{{.Text"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := server.New(t.Context(), e.cfg, e.rdb); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("start with a broken template: %v", err)
	}
}
