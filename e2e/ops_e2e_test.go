//go:build unix

package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anteroom/anteroom/config"
	"github.com/anteroom/anteroom/server"
)

// serveAppWithOps is serveApp with the ops listener of cfg.Ops.Listen
// opened as `anteroom serve` opens it; it returns the ops address.
func serveAppWithOps(t *testing.T, cfg *config.Config, ln net.Listener) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	opsLn, err := net.Listen("tcp", cfg.Ops.Listen)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	a, err := server.New(ctx, cfg, redisServer.Client(t), server.WithOpsListener(opsLn))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = a.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done; opsLn.Close() })
	return opsLn.Addr().String()
}

// fetch makes one request and returns its status, headers and body.
func fetch(t *testing.T, c *http.Client, method, u string, body string, header ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var noRedirects = &http.Client{Timeout: 10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// With ops.listen, the operator's endpoints are served there and nowhere
// on the public listener, so no proxy can expose them by forwarding a
// path; the public listener keeps everything visitors and relying parties
// use, and the dashboard works on the ops listener by itself.
func TestOpsListenerTakesOperationsOffThePublicListener(t *testing.T) {
	if err := redisServer.FlushAll(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Issuer = "http://" + ln.Addr().String()
	cfg.Ops.Listen = "127.0.0.1:0"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ops := "http://" + serveAppWithOps(t, cfg, ln)
	public := cfg.Issuer
	bearer := []string{"Authorization", "Bearer " + adminToken}

	t.Run("the public listener has no operations", func(t *testing.T) {
		for _, path := range []string{"/metrics", "/healthz", "/readyz", "/ready", "/admin/", "/admin", "/admin/v1/rooms", "/admin/v1/keys", "/admin/v1/rooms/" + roomID + "/history"} {
			if resp, body := fetch(t, noRedirects, http.MethodGet, public+path, "", bearer...); resp.StatusCode != http.StatusNotFound {
				t.Errorf("public GET %s: %d, want 404: %.200s", path, resp.StatusCode, body)
			}
		}
		resp, _ := fetch(t, noRedirects, http.MethodPost, public+"/admin/login", "token="+adminToken, "Content-Type", "application/x-www-form-urlencoded")
		if resp.StatusCode < 400 || len(resp.Cookies()) != 0 {
			t.Errorf("public POST /admin/login: %d %v", resp.StatusCode, resp.Cookies())
		}
		resp, _ = fetch(t, noRedirects, http.MethodPost, public+"/admin/v1/rooms/"+roomID+"/advance", `{"count":1}`, bearer...)
		if resp.StatusCode < 400 {
			t.Errorf("public advance: %d", resp.StatusCode)
		}
	})
	t.Run("the public listener serves visitors and relying parties", func(t *testing.T) {
		for _, path := range []string{"/.well-known/openid-configuration", "/keys", "/api/v1/rooms/" + roomID, "/static/style.css"} {
			if resp, _ := fetch(t, noRedirects, http.MethodGet, public+path, ""); resp.StatusCode != http.StatusOK {
				t.Errorf("public GET %s: %d", path, resp.StatusCode)
			}
		}
	})
	t.Run("the ops listener answers", func(t *testing.T) {
		if resp, body := fetch(t, noRedirects, http.MethodGet, ops+"/healthz", ""); resp.StatusCode != http.StatusOK || body != "ok\n" {
			t.Errorf("healthz: %d %q", resp.StatusCode, body)
		}
		if resp, body := fetch(t, noRedirects, http.MethodGet, ops+"/readyz", ""); resp.StatusCode != http.StatusOK || body != "ready\n" {
			t.Errorf("readyz: %d %q", resp.StatusCode, body)
		}
		if resp, body := fetch(t, noRedirects, http.MethodGet, ops+"/metrics", ""); resp.StatusCode != http.StatusOK || !strings.Contains(body, "anteroom_room_waiting") {
			t.Errorf("metrics: %d %.200s", resp.StatusCode, body)
		}
		if resp, body := fetch(t, noRedirects, http.MethodGet, ops+"/admin/v1/rooms", "", bearer...); resp.StatusCode != http.StatusOK || !strings.Contains(body, `"`+roomID+`"`) {
			t.Errorf("admin API: %d %.200s", resp.StatusCode, body)
		}
		if resp, _ := fetch(t, noRedirects, http.MethodGet, ops+"/admin/v1/rooms", ""); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("admin API without the token: %d, want 401", resp.StatusCode)
		}
		// Nothing public is served there.
		for _, path := range []string{"/.well-known/openid-configuration", "/api/v1/rooms/" + roomID, "/authorize"} {
			if resp, _ := fetch(t, noRedirects, http.MethodGet, ops+path, ""); resp.StatusCode != http.StatusNotFound {
				t.Errorf("ops GET %s: %d, want 404", path, resp.StatusCode)
			}
		}
	})
	t.Run("the dashboard works on the ops listener", func(t *testing.T) {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
		resp, body := fetch(t, c, http.MethodGet, ops+"/admin", "")
		if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != ops+"/admin/" ||
			!strings.Contains(body, `action="/admin/login"`) || !strings.Contains(body, `href="/static/dashboard.css"`) {
			t.Fatalf("sign-in page: %d at %s: %.600s", resp.StatusCode, resp.Request.URL, body)
		}
		if resp, _ := fetch(t, c, http.MethodGet, ops+"/static/dashboard.js", ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("dashboard.js on the ops listener: %d", resp.StatusCode)
		}
		resp, _ = fetch(t, noRedirects, http.MethodPost, ops+"/admin/login", url.Values{"token": {adminToken}}.Encode(), "Content-Type", "application/x-www-form-urlencoded")
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/" {
			t.Fatalf("sign-in: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		cookie := resp.Header.Get("Set-Cookie")
		if !strings.Contains(cookie, "Path=/admin/;") || strings.Contains(cookie, "Secure") {
			t.Fatalf("dashboard cookie %q: want Path=/admin/ and no Secure (the ops listener is plain HTTP)", cookie)
		}
		resp, body = fetch(t, c, http.MethodPost, ops+"/admin/login", url.Values{"token": {adminToken}}.Encode(), "Content-Type", "application/x-www-form-urlencoded")
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-api="/admin/v1"`) {
			t.Fatalf("dashboard: %d %.400s", resp.StatusCode, body)
		}
		if resp, _ := fetch(t, c, http.MethodGet, ops+"/admin/v1/rooms", ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("admin API with the dashboard's cookie: %d", resp.StatusCode)
		}
	})
}

// Without ops.listen (the default), the operator's endpoints stay on the
// one listener, which itself defaults to loopback: existing deployments,
// their probes and scrapes keep working.
func TestWithoutOpsListenOperationsStayOnTheListener(t *testing.T) {
	e := newEnv(t, false, nil)
	_, addr := e.start()
	for _, path := range []string{"/metrics", "/healthz", "/readyz", "/admin/"} {
		if resp, _ := fetch(t, noRedirects, http.MethodGet, "http://"+addr+path, ""); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
	}
}

// nginxExampleConfig is the Anteroom configuration in the header comment of
// deploy/nginx/anteroom.conf, completed with what the comment leaves out
// (secrets, the room, Redis) and pointed at issuer.
func nginxExampleConfig(t *testing.T, issuer string) *config.Config {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "deploy", "nginx", "anteroom.conf"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "Anteroom's configuration:\n#\n")
	if !ok {
		t.Fatal("deploy/nginx/anteroom.conf has no \"Anteroom's configuration:\" in its header")
	}
	var yaml strings.Builder
	for _, line := range strings.Split(rest, "\n") {
		if line == "#" || !strings.HasPrefix(line, "#   ") {
			break
		}
		yaml.WriteString(strings.TrimPrefix(line, "#   ") + "\n")
	}
	doc := strings.Replace(yaml.String(), "issuer: https://shop.example.com/_anteroom", "issuer: "+issuer, 1)
	if doc == yaml.String() {
		t.Fatalf("the header's configuration has no issuer https://shop.example.com/_anteroom:\n%s", yaml.String())
	}
	doc += fmt.Sprintf("secrets: {cookie_keys: [%q]}\nadmin: {token: %q}\nrooms: [{id: launch, max_wait: 1h}]\n", cookieKey, adminToken)
	cfg, err := config.Parse([]byte(doc), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("the header's configuration does not load: %v\n%s", err, doc)
	}
	return cfg
}

// exampleSite runs deploy/nginx/anteroom.conf in a real nginx in front of
// an upstream and an Anteroom for cfg (ops listener included, when set);
// it returns nginx's base URL.
func exampleSite(t *testing.T, cfg *config.Config, nginxAddr string) string {
	t.Helper()
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		if os.Getenv("ANTEROOM_TEST_NGINX") == "required" {
			t.Fatal("nginx is required (ANTEROOM_TEST_NGINX=required) but not installed")
		}
		t.Skip("nginx not installed (set ANTEROOM_TEST_NGINX=required to fail instead)")
	}
	if err := redisServer.FlushAll(); err != nil {
		t.Fatal(err)
	}
	upstream := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "app: %s", r.URL.Path) })}
	appLn, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() { _ = upstream.Serve(appLn) }()
	t.Cleanup(func() { upstream.Close() })
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	if cfg.Ops.Separate() {
		serveAppWithOps(t, cfg, ln)
	} else {
		serveApp(t, cfg, ln, nil)
	}
	conf := deployExample(t, map[string]string{
		"server 127.0.0.1:3000;": "server " + appLn.Addr().String() + ";",
		"server 127.0.0.1:8080;": "server " + ln.Addr().String() + ";",
		"listen 80;":             "listen " + nginxAddr + ";",
	}, "nginx", "anteroom.conf")
	startNginx(t, nginx, conf, nginxAddr)
	return "http://" + nginxAddr
}

// The shipped nginx config refuses the operator's paths under /_anteroom/
// itself, so even an Anteroom configured without ops.listen exposes none
// of them through it, in any spelling nginx normalises to them; the rest
// of /_anteroom/ is still proxied.
func TestNginxExampleRefusesOperations(t *testing.T) {
	nginxAddr := freeAddr(t)
	base := "http://" + nginxAddr
	cfg := nginxExampleConfig(t, base+"/_anteroom")
	cfg.Ops.Listen = "" // the nginx rule alone must refuse them
	if cfg.Gate != nil {
		insecure := false
		cfg.Gate.Cookie.Secure = &insecure
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	exampleSite(t, cfg, nginxAddr)
	for _, path := range []string{
		"/_anteroom/metrics", "/_anteroom/healthz", "/_anteroom/readyz",
		"/_anteroom/admin", "/_anteroom/admin/", "/_anteroom/admin/v1/rooms", "/_anteroom/admin/v1/keys",
		"/_anteroom/%61dmin/", "/_anteroom//metrics", "/_anteroom/wait/../metrics", "/_anteroom/%6detrics",
	} {
		// A raw request: Go's client would clean some of these paths.
		conn, err := net.Dial("tcp", nginxAddr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: shop.example.com\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n", path, adminToken)
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		head, _ := io.ReadAll(conn)
		conn.Close()
		status, _, _ := strings.Cut(string(head), "\r\n")
		if status != "HTTP/1.1 404 Not Found" {
			t.Errorf("GET %s through nginx: %q, want 404", path, status)
		}
	}
	resp, body := fetch(t, noRedirects, http.MethodPost, base+"/_anteroom/admin/login", "token="+adminToken, "Content-Type", "application/x-www-form-urlencoded")
	if resp.StatusCode != http.StatusNotFound || len(resp.Cookies()) != 0 {
		t.Errorf("POST /_anteroom/admin/login through nginx: %d %v %.200s", resp.StatusCode, resp.Cookies(), body)
	}
	if resp, _ := fetch(t, noRedirects, http.MethodGet, base+"/_anteroom/.well-known/openid-configuration", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("discovery through nginx: %d", resp.StatusCode)
	}
}

// Behind the shipped nginx config, with the Anteroom configuration of its
// header (limits.trusted_proxies), the join limit counts each visitor's
// own address, not nginx's: two clients with different X-Forwarded-For
// are limited separately, so one address reaching the limit does not lock
// out the crowd. What a client writes in X-Forwarded-For itself is to the
// left of what nginx appends ($proxy_add_x_forwarded_for), so here it
// stands for the address nginx saw, as it would behind a CDN that is a
// trusted proxy too.
func TestNginxExampleJoinLimitCountsEachClient(t *testing.T) {
	nginxAddr := freeAddr(t)
	base := "http://" + nginxAddr
	cfg := nginxExampleConfig(t, base+"/_anteroom")
	if len(cfg.Limits.TrustedProxies) == 0 {
		t.Fatal("the header's configuration sets no limits.trusted_proxies")
	}
	// Only the header's trusted proxies make nginx's peer address a
	// proxy; the test client is on loopback as nginx is, so everything
	// left of nginx's hop is what the test sends.
	cfg.Limits.JoinsPerIPPerMinute, cfg.Limits.Burst = 1, 1
	cfg.Ops.Listen = "127.0.0.1:0"
	insecure := false
	cfg.Gate.Cookie.Secure = &insecure
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	exampleSite(t, cfg, nginxAddr)
	join := func(client string) int {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
		resp, body := fetch(t, c, http.MethodGet, base+"/shop", "", "X-Forwarded-For", client)
		if resp.StatusCode == http.StatusOK && !strings.Contains(resp.Request.URL.Path, "/_anteroom/wait/") {
			t.Fatalf("%s: not queued: %s %.200s", client, resp.Request.URL, body)
		}
		return resp.StatusCode
	}
	if got := join("203.0.113.1"); got != http.StatusOK {
		t.Fatalf("first client's join: %d", got)
	}
	if got := join("203.0.113.2"); got != http.StatusOK {
		t.Fatalf("second client's join, with the first at its limit: %d, want the waiting page", got)
	}
	if got := join("203.0.113.1"); got != http.StatusTooManyRequests {
		t.Fatalf("first client's second join: %d, want 429 (the limit is one a minute)", got)
	}
}
