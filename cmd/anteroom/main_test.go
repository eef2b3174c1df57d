package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anteroom/anteroom/config"
)

func TestServeStopsOnABadConfigWithExitCode2AndTheKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "anteroom.yaml")
	bad := `issuer: https://queue.example.com
redis: {url: redis://127.0.0.1:1/0}
secrets: {cookie_keys: ["0123456789abcdef0123456789abcdef"]}
rooms:
  - id: launch
    admission: {rate_per_minute: 0}
clients:
  - id: shop
    secret: shop-secret-0123456789
    redirect_uris: [https://shop.example.com/cb]
    room: launch
`
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"serve", "--config", path}, &stdout, &stderr); code != exitConfig {
		t.Fatalf("exit code %d, want %d; stderr: %s", code, exitConfig, stderr.String())
	}
	if !strings.Contains(stderr.String(), "rooms[0].admission.rate_per_minute: must be > 0") {
		t.Fatalf("stderr does not name the key: %s", stderr.String())
	}
}

func TestServeWithoutRedisIsAConfigError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "anteroom.yaml")
	cfg := `issuer: https://queue.example.com
secrets: {cookie_keys: ["0123456789abcdef0123456789abcdef"]}
rooms: [{id: launch}]
clients: [{id: shop, secret: shop-secret-0123456789, redirect_uris: ["https://shop.example.com/cb"], room: launch}]
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"serve", "--config", path}, &stdout, &stderr); code != exitConfig || !strings.Contains(stderr.String(), "redis") {
		t.Fatalf("exit %d, stderr %s", code, stderr.String())
	}
}

func TestUnknownCommandAndVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"frobnicate"}, &stdout, &stderr); code != exitConfig {
		t.Fatalf("unknown command: exit %d", code)
	}
	stdout.Reset()
	if code := run([]string{"version"}, &stdout, &stderr); code != 0 || !strings.HasPrefix(stdout.String(), "anteroom ") {
		t.Fatalf("version: %d %q", code, stdout.String())
	}
}

func TestDemoConfigValidates(t *testing.T) {
	cfg := demoConfig("http://127.0.0.1:8080", "http://127.0.0.1:8081")
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Secrets.CookieKeys[0] == demoConfig("http://127.0.0.1:8080", "http://127.0.0.1:8081").Secrets.CookieKeys[0] {
		t.Fatal("demo secrets are not random")
	}
}

// TestServeLogsConfigWarnings: serve logs each configuration warning at
// start-up, naming the file and the rules, such as a good-bot bypass before
// a block rule.
func TestServeLogsConfigWarnings(t *testing.T) {
	cfg := &config.Config{Gate: &config.Gate{Rules: []config.Rule{
		{UserAgent: "good_bots", Action: "bypass"},
		{PathPrefix: "/admin/", Action: "block"},
		{PathPrefix: "/", Action: "queue", Room: "launch"},
	}}}
	var buf bytes.Buffer
	logConfigWarnings(slog.New(slog.NewTextHandler(&buf, nil)), "/etc/anteroom.yaml", cfg)
	out := buf.String()
	if strings.Count(out, "\n") != 1 || !strings.Contains(out, "level=WARN") || !strings.Contains(out, "config=/etc/anteroom.yaml") ||
		!strings.Contains(out, "gate.rules[0]: this user_agent bypass comes before gate.rules[1] (block, path_prefix /admin/)") {
		t.Fatalf("logged %q", out)
	}
	buf.Reset()
	cfg.Gate.Rules[0], cfg.Gate.Rules[1] = cfg.Gate.Rules[1], cfg.Gate.Rules[0]
	if logConfigWarnings(slog.New(slog.NewTextHandler(&buf, nil)), "x", cfg); buf.Len() != 0 {
		t.Fatalf("the fixed order logged %q", buf.String())
	}
}
