//go:build unix

package e2e

import (
	"bufio"
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

// TestEdgeWorkerInWorkerd runs deploy/edge/cloudflare-worker in workerd,
// Cloudflare's Workers runtime, in front of a small origin, with a real
// Anteroom behind its /_anteroom/ route: a visitor queues, is let in and
// reaches the origin through the Worker alone, which fetches the JWKS from
// Anteroom and verifies the cookie Anteroom set.
//
// workerd is found through ANTEROOM_WORKERD (a path) or on PATH; .ci/run
// installs it from npm (the workerd package ships the binary).
func TestEdgeWorkerInWorkerd(t *testing.T) {
	workerd := workerdBinary(t)
	if err := redisServer.FlushAll(); err != nil {
		t.Fatal(err)
	}

	// The origin counts what reaches it and says who the Worker said passed.
	var reached atomic.Int64
	var lastSub atomic.Pointer[string]
	origin := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		sub := r.Header.Get("X-Anteroom-Sub")
		lastSub.Store(&sub)
		fmt.Fprintf(w, "origin: %s sub=%s room=%s", r.URL.RequestURI(), sub, r.Header.Get("X-Anteroom-Room"))
	})}
	originLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = origin.Serve(originLn) }()
	t.Cleanup(func() { origin.Close() })

	siteAddr := freeAddr(t)
	site := "http://" + siteAddr
	insecure := false
	cfg := testConfig()
	cfg.Issuer = site + "/_anteroom"
	cfg.Rooms = append(cfg.Rooms, config.Room{ID: "checkout", SessionTTL: config.Duration(30 * time.Minute), MaxWait: config.Duration(time.Hour)})
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
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	anteroomLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveApp(t, cfg, anteroomLn, nil)
	anteroom := "http://" + anteroomLn.Addr().String()

	// The Worker's configuration is Anteroom's issuer and gate section.
	edgeConfig, err := json.Marshal(map[string]any{"issuer": cfg.Issuer, "gate": cfg.Gate})
	if err != nil {
		t.Fatal(err)
	}
	startWorkerd(t, workerd, siteAddr, map[string]string{
		"ANTEROOM_CONFIG":  string(edgeConfig),
		"ANTEROOM_BACKEND": anteroom,
		"SITE_ORIGIN":      "http://" + originLn.Addr().String(),
	})

	jar, _ := cookiejar.New(nil)
	b := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	get := func(b *http.Client, path string, header ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, site+path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := b.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}

	// Queue: the Worker sends the visitor to /gate/start, which it routes
	// to Anteroom, which shows the waiting page.
	resp, body := get(b, "/shop?item=42")
	waitURL := resp.Request.URL.String()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(waitURL, site+"/_anteroom/wait/") || reached.Load() != 0 {
		t.Fatalf("expected the waiting page through the Worker, got %d at %s (origin reached %d times): %.300s", resp.StatusCode, waitURL, reached.Load(), body)
	}
	advanceOver(t, anteroom, roomID, 1)
	resp, err = b.Post(waitURL+"/continue", "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	body = readAll(resp)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != site+"/shop?item=42" || !strings.HasPrefix(body, "origin: /shop?item=42 sub=") {
		t.Fatalf("after admission: %d at %s: %.300s", resp.StatusCode, resp.Request.URL, body)
	}
	if sub := lastSub.Load(); sub == nil || len(*sub) != 22 || !strings.HasSuffix(body, "room="+roomID) {
		t.Fatalf("the origin was not told who passed: %q", body)
	}
	siteURL, _ := url.Parse(site + "/")
	var session *http.Cookie
	for _, c := range jar.Cookies(siteURL) {
		if c.Name == "anteroom_gate_"+roomID {
			session = c
		}
	}
	if session == nil {
		t.Fatal("no gate session cookie")
	}

	t.Run("the cookie alone lets the next request through", func(t *testing.T) {
		before := reached.Load()
		if resp, body := get(b, "/shop/basket"); resp.StatusCode != http.StatusOK || reached.Load() != before+1 || !strings.Contains(body, "room="+roomID) {
			t.Fatalf("%d %.200s", resp.StatusCode, body)
		}
	})
	t.Run("a tampered cookie queues again", func(t *testing.T) {
		forgedJar, _ := cookiejar.New(nil)
		v := []byte(session.Value)
		v[len(v)-5] ^= 1
		forgedJar.SetCookies(siteURL, []*http.Cookie{{Name: session.Name, Value: string(v)}})
		before := reached.Load()
		resp, _ := get(&http.Client{Jar: forgedJar, Timeout: 10 * time.Second}, "/shop")
		if !strings.HasPrefix(resp.Request.URL.String(), site+"/_anteroom/wait/") || reached.Load() != before {
			t.Fatalf("%d at %s", resp.StatusCode, resp.Request.URL)
		}
	})
	t.Run("another room needs its own session", func(t *testing.T) {
		if resp, _ := get(b, "/checkout/pay"); !strings.HasPrefix(resp.Request.URL.String(), site+"/_anteroom/wait/") {
			t.Fatalf("%d at %s", resp.StatusCode, resp.Request.URL)
		}
	})
	t.Run("a script gets 401 and the start URL", func(t *testing.T) {
		resp, body := get(&http.Client{Timeout: 10 * time.Second}, "/api/cart", "X-Requested-With", "XMLHttpRequest")
		var doc struct {
			StartURL string `json:"start_url"`
		}
		_ = json.Unmarshal([]byte(body), &doc)
		if resp.StatusCode != http.StatusUnauthorized || doc.StartURL != site+"/_anteroom/gate/start?rd=%2Fapi%2Fcart" {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
	t.Run("static files bypass without a client's X-Anteroom-Sub, blocked paths are refused", func(t *testing.T) {
		c := &http.Client{Timeout: 10 * time.Second}
		if resp, body := get(c, "/static/app.js", "X-Anteroom-Sub", "forged"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "sub= ") {
			t.Fatalf("static: %d %s", resp.StatusCode, body)
		}
		if resp, _ := get(c, "/admin-only/x"); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("blocked: %d", resp.StatusCode)
		}
	})
	t.Run("a passed request goes to SITE_ORIGIN only, whatever its path", func(t *testing.T) {
		// An attacker's server on loopback that a path like //host/ must
		// never reach: new URL(path, SITE_ORIGIN) would send it the
		// visitor's cookies.
		var stolen atomic.Int64
		attacker := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			stolen.Add(1)
		})}
		attackerLn, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = attacker.Serve(attackerLn) }()
		t.Cleanup(func() { attacker.Close() })
		evil := attackerLn.Addr().String()
		for _, target := range []string{"//" + evil + "/steal", "//" + evil, `/\` + evil + "/steal", "/%2F%2F" + evil + "/steal",
			"/%5C" + evil + "/steal", "///" + evil + "/steal", "/http://" + evil + "/steal"} {
			// Raw, so that no client library tidies the path first.
			c, err := net.Dial("tcp", siteAddr)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nCookie: %s=%s\r\nConnection: close\r\n\r\n", target, siteAddr, session.Name, session.Value)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				c.Close()
				t.Fatalf("%s: %v", target, err)
			}
			body := readAll(resp)
			c.Close()
			// Through to the origin, or refused: never elsewhere.
			if resp.StatusCode == http.StatusOK && !strings.HasPrefix(body, "origin: ") {
				t.Errorf("%s: 200 from something other than the origin: %.200s", target, body)
			}
			if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusBadRequest {
				t.Errorf("%s: %d %.200s", target, resp.StatusCode, body)
			}
		}
		if n := stolen.Load(); n != 0 {
			t.Fatalf("the attacker's host received %d requests", n)
		}
	})
	t.Run("a good bot passes, but not on a dynamic path", func(t *testing.T) {
		c := &http.Client{Timeout: 10 * time.Second}
		ua := "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
		if resp, body := get(c, "/products", "User-Agent", ua); resp.StatusCode != http.StatusOK || !strings.HasPrefix(body, "origin: /products") {
			t.Fatalf("bot on /products: %d %s", resp.StatusCode, body)
		}
		if resp, _ := get(c, "/checkout/pay", "User-Agent", ua); !strings.HasPrefix(resp.Request.URL.String(), site+"/_anteroom/wait/") {
			t.Fatalf("bot on /checkout: %d at %s", resp.StatusCode, resp.Request.URL)
		}
	})
}

func readAll(resp *http.Response) string {
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// workerdBinary returns workerd, or skips the test without it unless
// ANTEROOM_TEST_WORKERD=required.
func workerdBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("ANTEROOM_WORKERD"); p != "" {
		return p
	}
	if p, err := exec.LookPath("workerd"); err == nil {
		return p
	}
	if os.Getenv("ANTEROOM_TEST_WORKERD") == "required" {
		t.Fatal("workerd is required (ANTEROOM_TEST_WORKERD=required) but neither ANTEROOM_WORKERD nor PATH has it")
	}
	t.Skip("workerd not installed (npm install workerd; set ANTEROOM_WORKERD=path, or ANTEROOM_TEST_WORKERD=required to fail instead)")
	return ""
}

// startWorkerd serves the Worker and its core modules on addr, with text
// bindings, and stops it when the test ends.
func startWorkerd(t *testing.T, workerd, addr string, bindings map[string]string) {
	t.Helper()
	dir := t.TempDir()
	var modules []string
	copyModule := func(from, name string) {
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		modules = append(modules, fmt.Sprintf("(name = %q, esModule = embed %q)", name, name))
	}
	// The main module first; imports resolve by name, relative to it.
	copyModule("../deploy/edge/cloudflare-worker/worker.js", "cloudflare-worker/worker.js")
	core, err := filepath.Glob("../deploy/edge/core/*.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range core {
		if !strings.HasSuffix(f, ".test.js") {
			copyModule(f, "core/"+filepath.Base(f))
		}
	}
	var binds []string
	for name, value := range bindings {
		file := "binding-" + name
		if err := os.WriteFile(filepath.Join(dir, file), []byte(value), 0o644); err != nil {
			t.Fatal(err)
		}
		binds = append(binds, fmt.Sprintf("(name = %q, text = embed %q)", name, file))
	}
	capnp := fmt.Sprintf(`using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "site", worker = .worker),
    (name = "net", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [(name = "http", address = %q, http = (), service = "site")],
);

const worker :Workerd.Worker = (
  modules = [%s],
  bindings = [%s],
  compatibilityDate = "2024-09-23",
  globalOutbound = "net",
);
`, addr, strings.Join(modules, ", "), strings.Join(binds, ", "))
	if err := os.WriteFile(filepath.Join(dir, "config.capnp"), []byte(capnp), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "workerd.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(workerd, "serve", filepath.Join(dir, "config.capnp"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		logFile.Close()
		if t.Failed() {
			log, _ := os.ReadFile(logPath)
			t.Logf("workerd log:\n%s", log)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-exited:
			log, _ := os.ReadFile(logPath)
			t.Fatalf("workerd exited at start:\n%s", log)
		default:
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("workerd did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
