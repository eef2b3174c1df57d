package e2e

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// deploy/systemd/anteroom.service is a valid unit (systemd-analyze verify:
// no error, no warning), carries the hardening docs/operations.md promises, and
// systemd's own rating of it (systemd-analyze security, offline: it reads
// the file, not a running manager) is the one docs/operations.md states, at most
// 2.0 of 10 ("OK").
func TestSystemdUnitIsHardened(t *testing.T) {
	analyze := findTool(t, "systemd-analyze", "apt-get install systemd")
	unit := repoFile(t, "deploy/systemd/anteroom.service")

	service := map[string][]string{}
	section := ""
	for sc := bufio.NewScanner(strings.NewReader(unit)); sc.Scan(); {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			k, v, _ := strings.Cut(line, "=")
			service[k] = append(service[k], v)
		}
	}
	for k, want := range map[string]string{
		"DynamicUser":             "yes",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"NoNewPrivileges":         "yes",
		"MemoryDenyWriteExecute":  "yes",
		"CapabilityBoundingSet":   "",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
		"SystemCallFilter":        "@system-service",
		"ExecStart":               "/usr/local/bin/anteroom serve --config /etc/anteroom/anteroom.yaml",
	} {
		if got := service[k]; len(got) == 0 || got[0] != want {
			t.Errorf("[Service] %s=%q, want %q", k, got, want)
		}
	}

	// The unit as installed, but with this checkout's binary: verify
	// checks that ExecStart's program exists and is executable.
	dir := t.TempDir()
	path := filepath.Join(dir, "anteroom.service")
	local := replaceAll(t, "deploy/systemd/anteroom.service", unit, map[string]string{
		"ExecStart=/usr/local/bin/anteroom ": "ExecStart=" + anteroomBinary(t) + " ",
	})
	if err := os.WriteFile(path, []byte(local), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command(analyze, "security", "--offline=true", "--threshold=20", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security --threshold=20: %v (the exposure is above 2.0; the threshold counts tenths)\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for anteroom\.service: ([0-9.]+) (\w+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security: no overall exposure in\n%s", out)
	}
	t.Logf("systemd-analyze security: exposure %s %s", m[1], m[2])
	claim := "`systemd-analyze security` rates it " + string(m[1]) + " (" + string(m[2]) + ")"
	if doc := repoFile(t, "docs/operations.md"); !strings.Contains(doc, claim) {
		t.Errorf("docs/operations.md does not say %q", claim)
	}
}
