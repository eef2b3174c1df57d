//go:build unix

package e2e

import (
	"encoding/json"
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
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/anteroom/anteroom/config"
)

// These tests run deploy/nginx/anteroom.conf in a real nginx, in front of a
// small upstream, with a real Anteroom behind it: what a site that copies
// the example gets.

type gateSite struct {
	t        *testing.T
	base     string // http://127.0.0.1:PORT, nginx
	upstream atomic.Int64
	lastSub  atomic.Pointer[string]
	clock    *clock
	anteroom string // Anteroom's own address, for the admin API
	nginxDir string // nginx's prefix: access.log and error.log are here
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startGateSite runs the example nginx configuration in front of an app
// and an Anteroom whose configuration mutate, if given, adjusts.
func startGateSite(t *testing.T, mutate ...func(*config.Config)) *gateSite {
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
	s := &gateSite{t: t, clock: newClock()}

	// The protected app counts what reaches it.
	app := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.upstream.Add(1)
		sub := r.Header.Get("X-Anteroom-Sub")
		s.lastSub.Store(&sub)
		fmt.Fprintf(w, "app: %s sub=%s room=%s", r.URL.Path, sub, r.Header.Get("X-Anteroom-Room"))
	})}
	appLn, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() { _ = app.Serve(appLn) }()
	t.Cleanup(func() { app.Close() })

	nginxAddr := freeAddr(t)
	s.base = "http://" + nginxAddr
	insecure := false
	cfg := testConfig()
	cfg.Issuer = s.base + "/_anteroom"
	cfg.Rooms = append(cfg.Rooms, config.Room{ID: "checkout", Name: "Checkout",
		SessionTTL: config.Duration(30 * time.Minute), MaxWait: config.Duration(time.Hour)})
	cfg.Gate = &config.Gate{
		Cookie:       config.GateCookie{Secure: &insecure},
		DynamicPaths: []string{"/checkout"},
		Rules: []config.Rule{
			{PathPrefix: "/static/", Action: "bypass"},
			{PathPrefix: "/admin-only/", Action: "block"},
			{UserAgent: "good_bots", Action: "bypass"},
			{PathPrefix: "/checkout", Action: "queue", Room: "checkout"},
			{PathPrefix: "/", Action: "queue", Room: roomID},
		},
	}
	for _, m := range mutate {
		m(cfg)
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	serveApp(t, cfg, ln, s.clock.Now)
	s.anteroom = ln.Addr().String()

	// The example configuration, pointed at this test's ports.
	conf := deployExample(t, map[string]string{
		"server 127.0.0.1:3000;": "server " + appLn.Addr().String() + ";",
		"server 127.0.0.1:8080;": "server " + s.anteroom + ";",
		"listen 80;":             "listen " + nginxAddr + ";",
	}, "nginx", "anteroom.conf")
	s.nginxDir = startNginx(t, nginx, conf, nginxAddr)
	return s
}

// startNginx runs nginx with conf (a file for its http block, such as
// deploy/nginx/anteroom.conf pointed at the test's ports) until the test
// ends, once nginx -t has accepted it and nginx listens on addr. It
// returns nginx's directory, which holds access.log and error.log.
func startNginx(t *testing.T, nginx, conf, addr string) string {
	t.Helper()
	dir := t.TempDir()
	main := fmt.Sprintf(`daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 256; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include %[1]s/anteroom.conf;
}
`, dir)
	for name, text := range map[string]string{"anteroom.conf": conf, "nginx.conf": main} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// nginx -t first: a directive of the example that does not load fails
	// here with nginx's own message.
	if out, err := exec.Command(nginx, "-t", "-p", dir, "-c", filepath.Join(dir, "nginx.conf")).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	cmd := exec.Command(nginx, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"))
	cmd.Stderr = os.Stderr
	// Its own process group, so the cleanup kills the workers too, not
	// just the master.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx error.log:\n%s", log)
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited at start:\n%s", log)
		default:
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return dir
		}
		if time.Now().After(deadline) {
			t.Fatal("nginx did not start")
		}
	}
}

func (s *gateSite) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second}
}

func (s *gateSite) get(b *http.Client, path string, header ...string) (*http.Response, string) {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.base+path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := b.Do(req)
	if err != nil {
		s.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (s *gateSite) advance(room string, n int) {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.anteroom+"/admin/v1/rooms/"+room+"/advance", strings.NewReader(fmt.Sprintf(`{"count":%d}`, n)))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		s.t.Fatalf("advance: %v %v", resp, err)
	}
	resp.Body.Close()
}

// queueThrough opens path in b and expects the waiting page; it returns
// the waiting page's URL.
func (s *gateSite) queueThrough(b *http.Client, path string) string {
	s.t.Helper()
	before := s.upstream.Load()
	resp, body := s.get(b, path)
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Request.URL.Path, "/_anteroom/wait/") {
		s.t.Fatalf("%s: expected the waiting page, got %d at %s: %.300s", path, resp.StatusCode, resp.Request.URL, body)
	}
	if s.upstream.Load() != before {
		s.t.Fatal("a queued visitor reached the upstream")
	}
	return resp.Request.URL.String()
}

// admit lets the visitor at waitURL in and follows them back to the site.
func (s *gateSite) admit(b *http.Client, room, waitURL string) (*http.Response, string) {
	s.t.Helper()
	s.advance(room, 1)
	resp, err := b.Post(waitURL+"/continue", "application/x-www-form-urlencoded", nil)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestGateBehindNginx(t *testing.T) {
	s := startGateSite(t)
	b := s.browser()

	waitURL := s.queueThrough(b, "/shop?item=42")
	resp, body := s.admit(b, roomID, waitURL)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != s.base+"/shop?item=42" || !strings.HasPrefix(body, "app: /shop") {
		t.Fatalf("after admission: %d at %s: %.300s", resp.StatusCode, resp.Request.URL, body)
	}
	if sub := s.lastSub.Load(); sub == nil || len(*sub) != 22 {
		t.Fatalf("upstream did not get X-Anteroom-Sub: %v", sub)
	}
	var session *http.Cookie
	for _, c := range b.Jar.Cookies(resp.Request.URL) {
		if c.Name == "anteroom_gate_"+roomID {
			session = c
		}
	}
	if session == nil {
		t.Fatal("no gate session cookie")
	}

	t.Run("a second request passes on the cookie alone", func(t *testing.T) {
		before := s.upstream.Load()
		resp, body := s.get(b, "/shop/basket")
		if resp.StatusCode != http.StatusOK || s.upstream.Load() != before+1 || !strings.Contains(body, "room="+roomID) {
			t.Fatalf("%d %.200s", resp.StatusCode, body)
		}
	})
	t.Run("a client's own X-Anteroom-Sub never reaches the app", func(t *testing.T) {
		s.get(s.browser(), "/static/app.js", "X-Anteroom-Sub", "forged")
		if sub := s.lastSub.Load(); sub == nil || *sub != "" {
			t.Fatalf("upstream saw X-Anteroom-Sub %v", sub)
		}
	})
	t.Run("a tampered cookie is sent back to the queue", func(t *testing.T) {
		forged := s.browser()
		v := []byte(session.Value)
		v[len(v)-5] ^= 1
		u, _ := url.Parse(s.base)
		forged.Jar.SetCookies(u, []*http.Cookie{{Name: session.Name, Value: string(v)}})
		s.queueThrough(forged, "/shop")
	})
	t.Run("another room needs its own session", func(t *testing.T) {
		s.queueThrough(b, "/checkout/pay")
	})
	t.Run("a script gets 401 and the start URL", func(t *testing.T) {
		before := s.upstream.Load()
		resp, body := s.get(s.browser(), "/api/cart", "X-Requested-With", "XMLHttpRequest")
		var doc struct {
			StartURL string `json:"start_url"`
		}
		_ = json.Unmarshal([]byte(body), &doc)
		if resp.StatusCode != http.StatusUnauthorized || doc.StartURL != s.base+"/_anteroom/gate/start?rd=%2Fapi%2Fcart" || s.upstream.Load() != before {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
	t.Run("static files bypass, blocked paths are refused", func(t *testing.T) {
		if resp, _ := s.get(s.browser(), "/static/app.js"); resp.StatusCode != http.StatusOK {
			t.Fatalf("static: %d", resp.StatusCode)
		}
		if resp, _ := s.get(s.browser(), "/admin-only/x"); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("blocked: %d", resp.StatusCode)
		}
	})
	t.Run("a good bot passes, but not on a dynamic path", func(t *testing.T) {
		ua := "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
		if resp, _ := s.get(s.browser(), "/products", "User-Agent", ua); resp.StatusCode != http.StatusOK || !strings.Contains(resp.Request.URL.Path, "/products") {
			t.Fatalf("bot on /products: %d at %s", resp.StatusCode, resp.Request.URL)
		}
		before := s.upstream.Load()
		resp, _ := s.get(s.browser(), "/checkout/pay", "User-Agent", ua)
		if !strings.Contains(resp.Request.URL.Path, "/_anteroom/wait/") || s.upstream.Load() != before {
			t.Fatalf("spoofed bot on /checkout: %d at %s", resp.StatusCode, resp.Request.URL)
		}
	})
	t.Run("gate/start refuses an off-site return address", func(t *testing.T) {
		for _, rd := range []string{"https://evil.example/", "//evil.example/", "/\\evil.example"} {
			resp, _ := s.get(s.browser(), "/_anteroom/gate/start?rd="+url.QueryEscape(rd))
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("rd=%s: %d at %s", rd, resp.StatusCode, resp.Request.URL)
			}
		}
	})
	t.Run("an expired session is sent back to the queue", func(t *testing.T) {
		s.clock.Advance(31 * time.Minute)
		s.queueThrough(b, "/shop")
	})
}
