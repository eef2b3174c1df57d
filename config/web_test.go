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
	if cfg, err := config.Parse([]byte(designConfig+"web: {site_url: 'https://shop.example.com/'}\n"), env(designEnv)); err != nil || cfg.Web.SiteURL != "https://shop.example.com/" {
		t.Fatalf("web.site_url: %v", err)
	}
	if cfg, err := config.Parse([]byte(designConfig), env(designEnv)); err != nil || cfg.Web.Dir != "" {
		t.Fatalf("without web: %v %q", err, cfg.Web.Dir)
	}
	for _, c := range []struct{ yaml, want string }{
		{"web: {dir: web/theme}", `web.dir: must be an absolute path, got "web/theme"`},
		{"web: {dir: " + filepath.Join(dir, "missing") + "}", "web.dir: stat " + filepath.Join(dir, "missing")},
		{"web: {dir: " + file + "}", "web.dir: " + file + " is not a directory"},
		{"web: {directory: " + dir + "}", "web.directory"},
		{"web: {site_url: shop.example.com}", `web.site_url: must be an absolute URL, got "shop.example.com"`},
		{"web: {site_url: 'javascript:alert(1)'}", `web.site_url: must use http or https, got scheme "javascript"`},
		{"web: {site_url: 'https://u:p@shop.example.com/'}", "web.site_url: must not contain user info"},
	} {
		_, err := config.Parse([]byte(designConfig+c.yaml+"\n"), env(designEnv))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.yaml, err, c.want)
		}
	}
}
