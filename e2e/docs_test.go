package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
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
