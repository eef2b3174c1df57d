package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// TestConformanceTableNamesTestsThatExist: every test that
// docs/oidc-conformance.md names as the proof of a conformance module is a
// test function of this package, so the table cannot point at a test that
// was renamed or removed.
func TestConformanceTableNamesTestsThatExist(t *testing.T) {
	doc, err := os.ReadFile("../docs/oidc-conformance.md")
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	var src strings.Builder
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src.Write(b)
	}
	named := regexp.MustCompile("`(Test[A-Za-z0-9_]+)[^`]*`").FindAllStringSubmatch(string(doc), -1)
	if len(named) < 20 {
		t.Fatalf("the table names %d tests; it was read wrong", len(named))
	}
	for _, m := range named {
		if !strings.Contains(src.String(), "func "+m[1]+"(t *testing.T)") {
			t.Errorf("docs/oidc-conformance.md names %s, which is not a test of package e2e", m[1])
		}
	}
}

// mdAnchor is the anchor GitHub gives a Markdown heading.
func mdAnchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TestDocsLinksResolve: every relative link of the README, docs/ and the
// project files names a file that exists, and every #anchor a heading of
// that file, so the move of the README into docs/ (and every later one)
// leaves no reader at a dead end.
func TestDocsLinksResolve(t *testing.T) {
	files, _ := filepath.Glob("../docs/*.md")
	files = append(files, "../README.md", "../SECURITY.md", "../CONTRIBUTING.md", "../CHANGELOG.md", "../examples/README.md")
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	heading := regexp.MustCompile(`(?m)^#{1,6} (.+)$`)
	anchors := map[string]map[string]bool{}
	anchorsOf := func(path string) map[string]bool {
		if a, ok := anchors[path]; ok {
			return a
		}
		a := map[string]bool{}
		b, err := os.ReadFile(path)
		if err == nil {
			inFence := false
			for _, line := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(line, "```") {
					inFence = !inFence
				}
				if m := heading.FindStringSubmatch(line); m != nil && !inFence {
					a[mdAnchor(m[1])] = true
				}
			}
		}
		anchors[path] = a
		return a
	}
	checked := 0
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, anchor, _ := strings.Cut(target, "#")
			resolved := file
			if path != "" {
				resolved = filepath.Join(filepath.Dir(file), path)
				if _, err := os.Stat(resolved); err != nil {
					t.Errorf("%s links to %s, which does not exist", file, target)
					continue
				}
			}
			if anchor != "" && strings.HasSuffix(resolved, ".md") && !anchorsOf(resolved)[anchor] {
				t.Errorf("%s links to %s, but %s has no heading #%s", file, target, resolved, anchor)
			}
			checked++
		}
	}
	if checked < 40 {
		t.Fatalf("test is void: %d links checked", checked)
	}
}
