package main

import (
	"bytes"
	"flag"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
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

func TestVersionNamesTheModuleVersionAndCommit(t *testing.T) {
	bi := &debug.BuildInfo{Main: debug.Module{Path: "github.com/anteroom/anteroom", Version: "v0.0.0-20260102030405-0123456789ab+dirty"},
		Settings: []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2026-01-02T03:04:05Z"}, {Key: "vcs.modified", Value: "true"}}}
	for _, x := range []struct {
		override string
		bi       *debug.BuildInfo
		want     string
	}{
		{"", bi, "v0.0.0-20260102030405-0123456789ab+dirty (commit 0123456789abcdef0123456789abcdef01234567, 2026-01-02T03:04:05Z, modified)"},
		{"v1.2.0", bi, "v1.2.0 (commit 0123456789abcdef0123456789abcdef01234567, 2026-01-02T03:04:05Z, modified)"},
		{"", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "(devel)"},
		{"v1.2.0", nil, "v1.2.0"},
		{"", nil, "(devel)"},
	} {
		if got := describeBuild(x.override, x.bi).String(); got != x.want {
			t.Errorf("describeBuild(%q): %q, want %q", x.override, got, x.want)
		}
	}
}

// A binary built from a git checkout says which commit it is, and a
// release's -ldflags -X main.version names its version; `go run` and
// `go test` binaries carry no VCS stamp, so this builds one.
func TestBuiltBinaryReportsItsCommitAndReleaseVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "anteroom")
	// -buildvcs=true: a GOFLAGS of the machine's may turn stamping off.
	build := exec.Command("go", "build", "-buildvcs=true", "-ldflags", "-X main.version=v9.8.7-test", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "anteroom v9.8.7-test") {
		t.Fatalf("version: %q, want the -X main.version", out)
	}
	gitDir, err1 := exec.Command("git", "rev-parse", "--absolute-git-dir").Output()
	common, err2 := exec.Command("git", "rev-parse", "--path-format=absolute", "--git-common-dir").Output()
	if err1 != nil || err2 != nil {
		t.Skipf("not a git checkout: %v %v", err1, err2)
	}
	if string(gitDir) != string(common) {
		t.Skip("a linked git worktree: the go command stamps no VCS information there")
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := "anteroom v9.8.7-test (commit " + strings.TrimSpace(string(head)) + ", "; !strings.HasPrefix(string(out), want) {
		t.Fatalf("version: %q, want it to start %q", out, want)
	}
}

// Asking a command for help is no error: its usage on stdout, exit 0.
func TestEveryCommandsHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "--help"}, {"serve", "-h"}, {"demo", "--help"}, {"demo", "-h"},
		{"admin", "--help"}, {"admin", "-h"}, {"admin", "advance", "--help"}, {"help"}, {"--help"},
		{"edge", "--help"}, {"edge", "-h"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(args, &stdout, &stderr)
		if code != 0 || !strings.Contains(stdout.String(), "usage:") || stderr.Len() != 0 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 0 and the usage on stdout", args, code, stdout.String(), stderr.String())
		}
	}
	// A flag that does not exist, or a stray argument, is a usage error.
	for _, args := range [][]string{{"serve", "--colour"}, {"serve", "--config", "x.yaml", "extra"}, {"demo", "--colour"}} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != exitConfig || !strings.Contains(stderr.String(), "usage:") || stdout.Len() != 0 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit %d and the usage on stderr", args, code, stdout.String(), stderr.String(), exitConfig)
		}
	}
}

// The demo's hints name the command the user ran: `go run` builds into a
// temporary directory that is gone once it exits, and a binary run by its
// path is not on PATH as "anteroom".
func TestDemoHintsNameTheCommandThatWasRun(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	in := func(dir string) func() (string, error) { return func() (string, error) { return dir, nil } }
	goBuild := filepath.Join(os.TempDir(), "go-build1234567", "b001", "exe", "anteroom")
	for _, x := range []struct {
		arg0  string
		getwd func() (string, error)
		want  string
	}{
		{goBuild, in(root), "go run ./cmd/anteroom"},
		{goBuild, in(filepath.Join(root, "cmd", "anteroom")), "go run ."},
		{goBuild, in(t.TempDir()), "go run github.com/anteroom/anteroom/cmd/anteroom"},
		{"anteroom", in(root), "anteroom"},
		{"/usr/local/bin/anteroom", in(root), "/usr/local/bin/anteroom"},
		{"./anteroom", in(root), filepath.Join(mustGetwd(t), "anteroom")},
		{"/opt/my tools/anteroom", in(root), "'/opt/my tools/anteroom'"},
	} {
		if got := selfCommand(x.arg0, x.getwd); got != x.want {
			t.Errorf("selfCommand(%q): %q, want %q", x.arg0, got, x.want)
		}
	}
}

func mustGetwd(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}

// `advance ROOM -1` is a count that is not positive, not an unknown flag
// -1; and flags stand anywhere among the arguments of every command.
func TestAdminArgumentsNegativeNumbersAndFlagOrder(t *testing.T) {
	t.Setenv("ANTEROOM_ADMIN_TOKEN", "")
	for _, n := range []string{"-1", "-0", "-2.5", "0", "1.5", "x"} {
		var stdout, stderr bytes.Buffer
		code := adminCmd(t.Context(), []string{"advance", "demo", n}, func(string) string { return "" }, &stdout, &stderr)
		want := `anteroom admin: advance: the count N must be a positive whole number (how many people to let in), got "` + n + `"`
		if code != exitConfig || !strings.HasPrefix(stderr.String(), want+"\n") {
			t.Errorf("advance demo %s: exit %d, %q; want %q", n, code, stderr.String(), want)
		}
	}
	newFlags := func() *flag.FlagSet {
		fs := flag.NewFlagSet("admin", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		fs.String("url", "", "")
		fs.Bool("json", false, "")
		fs.Float64("rate", 0, "")
		return fs
	}
	for _, x := range []struct {
		args []string
		pos  string
		set  string
	}{
		{[]string{"advance", "demo", "-1"}, "advance demo -1", ""},
		{[]string{"--json", "advance", "demo", "-1"}, "advance demo -1", "json=true"},
		{[]string{"advance", "--json", "demo", "-1", "--url", "http://x"}, "advance demo -1", "json=true url=http://x"},
		{[]string{"set", "demo", "--rate", "-1"}, "set demo", "rate=-1"},
		{[]string{"set", "--rate=-1", "demo"}, "set demo", "rate=-1"},
		{[]string{"--url=http://x", "status", "demo", "--json"}, "status demo", "json=true url=http://x"},
		{[]string{"status", "--", "--json"}, "status --json", ""},
		{[]string{"status", "-"}, "status -", ""},
	} {
		fs := newFlags()
		pos, err := parseInterspersed(fs, x.args)
		var set []string
		fs.Visit(func(f *flag.Flag) { set = append(set, f.Name+"="+f.Value.String()) })
		if err != nil || strings.Join(pos, " ") != x.pos || strings.Join(set, " ") != x.set {
			t.Errorf("%q: positional %q, flags %q, err %v; want %q and %q", x.args, pos, set, err, x.pos, x.set)
		}
	}
	if _, err := parseInterspersed(newFlags(), []string{"status", "--colour"}); err == nil {
		t.Error("an unknown flag is accepted")
	}
	if _, err := parseInterspersed(newFlags(), []string{"set", "demo", "--rate"}); err == nil {
		t.Error("a flag without its value is accepted")
	}
}

// A protocol Anteroom cannot export with is a configuration error that
// names the variable, before anything starts: the spans would otherwise go
// to a gRPC port that cannot read them, and nobody would know.
func TestServeRefusesATracingProtocolItCannotSpeak(t *testing.T) {
	path := filepath.Join(t.TempDir(), "anteroom.yaml")
	cfg := `issuer: https://queue.example.com
redis: {url: redis://127.0.0.1:1/0}
secrets: {cookie_keys: ["0123456789abcdef0123456789abcdef"]}
rooms: [{id: launch}]
clients: [{id: shop, secret: shop-secret-0123456789, redirect_uris: ["https://shop.example.com/cb"], room: launch}]
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"serve", "--config", path}, &stdout, &stderr); code != exitConfig || !strings.Contains(stderr.String(), "OTEL_EXPORTER_OTLP_PROTOCOL=grpc") {
		t.Fatalf("exit %d, stderr %s", code, stderr.String())
	}
}
