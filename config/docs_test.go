package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// docExampleBase is what a fragment of the documentation (a `rooms:` or a
// `redis:` block) is loaded into: the rooms and a client the examples
// name, so that each fragment is checked as part of a whole file.
const docExampleBase = `
issuer: https://queue.example.com
secrets: {cookie_keys: ["an example cookie key of 32 bytes or more"]}
admin: {token: "an example admin token"}
rooms:
  - {id: launch}
  - {id: checkout}
clients:
  - {id: shop, secret: an-example-client-secret, redirect_uris: [https://shop.example.com/oauth2/callback], room: launch}
`

// docExampleEnv stands in for the ${ENV} references of the examples.
func docExampleEnv(name string) (string, bool) {
	if strings.HasSuffix(name, "_ISSUER") || strings.HasSuffix(name, "_URL") {
		return "https://id.example.com/" + strings.ToLower(name), true
	}
	return "a value of " + name + ", 32 bytes or longer", true
}

// yamlBlocks returns the fenced yaml blocks of a Markdown file.
func yamlBlocks(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	var cur *strings.Builder
	indent := "" // a block in a list item is indented as a whole
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case cur == nil && strings.TrimSpace(line) == "```yaml":
			cur = &strings.Builder{}
			indent = line[:len(line)-len(strings.TrimLeft(line, " "))]
		case cur != nil && strings.TrimSpace(line) == "```":
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(strings.TrimPrefix(line, indent) + "\n")
		}
	}
	return blocks
}

// TestEveryYAMLExampleInTheDocsLoads: every yaml block of the README and
// docs/ that is Anteroom's configuration loads as a reader would use it.
// A whole file (it names the issuer) loads as it is; a fragment (a
// `rooms:` or `redis:` block) loads in place of those keys of a small
// whole file, or, headed "# rooms[]. …", in place of a room's keys. Blocks
// of other programs' YAML (Kubernetes, compose) are
// recognised by their keys and left to their own tests.
func TestEveryYAMLExampleInTheDocsLoads(t *testing.T) {
	files, _ := filepath.Glob("../docs/*.md")
	files = append(files, "../README.md")
	loaded := 0
	webDir := t.TempDir()
	for _, file := range files {
		for i, block := range yamlBlocks(t, file) {
			var top map[string]any
			if err := yaml.Unmarshal([]byte(block), &top); err != nil {
				t.Errorf("%s, yaml block %d: %v\n%s", file, i+1, err, block)
				continue
			}
			if top["apiVersion"] != nil || top["services"] != nil || top["groups"] != nil {
				continue
			}
			// A directory the example names on the reader's machine is
			// one of the test's.
			doc := []byte(strings.ReplaceAll(block, "/etc/anteroom/web", webDir))
			if top["issuer"] == nil {
				var base map[string]any
				if err := yaml.Unmarshal([]byte(docExampleBase), &base); err != nil {
					t.Fatal(err)
				}
				into := base
				if strings.HasPrefix(block, "# rooms[].") {
					// A room's keys ("# rooms[].identity for Keycloak"):
					// they go into the first room.
					into = base["rooms"].([]any)[0].(map[string]any)
				}
				for k, v := range top {
					into[k] = v
				}
				var err error
				if doc, err = yaml.Marshal(base); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := Parse(doc, docExampleEnv); err != nil {
				t.Errorf("%s, yaml block %d does not load: %v\n%s", file, i+1, err, block)
			}
			loaded++
		}
	}
	if loaded < 8 {
		t.Fatalf("test is void: only %d examples loaded", loaded)
	}
}
