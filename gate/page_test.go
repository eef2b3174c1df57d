package gate

import (
	"strings"
	"testing"
)

// A gate's error page offers a way back to the site: its pages are served
// on the site's own origin, so the site's root is the way back.
func TestGatePageLinksBackToTheSite(t *testing.T) {
	var b strings.Builder
	if err := pageTemplate.Execute(&b, map[string]string{"Title": "Please start again", "Text": "Go back.", "Static": "https://q.example/static"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `<a href="/">Back to the site</a>`) {
		t.Fatalf("no way back to the site: %s", b.String())
	}
}
