package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anteroom/anteroom/config"
)

func TestWebDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(designConfig+"web: {dir: "+dir+"}\n"), env(designEnv))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Web.Dir != dir {
		t.Fatalf("web.dir: %q", cfg.Web.Dir)
	}
	if cfg, err := config.Parse([]byte(designConfig), env(designEnv)); err != nil || cfg.Web.Dir != "" {
		t.Fatalf("without web: %v %q", err, cfg.Web.Dir)
	}
	for _, c := range []struct{ yaml, want string }{
		{"web: {dir: web/theme}", `web.dir: must be an absolute path, got "web/theme"`},
		{"web: {dir: " + filepath.Join(dir, "missing") + "}", "web.dir: stat " + filepath.Join(dir, "missing")},
		{"web: {dir: " + file + "}", "web.dir: " + file + " is not a directory"},
		{"web: {directory: " + dir + "}", "web.directory"},
	} {
		_, err := config.Parse([]byte(designConfig+c.yaml+"\n"), env(designEnv))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.yaml, err, c.want)
		}
	}
}
