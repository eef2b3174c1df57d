package web

import (
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// writeFiles creates files (path: content) under a new directory.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// customWait is a minimal waiting page of an operator's own.
const customWait = `<!doctype html><html lang="{{.Lang}}"><title>{{.T "wait.title" "room" .RoomName}}</title>
<main id="room" data-status-url="{{.StatusURL}}"><h1>Our own page</h1><p>{{.T "shop.tagline"}}</p>
<p id="position">{{.Status.Position}}</p><p>{{.T "wait.position"}}</p>
<form method="post" action="{{.ContinueURL}}" id="continue"><button id="go">{{.T "wait.continue"}}</button></form></main>
<script type="application/json" id="strings">{{.Strings}}</script>`

func TestOverrideDirectory(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"templates/wait.html": customWait,
		"static/style.css":    "body{color:#000}",
		"static/logo.svg":     "<svg/>",
		"locales/en.json":     `{"shop.tagline": "Sneakers, soon."}`,
		"locales/fr.json": `{"wait.title": "{room} · salle d'attente", "wait.position": "Votre numéro",
			"wait.continue": "Continuer vers le site", "shop.tagline": "Des baskets, bientôt.",
			"msg.unknown.title": "Ce lien ne fonctionne pas"}`,
		"locales/de.json": `{"wait.position": "Deine Nummer"}`,
		"README.txt":      "notes of the operator",
	})
	h := newTestSite(t, dir)

	_, page := get(t, h, newRequestPath(), "fr-FR,fr;q=0.9,en;q=0.5", false)
	if langOf(t, page) != "fr" || !strings.Contains(page, "Our own page") || !strings.Contains(page, "Votre numéro") ||
		!strings.Contains(page, "Des baskets, bientôt.") || !strings.Contains(page, "salle d&#39;attente") {
		t.Fatalf("French custom page: %s", page)
	}
	// A text French lacks comes from English.
	if !strings.Contains(page, `"wait.eta.minutes":"about {minutes} minutes"`) {
		t.Fatalf("French page's strings for wait.js: %s", page)
	}
	_, page = get(t, h, newRequestPath(), "en", false)
	if langOf(t, page) != "en" || !strings.Contains(page, "Your number") || !strings.Contains(page, "Sneakers, soon.") {
		t.Fatalf("English custom page: %s", page)
	}
	// The directory's German replaces one text of the built-in German.
	_, page = get(t, h, newRequestPath(), "de", false)
	if !strings.Contains(page, "Deine Nummer") || !strings.Contains(page, "Weiter zur Website") {
		t.Fatalf("German custom page: %s", page)
	}
	// message.html is still the built-in one, with the directory's texts.
	resp, page := get(t, h, "/wait/gone", "fr", false)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "Ce lien ne fonctionne pas") || langOf(t, page) != "fr" ||
		!strings.Contains(page, "This waiting-room link is not valid.") {
		t.Fatalf("French message page: %s", page)
	}

	for path, want := range map[string]string{
		"/static/style.css": "body{color:#000}", // replaced
		"/static/logo.svg":  "<svg/>",           // added
		"/static/wait.js":   "EventSource",      // built in
	} {
		resp, body := get(t, h, path, "", false)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("%s: %d %.100s", path, resp.StatusCode, body)
		}
	}
	// Neither directory is listed, and nothing outside static/ is served.
	for _, path := range []string{"/static/", "/static/../README.txt", "/static/locales/fr.json", "/static/../templates/wait.html"} {
		if resp, body := get(t, h, path, "", false); resp.StatusCode == http.StatusOK {
			t.Errorf("%s: %d %.200s", path, resp.StatusCode, body)
		}
	}
}

func TestBrokenOverrideStopsStartUp(t *testing.T) {
	for _, c := range []struct {
		name  string
		files map[string]string
		want  []string // in the error
	}{
		{"template does not parse", map[string]string{"templates/wait.html": `{{if .Status}}`},
			[]string{filepath.Join("templates", "wait.html"), "unexpected EOF"}},
		{"unknown field", map[string]string{"templates/message.html": `{{.Text}} {{.Titel}}`},
			[]string{filepath.Join("templates", "message.html"), "Titel"}},
		{"unknown message key", map[string]string{"templates/wait.html": strings.Replace(customWait, `"shop.tagline"`, `"shop.tagline.typo"`, 1),
			"locales/en.json": `{"shop.tagline": "x"}`},
			[]string{filepath.Join("templates", "wait.html"), `unknown message key "shop.tagline.typo"`}},
		{"continue form missing", map[string]string{"templates/wait.html": `<p>{{.StatusURL}} {{.Strings}}</p>`},
			[]string{filepath.Join("templates", "wait.html"), "must use .ContinueURL"}},
		{"status missing", map[string]string{"templates/wait.html": `<p>{{.ContinueURL}} {{.Strings}}</p>`},
			[]string{filepath.Join("templates", "wait.html"), "must use .StatusURL or .EventsURL"}},
		{"message text missing", map[string]string{"templates/message.html": `<h1>{{.Title}}</h1>`},
			[]string{filepath.Join("templates", "message.html"), "must use .Text"}},
		{"template that cannot be replaced", map[string]string{"templates/dashboard.html": `x`},
			[]string{filepath.Join("templates", "dashboard.html"), "only wait.html and message.html"}},
		{"misspelt template", map[string]string{"templates/wiat.html": `x`},
			[]string{filepath.Join("templates", "wiat.html")}},
		{"locale is not JSON", map[string]string{"locales/fr.json": `{"wait.position": }`},
			[]string{filepath.Join("locales", "fr.json"), "JSON object"}},
		{"locale value is not a string", map[string]string{"locales/fr.json": `{"wait.position": 1}`},
			[]string{filepath.Join("locales", "fr.json")}},
		{"unknown key in a locale", map[string]string{"locales/fr.json": `{"wait.postion": "Votre numéro"}`},
			[]string{filepath.Join("locales", "fr.json"), `unknown key "wait.postion"`}},
		{"placeholder English lacks", map[string]string{"locales/fr.json": `{"wait.eta.minutes": "environ {minuets} minutes"}`},
			[]string{filepath.Join("locales", "fr.json"), "{minuets}"}},
		{"empty text", map[string]string{"locales/de.json": `{"wait.position": " "}`},
			[]string{filepath.Join("locales", "de.json"), "empty"}},
		{"file name is no language", map[string]string{"locales/french.json": `{}`},
			[]string{filepath.Join("locales", "french.json"), "BCP 47"}},
		{"two files for one language", map[string]string{"locales/pt-BR.json": `{}`, "locales/pt_BR.json": `{}`},
			[]string{"the same language"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := writeFiles(t, c.files)
			_, err := New(testOptions(dir))
			if err == nil {
				t.Fatal("New accepted the directory")
			}
			for _, w := range append(c.want, dir) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if _, err := New(testOptions(filepath.Join(t.TempDir(), "missing"))); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("a missing directory: %v", err)
	}
	file := filepath.Join(writeFiles(t, map[string]string{"f": "x"}), "f")
	if _, err := New(testOptions(file)); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("a file as the directory: %v", err)
	}
}

func TestLayeredFS(t *testing.T) {
	upper := fstest.MapFS{"static/a.css": {Data: []byte("upper")}, "static/new.txt": {Data: []byte("new")}, "templates/x.html": {Data: []byte("x")}}
	lower := fstest.MapFS{"static/a.css": {Data: []byte("lower")}, "static/b.js": {Data: []byte("b")}, "templates/wait.html": {Data: []byte("w")}}
	l := layered{upper: upper, lower: lower}
	for name, want := range map[string]string{"static/a.css": "upper", "static/b.js": "b", "static/new.txt": "new"} {
		if b, err := fs.ReadFile(l, name); err != nil || string(b) != want {
			t.Errorf("%s: %q %v", name, b, err)
		}
	}
	// Listing sees the lower layer's names only.
	if names, _ := fs.Glob(l, "templates/*.html"); len(names) != 1 || names[0] != "templates/wait.html" {
		t.Errorf("glob: %v", names)
	}
	if _, err := (filesOnly{l}).Open("static"); err == nil {
		t.Error("filesOnly opened a directory")
	}
}
