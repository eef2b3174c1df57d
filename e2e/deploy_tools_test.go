package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The deployment tests (deploy_*_test.go) check the files under deploy/,
// examples/, Dockerfile and compose.yaml with the tools an operator runs
// them with: podman, helm, systemd-analyze, nginx.

// findTool returns the program the environment names in ANTEROOM_<TOOL>, or
// name on PATH. Without either the test is skipped, or fails when
// ANTEROOM_TEST_<TOOL>=required (as CI sets for every tool .ci/run
// provides); hint says how to get it.
func findTool(t *testing.T, name, hint string) string {
	t.Helper()
	env := "ANTEROOM_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	if p := os.Getenv(env); p != "" {
		bin, err := exec.LookPath(p)
		if err != nil {
			t.Fatalf("%s=%s: %v", env, p, err)
		}
		return bin
	}
	if bin, err := exec.LookPath(name); err == nil {
		return bin
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if bin := filepath.Join(dir, name); isExecutable(bin) {
			return bin
		}
	}
	required := "ANTEROOM_TEST_" + strings.TrimPrefix(env, "ANTEROOM_")
	if os.Getenv(required) == "required" {
		t.Fatalf("%s is required (%s=required) but neither %s nor PATH has it", name, required, env)
	}
	t.Skipf("%s not found: %s; set %s to the program or put it on PATH, and %s=required to fail instead", name, hint, env, required)
	return ""
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// repoFile reads a file of the repository by its path from the root.
func repoFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", filepath.FromSlash(path)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// replaceAll is strings.Replacer for a file of the repository that must
// contain every old string: an edit that drops one fails loudly instead of
// testing something else (as deployExample does for deploy/).
func replaceAll(t *testing.T, name, text string, subst map[string]string) string {
	t.Helper()
	for old, new := range subst {
		if !strings.Contains(text, old) {
			t.Fatalf("%s no longer contains %q", name, old)
		}
		text = strings.ReplaceAll(text, old, new)
	}
	return text
}
