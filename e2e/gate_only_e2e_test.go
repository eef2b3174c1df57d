//go:build unix

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anteroom/anteroom/config"
)

// readmeBlock returns the fenced yaml block of the README or docs/ that starts with the
// line first, so that the example a reader copies is the one tested.
func readmeBlock(t *testing.T, first string) string {
	t.Helper()
	docs, _ := filepath.Glob(filepath.Join("..", "docs", "*.md"))
	var all strings.Builder
	for _, doc := range append(docs, filepath.Join("..", "README.md")) {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		all.Write(b)
	}
	_, rest, ok := strings.Cut(all.String(), "```yaml\n"+first+"\n")
	if !ok {
		t.Fatalf("no yaml block of the README or docs/ starts with %q", first)
	}
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("unterminated yaml block")
	}
	return first + "\n" + block
}

// TestGateOnlyDeploymentNeedsNoClient: the documented gate-only
// configuration (rooms and gate rules, no clients:) loads, starts, and
// takes a visitor through the gate behind the shipped nginx config: the
// gate brings its own client for each room it protects.
func TestGateOnlyDeploymentNeedsNoClient(t *testing.T) {
	env := map[string]string{"ANTEROOM_COOKIE_KEY": cookieKey, "ANTEROOM_ADMIN_TOKEN": adminToken}
	loaded, err := config.Parse([]byte(readmeBlock(t, "# A gate-only deployment: no clients.")),
		func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("the documented gate-only configuration: %v", err)
	}
	if len(loaded.Clients) != 0 || loaded.Gate == nil {
		t.Fatalf("test is void: %d clients, gate %v", len(loaded.Clients), loaded.Gate)
	}
	s := startGateSite(t, func(c *config.Config) {
		// This test's addresses; everything else as documented.
		issuer, insecure := c.Issuer, false
		*c = *loaded
		c.Issuer = issuer
		c.Gate.Cookie.Secure = &insecure
	})
	b := s.browser()
	resp, body := s.admit(b, roomID, s.queueThrough(b, "/shop?item=7"))
	if resp.Request.URL.String() != s.base+"/shop?item=7" || !strings.HasPrefix(body, "app: /shop sub=") {
		t.Fatalf("after admission: %d at %s: %.200s", resp.StatusCode, resp.Request.URL, body)
	}
}
