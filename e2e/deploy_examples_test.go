//go:build linux

package e2e

import (
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/anteroom/anteroom/config"
	"github.com/anteroom/anteroom/internal/rediskey"
	"github.com/anteroom/anteroom/internal/testredis"
)

// loadExample loads an example's anteroom.yaml as `anteroom serve` does
// (config.Load and RequireRedis), with every ${NAME} it names set in the
// environment to a value long enough for any key.
func loadExample(t *testing.T, path string) *config.Config {
	t.Helper()
	text := repoFile(t, path)
	for _, m := range regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`).FindAllStringSubmatch(text, -1) {
		t.Setenv(m[1], "example-secret-"+strings.Repeat("0123456789", 4))
	}
	cfg, err := config.Load(filepath.Join("..", path))
	if err == nil {
		err = cfg.RequireRedis()
	}
	if err != nil {
		t.Fatalf("%s does not load: %v", path, err)
	}
	return cfg
}

// checkNginxGate checks an Anteroom configuration against the nginx gate
// in front of it: nginx's upstream is Anteroom's listen, the prefix nginx
// serves Anteroom under is the issuer's path, nginx proxies nothing to
// ops.listen, and the gate is configured.
func checkNginxGate(t *testing.T, name string, cfg *config.Config, conf string) {
	t.Helper()
	conf = regexp.MustCompile(`(?m)#.*$`).ReplaceAllString(conf, "") // nginx's directives alone
	u, err := url.Parse(cfg.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(conf, "location "+u.Path+"/ {") {
		t.Errorf("%s: issuer %s, but nginx serves Anteroom under no location %s/", name, cfg.Issuer, u.Path)
	}
	// An upstream server is Anteroom's listen: the same port, and the same
	// host unless Anteroom listens on every interface (in a container).
	host, port, _ := net.SplitHostPort(cfg.Listen)
	upstream := regexp.MustCompile(`(?s)upstream anteroom \{([^}]*)\}`).FindStringSubmatch(conf)
	if upstream == nil {
		t.Fatalf("%s: nginx has no upstream anteroom", name)
	}
	reached := false
	for _, m := range regexp.MustCompile(`server ([^\s;]+);`).FindAllStringSubmatch(upstream[1], -1) {
		h, p, _ := net.SplitHostPort(m[1])
		reached = reached || p == port && (h == host || host == "0.0.0.0" || host == "")
	}
	if !reached {
		t.Errorf("%s: listen %s is not nginx's upstream anteroom", name, cfg.Listen)
	}
	if !cfg.Ops.Separate() || strings.Contains(conf, cfg.Ops.Listen) {
		t.Errorf("%s: ops.listen %q must be set and not proxied by nginx", name, cfg.Ops.Listen)
	}
	if cfg.Gate == nil {
		t.Errorf("%s: no gate for nginx's auth_request", name)
	}
}

// oneClient returns the configuration's client named id.
func oneClient(t *testing.T, name string, cfg *config.Config, id string) config.Client {
	t.Helper()
	for _, c := range cfg.Clients {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("%s: no client %q, which the front's configuration names", name, id)
	return config.Client{}
}

// Every example under examples/ loads as `anteroom serve` loads it, and
// agrees with the configuration of what stands in front of it (deploy/):
// the client, redirect URI and issuer the relying party uses, the address
// and prefix nginx proxies to. Those front files are run for real by the
// nginx, oauth2-proxy and Apache tests.
func TestExamplesLoad(t *testing.T) {
	checks := map[string]func(t *testing.T, name string, cfg *config.Config){
		"nginx-gate": func(t *testing.T, name string, cfg *config.Config) {
			checkNginxGate(t, name, cfg, repoFile(t, "deploy/nginx/anteroom.conf"))
		},
		"redis-cluster": func(t *testing.T, name string, cfg *config.Config) {
			checkNginxGate(t, name, cfg, repoFile(t, "deploy/nginx/anteroom.conf"))
			if len(cfg.Redis.Addrs) < 3 || cfg.Redis.URL != "" || cfg.Redis.MasterName != "" {
				t.Errorf("%s: redis %+v is not a Cluster's seeds", name, cfg.Redis)
			}
		},
		// The README's guide, which TestQuickstartInTheREADME runs.
		"quickstart": func(t *testing.T, name string, cfg *config.Config) {
			checkNginxGate(t, name, cfg, repoFile(t, "examples/quickstart/nginx.conf"))
		},
		"compose": func(t *testing.T, name string, cfg *config.Config) {
			checkNginxGate(t, name, cfg, repoFile(t, "examples/compose/nginx.conf"))
		},
		"oauth2-proxy": func(t *testing.T, name string, cfg *config.Config) {
			conf := repoFile(t, "deploy/oauth2-proxy/oauth2-proxy.cfg")
			c := oneClient(t, name, cfg, o2pOption(t, conf, "client_id"))
			if issuer := o2pOption(t, conf, "oidc_issuer_url"); issuer != cfg.Issuer {
				t.Errorf("%s: issuer %s, oauth2-proxy's oidc_issuer_url %s", name, cfg.Issuer, issuer)
			}
			if r := o2pOption(t, conf, "redirect_url"); !slices.Contains(c.RedirectURIs, r) {
				t.Errorf("%s: oauth2-proxy's redirect_url %s is not among %q", name, r, c.RedirectURIs)
			}
			if o2pOption(t, conf, "code_challenge_method") != "S256" || !c.RequirePKCE || c.Public() {
				t.Errorf("%s: a confidential client with PKCE, as oauth2-proxy sends it", name)
			}
		},
		"apache": func(t *testing.T, name string, cfg *config.Config) {
			conf := repoFile(t, "deploy/apache/anteroom.conf")
			c := oneClient(t, name, cfg, apacheDirective(t, conf, "OIDCClientID"))
			if m := apacheDirective(t, conf, "OIDCProviderMetadataURL"); m != cfg.Issuer+"/.well-known/openid-configuration" {
				t.Errorf("%s: issuer %s, mod_auth_openidc reads discovery at %s", name, cfg.Issuer, m)
			}
			if r := apacheDirective(t, conf, "OIDCRedirectURI"); !slices.Contains(c.RedirectURIs, r) {
				t.Errorf("%s: OIDCRedirectURI %s is not among %q", name, r, c.RedirectURIs)
			}
			if apacheDirective(t, conf, "OIDCPKCEMethod") != "S256" || !c.RequirePKCE || c.Public() {
				t.Errorf("%s: a confidential client with PKCE, as mod_auth_openidc sends it", name)
			}
		},
	}
	entries, err := os.ReadDir("../examples")
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		name := e.Name()
		t.Run(name, func(t *testing.T) {
			check, ok := checks[name]
			if !ok {
				t.Fatalf("examples/%s: no check in TestExamplesLoad", name)
			}
			check(t, "examples/"+name, loadExample(t, "examples/"+name+"/anteroom.yaml"))
		})
		seen++
	}
	if seen != len(checks) {
		t.Errorf("examples/ has %d examples, TestExamplesLoad checks %d", seen, len(checks))
	}
}

// compose.yaml names only files and images that exist or that the
// Dockerfile builds, runs two hardened Anteroom instances on one Redis
// that keeps an append-only file on a volume, and puts nginx in front
// with deploy/nginx/anteroom.conf pointed at the services: the file it
// mounts is that one with its upstreams changed, nothing else, and nginx
// accepts it (nginx -t, and it starts).
func TestComposeFileReferencesWhatExists(t *testing.T) {
	var compose struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Command     []string          `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
			ReadOnly    bool              `yaml:"read_only"`
			User        string            `yaml:"user"`
			CapDrop     []string          `yaml:"cap_drop"`
			Ports       []string          `yaml:"ports"`
		} `yaml:"services"`
		Volumes map[string]any `yaml:"volumes"`
	}
	if err := yaml.Unmarshal([]byte(repoFile(t, "compose.yaml")), &compose); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	for _, name := range []string{"redis", "anteroom-1", "anteroom-2", "nginx", "site"} {
		if _, ok := compose.Services[name]; !ok {
			t.Errorf("compose.yaml has no service %s", name)
		}
	}
	var anteroomConfig string
	for name, s := range compose.Services {
		if s.Image == "" {
			t.Errorf("service %s has no image", name)
		}
		for _, v := range s.Volumes {
			src, rest, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, "./") {
				if _, err := os.Stat(filepath.Join("..", src)); err != nil {
					t.Errorf("service %s mounts %s: %v", name, src, err)
				}
			} else if _, ok := compose.Volumes[src]; !ok {
				t.Errorf("service %s mounts the volume %s, which volumes: does not declare", name, src)
			}
			if strings.HasPrefix(rest, "/etc/anteroom/anteroom.yaml") {
				anteroomConfig = strings.TrimPrefix(src, "./")
			}
		}
	}
	a1, a2 := compose.Services["anteroom-1"], compose.Services["anteroom-2"]
	for _, s := range []string{"anteroom-1", "anteroom-2"} {
		a := compose.Services[s]
		// The Dockerfile's header builds localhost/anteroom:dev.
		if a.Image != "localhost/anteroom:dev" || !a.ReadOnly || a.User != "65532:65532" || !slices.Equal(a.CapDrop, []string{"ALL"}) {
			t.Errorf("service %s: image %q read_only %v user %q cap_drop %v", s, a.Image, a.ReadOnly, a.User, a.CapDrop)
		}
		if !slices.Equal(a.Command, []string{"serve", "--config", "/etc/anteroom/anteroom.yaml"}) {
			t.Errorf("service %s: command %q", s, a.Command)
		}
	}
	if !slices.Equal(a1.Volumes, a2.Volumes) || len(a1.Environment) != len(a2.Environment) {
		t.Error("the two Anteroom instances differ")
	}
	if anteroomConfig != "examples/compose/anteroom.yaml" {
		t.Errorf("the instances mount %q", anteroomConfig)
	}
	cfg := loadExample(t, anteroomConfig)
	if cfg.Redis.URL != "redis://redis:6379/0" {
		t.Errorf("examples/compose/anteroom.yaml: redis %s, want the service redis", cfg.Redis.URL)
	}
	for env := range a1.Environment {
		if !strings.Contains(repoFile(t, anteroomConfig), "${"+env+"}") {
			t.Errorf("compose.yaml sets %s, which %s does not read", env, anteroomConfig)
		}
	}
	redis := strings.Join(compose.Services["redis"].Command, " ")
	if !strings.Contains(redis, "--appendonly yes") || !slices.Contains(compose.Services["redis"].Volumes, "redis-data:/data") {
		t.Errorf("redis keeps no append-only file on a volume: command %q volumes %q", redis, compose.Services["redis"].Volumes)
	}

	// The gate's nginx configuration is deploy/nginx/anteroom.conf with the
	// compose services as its upstreams.
	want := replaceAll(t, "deploy/nginx/anteroom.conf", repoFile(t, "deploy/nginx/anteroom.conf"), map[string]string{
		"    server 127.0.0.1:3000;": "    server site:80;",
		"    server 127.0.0.1:8080;": "    server anteroom-1:8080;\n    server anteroom-2:8080;",
	})
	conf := repoFile(t, "examples/compose/nginx.conf")
	if _, body, _ := strings.Cut(conf, "\n\n"); body != want {
		t.Error("examples/compose/nginx.conf is no longer deploy/nginx/anteroom.conf with the compose upstreams: apply the change to both")
	}
	if !slices.Contains(compose.Services["nginx"].Volumes, "./examples/compose/nginx.conf:/etc/nginx/conf.d/default.conf:ro") {
		t.Errorf("nginx mounts %q", compose.Services["nginx"].Volumes)
	}
	// nginx resolves upstream names when it loads the file: here the
	// services are on the loopback.
	nginx := findTool(t, "nginx", "apt-get install nginx")
	addr := freeAddr(t)
	local := replaceAll(t, "examples/compose/nginx.conf", conf, map[string]string{
		"server site:80;":         "server 127.0.0.1:3000;",
		"server anteroom-1:8080;": "server 127.0.0.1:8080;",
		"server anteroom-2:8080;": "server 127.0.0.1:8081;",
		"listen 80;":              "listen " + addr + ";",
	})
	startNginx(t, nginx, local, addr)
}

// examples/redis-cluster/anteroom.yaml, pointed at a real three-master
// Redis Cluster the test starts (its seeds replaced, no password), runs
// as `anteroom serve`: the instance becomes ready, which it is only once
// it has written its rooms and signing keys to the Cluster, and its gate
// sends a visitor into the room's queue.
func TestRedisClusterExampleServes(t *testing.T) {
	cluster := testredis.StartCluster(t)
	listen, ops := freeAddr(t), freeAddr(t)
	seeds := `"` + strings.Join(cluster.Addrs(), `", "`) + `"`
	conf := replaceAll(t, "examples/redis-cluster/anteroom.yaml", repoFile(t, "examples/redis-cluster/anteroom.yaml"), map[string]string{
		"addrs: [10.0.0.11:6379, 10.0.0.12:6379, 10.0.0.13:6379]": "addrs: [" + seeds + "]",
		`  password: "${REDIS_PASSWORD}"` + "\n":                  "",
		"listen: 127.0.0.1:8080":                                  "listen: " + listen,
		"ops: {listen: 127.0.0.1:9090}":                           "ops: {listen: " + ops + "}",
	})
	path := filepath.Join(t.TempDir(), "anteroom.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(anteroomBinary(t), "serve", "--config", path)
	cmd.Env = append(os.Environ(), "ANTEROOM_COOKIE_KEY="+cookieKey, "ANTEROOM_ADMIN_TOKEN="+adminToken)
	output := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = output, output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{t: t, cmd: cmd, addr: ops, output: output, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.signal(syscall.SIGTERM)
		<-p.exited
		if t.Failed() {
			t.Logf("anteroom's output:\n%s", output.String())
		}
	})
	p.waitFor("/readyz")

	rdb := cluster.Client(t)
	if n, err := rdb.Exists(t.Context(), rediskey.SigningKeys).Result(); err != nil || n != 1 {
		t.Errorf("the Cluster holds no signing keys (%s): %v", rediskey.SigningKeys, err)
	}
	// A browser without a session is sent from the gate into the login of
	// the gate's client for the room the rules name (/checkout: checkout,
	// the rest: launch), whose authorization request joins its queue.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for path, room := range map[string]string{"/checkout/cart": "checkout", "/": "launch"} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+listen+"/gate/start?rd="+url.QueryEscape(path), nil)
		req.Header.Set("X-Original-URI", path)
		req.Header.Set("Accept", "text/html")
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || resp.StatusCode != http.StatusFound || loc.Scheme+"://"+loc.Host+loc.Path != "https://shop.example.com/_anteroom/authorize" ||
			loc.Query().Get("client_id") != "anteroom-gate-"+room {
			t.Errorf("gate start for %s: %d to %q, want the authorization of the %s room's gate client", path, resp.StatusCode, resp.Header.Get("Location"), room)
		}
	}
}
