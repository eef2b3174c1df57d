//go:build linux

package e2e

import (
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anteroom/anteroom/config"
)

// These tests run deploy/apache/anteroom.conf in a real Apache httpd with
// mod_auth_openidc as the relying party, in front of a small upstream, with
// a real Anteroom as its OpenID provider: what a site that copies the
// example gets.

const (
	apacheClientSecret = "apache-client-secret-0123456789"
	apachePassphrase   = "apache-crypto-passphrase-0123456789abcdef"
	// The example's room, as its comment configures it in Anteroom.
	apacheMaxWait    = 6 * time.Hour
	apacheSessionTTL = 30 * time.Minute
)

// apacheModules are the modules the example needs, loaded from the
// distribution's module directory and nothing else.
var apacheModules = []struct{ name, file string }{
	{"mpm_event_module", "mod_mpm_event.so"},
	{"authn_core_module", "mod_authn_core.so"},
	{"authz_core_module", "mod_authz_core.so"},
	{"authz_user_module", "mod_authz_user.so"},
	{"headers_module", "mod_headers.so"},
	{"proxy_module", "mod_proxy.so"},
	{"proxy_http_module", "mod_proxy_http.so"},
	{"auth_openidc_module", "mod_auth_openidc.so"},
}

// apacheSeen is what the protected app saw of one request.
type apacheSeen struct {
	path   string
	header http.Header
}

type apacheSite struct {
	base     string // http://127.0.0.1:PORT, Apache
	anteroom string // Anteroom's address: the issuer, and the admin API
	errorLog string

	mu   sync.Mutex
	seen []apacheSeen // requests that reached the app
}

// findApache returns the httpd binary and the directory holding
// mod_auth_openidc.so, or skips (fails with ANTEROOM_TEST_APACHE=required).
func findApache(t *testing.T) (bin, modules string) {
	t.Helper()
	missing := func(what string) {
		if os.Getenv("ANTEROOM_TEST_APACHE") == "required" {
			t.Fatalf("%s is required (ANTEROOM_TEST_APACHE=required) but not installed", what)
		}
		t.Skipf("%s not installed (apt-get install apache2 libapache2-mod-auth-openidc; set ANTEROOM_TEST_APACHE=required to fail instead)", what)
	}
	for _, name := range []string{"apache2", "/usr/sbin/apache2", "httpd", "/usr/sbin/httpd"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		missing("apache2")
	}
	for _, dir := range []string{"/usr/lib/apache2/modules", "/usr/lib64/httpd/modules", "/usr/lib/httpd/modules"} {
		if _, err := os.Stat(filepath.Join(dir, "mod_auth_openidc.so")); err == nil {
			return bin, dir
		}
	}
	missing("mod_auth_openidc")
	return "", ""
}

// apacheDirective returns the value of the first line of conf that sets name.
func apacheDirective(t *testing.T, conf, name string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s*` + name + `\s+(.+?)\s*$`).FindStringSubmatch(conf)
	if m == nil {
		t.Fatalf("deploy/apache/anteroom.conf no longer sets %s", name)
	}
	return m[1]
}

func startApacheSite(t *testing.T) *apacheSite {
	t.Helper()
	bin, modules := findApache(t)
	if err := redisServer.FlushAll(); err != nil {
		t.Fatal(err)
	}
	s := &apacheSite{}

	// The protected app records what reaches it.
	app := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.seen = append(s.seen, apacheSeen{path: r.URL.RequestURI(), header: r.Header.Clone()})
		s.mu.Unlock()
		fmt.Fprintf(w, "app: %s sub=%s room=%s position=%s", r.URL.RequestURI(),
			r.Header.Get("X-Anteroom-Sub"), r.Header.Get("X-Anteroom-Room"), r.Header.Get("X-Anteroom-Position"))
	})}
	appLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Serve(appLn) }()
	t.Cleanup(func() { app.Close() })

	// Anteroom, its issuer on its own loopback address.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.anteroom = ln.Addr().String()
	apacheAddr := freeAddr(t)
	s.base = "http://" + apacheAddr
	cfg := testConfig()
	cfg.Issuer = "http://" + s.anteroom
	cfg.Rooms[0].MaxWait = config.Duration(apacheMaxWait)
	cfg.Rooms[0].SessionTTL = config.Duration(apacheSessionTTL)
	cfg.Clients = []config.Client{{
		ID: clientID, Secret: apacheClientSecret, Room: roomID, RequirePKCE: true,
		RedirectURIs: []string{s.base + "/oauth2/callback"},
	}}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	serveApp(t, cfg, ln, nil)

	// The example configuration, pointed at this test's ports.
	example, err := os.ReadFile(filepath.Join("..", "deploy", "apache", "anteroom.conf"))
	if err != nil {
		t.Fatal(err)
	}
	conf := string(example)
	// The timeouts must fit the room the example's comment configures.
	if v, err := strconv.Atoi(apacheDirective(t, conf, "OIDCStateTimeout")); err != nil || time.Duration(v)*time.Second < apacheMaxWait {
		t.Fatalf("OIDCStateTimeout %d s is shorter than the room's max_wait %s: visitors who wait longer are turned away", v, apacheMaxWait)
	}
	if v := apacheDirective(t, conf, "OIDCSessionMaxDuration"); v != strconv.Itoa(int(apacheSessionTTL.Seconds())) {
		t.Fatalf("OIDCSessionMaxDuration %s does not match the room's session_ttl %s", v, apacheSessionTTL)
	}
	if v := apacheDirective(t, conf, "OIDCClientID"); v != clientID {
		t.Fatalf("OIDCClientID %s, want %s", v, clientID)
	}
	// Secrets come from Apache's environment, as the example says.
	for _, line := range []string{"OIDCClientSecret ${SHOP_CLIENT_SECRET}", "OIDCCryptoPassphrase ${OIDC_CRYPTO_PASSPHRASE}"} {
		if !strings.Contains(conf, line) {
			t.Fatalf("deploy/apache/anteroom.conf no longer contains %q", line)
		}
	}
	for old, new := range map[string]string{
		"<VirtualHost *:80>":        "<VirtualHost " + apacheAddr + ">",
		"https://queue.example.com": "http://" + s.anteroom,
		"https://shop.example.com":  s.base,
		"http://127.0.0.1:3000/":    "http://" + appLn.Addr().String() + "/",
	} {
		if !strings.Contains(conf, old) {
			t.Fatalf("deploy/apache/anteroom.conf no longer contains %q", old)
		}
		conf = strings.ReplaceAll(conf, old, new)
	}

	dir := t.TempDir()
	s.errorLog = filepath.Join(dir, "error.log")
	var main strings.Builder
	fmt.Fprintf(&main, `ServerRoot %[1]s
ServerName 127.0.0.1
Listen %[2]s
PidFile %[1]s/httpd.pid
DefaultRuntimeDir %[1]s
Mutex file:%[1]s default
ErrorLog %[1]s/error.log
LogLevel warn auth_openidc:info
StartServers 1
ServerLimit 1
ThreadsPerChild 16
MaxRequestWorkers 16
`, dir, apacheAddr)
	if os.Geteuid() == 0 {
		// A root Apache hands its workers to an unprivileged user.
		for _, name := range []string{"www-data", "apache", "daemon", "nobody"} {
			if u, err := user.Lookup(name); err == nil {
				fmt.Fprintf(&main, "User #%s\nGroup #%s\n", u.Uid, u.Gid)
				break
			}
		}
	}
	for _, m := range apacheModules {
		fmt.Fprintf(&main, "LoadModule %s %s\n", m.name, filepath.Join(modules, m.file))
	}
	fmt.Fprintf(&main, "Include %s/anteroom.conf\n", dir)
	if err := os.WriteFile(filepath.Join(dir, "anteroom.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "httpd.conf"), []byte(main.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(bin, "-d", dir, "-f", filepath.Join(dir, "httpd.conf"), "-DFOREGROUND")
	cmd.Env = append(os.Environ(), "SHOP_CLIENT_SECRET="+apacheClientSecret, "OIDC_CRYPTO_PASSPHRASE="+apachePassphrase)
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	// Its own process group, so the kill reaches every worker; and killed
	// with the test binary should that die without its cleanups.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
			_ = cmd.Process.Kill()
		}
		<-exited
		if t.Failed() {
			s.logApache(t)
			t.Logf("apache2 output:\n%s", stderr.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", apacheAddr)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			t.Fatalf("apache2 exited at start: %s", stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("apache2 did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

func (s *apacheSite) logApache(t *testing.T) {
	log, _ := os.ReadFile(s.errorLog)
	t.Logf("apache2 error.log:\n%s", log)
}

func (s *apacheSite) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second}
}

func (s *apacheSite) appRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

func (s *apacheSite) lastSeen(t *testing.T) apacheSeen {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.seen) == 0 {
		t.Fatal("no request reached the app")
	}
	return s.seen[len(s.seen)-1]
}

func (s *apacheSite) do(t *testing.T, b *http.Client, method, u string, header ...string) (*http.Response, string) {
	t.Helper()
	// mod_auth_openidc answers 401 rather than a redirect to a request that
	// does not look like a browser navigating.
	return fetch(t, b, method, u, "", append([]string{"Accept", "text/html,application/xhtml+xml,*/*;q=0.8"}, header...)...)
}

// queueThrough opens path on the site in b and expects Anteroom's waiting
// page, with nothing served by the app; it returns the waiting page's URL.
func (s *apacheSite) queueThrough(t *testing.T, b *http.Client, path string) string {
	t.Helper()
	before := s.appRequests()
	resp, body := s.do(t, b, http.MethodGet, s.base+path)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.String(), "http://"+s.anteroom+"/wait/") {
		t.Fatalf("%s: expected the waiting page, got %d at %s: %.300s", path, resp.StatusCode, resp.Request.URL, body)
	}
	if s.appRequests() != before || strings.Contains(body, "app: ") {
		t.Fatal("a queued visitor reached the app")
	}
	return resp.Request.URL.String()
}

func (s *apacheSite) advance(t *testing.T, n int) {
	t.Helper()
	advanceOver(t, "http://"+s.anteroom, roomID, n)
}

// continueFrom posts the waiting page's continue form and follows wherever
// it leads.
func (s *apacheSite) continueFrom(t *testing.T, b *http.Client, waitURL string) (*http.Response, string) {
	t.Helper()
	return s.do(t, b, http.MethodPost, waitURL+"/continue")
}

// apacheHops lists the URLs a response's redirects went through, first to last.
func apacheHops(resp *http.Response) []*url.URL {
	var out []*url.URL
	for r := resp; r != nil; {
		out = append([]*url.URL{r.Request.URL}, out...)
		if r.Request.Response == nil {
			break
		}
		r = r.Request.Response
	}
	return out
}

func TestApacheModAuthOpenIDCUsesAnteroom(t *testing.T) {
	s := startApacheSite(t)
	first, second := s.browser(), s.browser()

	// The first visitor asks for a page and is sent, through Anteroom's
	// authorization endpoint, to the waiting room. The app serves nothing.
	// (The first visitor's address changes while they wait, as a phone's
	// does between Wi-Fi and mobile data; a proxy in front of Apache would
	// say so in X-Forwarded-For.)
	resp, body := s.do(t, first, http.MethodGet, s.base+"/shop?item=42", "X-Forwarded-For", "203.0.113.7")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.String(), "http://"+s.anteroom+"/wait/") {
		t.Fatalf("expected the waiting page, got %d at %s: %.300s", resp.StatusCode, resp.Request.URL, body)
	}
	if s.appRequests() != 0 {
		t.Fatal("a queued visitor reached the app")
	}
	firstWait := resp.Request.URL.String()
	var authorize *url.URL
	for _, u := range apacheHops(resp) {
		if u.Host == s.anteroom && u.Path == "/authorize" {
			authorize = u
		}
	}
	if authorize == nil {
		t.Fatalf("Apache did not send the visitor to /authorize: %v", apacheHops(resp))
	}
	q := authorize.Query()
	if q.Get("client_id") != clientID || q.Get("response_type") != "code" || q.Get("scope") != "openid" ||
		q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" ||
		q.Get("redirect_uri") != s.base+"/oauth2/callback" || q.Get("state") == "" || q.Get("nonce") == "" {
		t.Fatalf("authorization request: %s", authorize)
	}
	if st := pollStatus(t, first, firstWait); st.Position != 1 || st.Ahead != 0 || st.Room != roomID {
		t.Fatalf("first visitor: %+v", st)
	}

	// A second visitor queues behind them.
	secondWait := s.queueThrough(t, second, "/account")
	if st := pollStatus(t, second, secondWait); st.Position != 2 || st.Ahead != 1 {
		t.Fatalf("second visitor: %+v", st)
	}

	// Before the counter moves, continue leads back to the waiting page.
	if resp, _ := s.continueFrom(t, first, firstWait); resp.Request.URL.String() != firstWait || s.appRequests() != 0 {
		t.Fatalf("continue before admission: %d at %s", resp.StatusCode, resp.Request.URL)
	}

	// The admin lets one visitor in: the first continues, Apache redeems
	// the code, and the app serves the page they first asked for, with
	// the queue claims.
	s.advance(t, 1)
	resp, body = s.do(t, first, http.MethodPost, firstWait+"/continue", "X-Forwarded-For", "198.51.100.23")
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != s.base+"/shop?item=42" || !strings.HasPrefix(body, "app: /shop?item=42") {
		t.Fatalf("after admission: %d at %s: %.500s", resp.StatusCode, resp.Request.URL, body)
	}
	var viaCallback bool
	for _, u := range apacheHops(resp) {
		viaCallback = viaCallback || (u.Host == resp.Request.URL.Host && u.Path == "/oauth2/callback" && u.Query().Get("code") != "")
	}
	if !viaCallback {
		t.Fatalf("the way back did not pass Apache's redirect URI with a code: %v", apacheHops(resp))
	}
	seen := s.lastSeen(t)
	if seen.path != "/shop?item=42" {
		t.Fatalf("the app was asked for %s", seen.path)
	}
	firstSub := seen.header.Get("X-Anteroom-Sub")
	if len(firstSub) != 22 || seen.header.Get("X-Anteroom-Room") != roomID || seen.header.Get("X-Anteroom-Position") != "1" {
		t.Fatalf("the app saw sub=%q room=%q position=%q", firstSub, seen.header.Get("X-Anteroom-Room"), seen.header.Get("X-Anteroom-Position"))
	}
	if u := seen.header.Get("X-Remote-User"); u != firstSub {
		t.Fatalf("the app saw X-Remote-User %q, want the sub %q", u, firstSub)
	}
	if at, err := strconv.ParseInt(seen.header.Get("X-Anteroom-Admitted-At"), 10, 64); err != nil || time.Since(time.Unix(at, 0)).Abs() > time.Minute {
		t.Fatalf("the app saw admitted_at=%q", seen.header.Get("X-Anteroom-Admitted-At"))
	}

	t.Run("the session carries on without Anteroom", func(t *testing.T) {
		before := s.appRequests()
		resp, body := s.do(t, first, http.MethodGet, s.base+"/shop/basket")
		if resp.StatusCode != http.StatusOK || resp.Request.Response != nil || s.appRequests() != before+1 ||
			!strings.Contains(body, "sub="+firstSub) {
			t.Fatalf("%d at %s (redirected: %v): %.300s", resp.StatusCode, resp.Request.URL, resp.Request.Response != nil, body)
		}
	})

	t.Run("a client cannot forge the queue headers", func(t *testing.T) {
		s.do(t, first, http.MethodGet, s.base+"/shop/basket",
			"X-Anteroom-Room", "forged", "X-Anteroom-Position", "0", "X-Remote-User", "forged", "OIDC_CLAIM_room", "forged", "OIDC-CLAIM-room", "forged")
		seen := s.lastSeen(t)
		if seen.header.Get("X-Anteroom-Room") != roomID || seen.header.Get("X-Anteroom-Position") != "1" ||
			seen.header.Get("X-Remote-User") != firstSub || len(seen.header.Values("X-Remote-User")) != 1 {
			t.Fatalf("the app saw room=%q position=%q user=%q", seen.header.Get("X-Anteroom-Room"),
				seen.header.Get("X-Anteroom-Position"), seen.header.Values("X-Remote-User"))
		}
		for name, v := range seen.header {
			if strings.Contains(strings.ToLower(name), "oidc") {
				t.Fatalf("the app saw %s: %v", name, v)
			}
		}
	})

	t.Run("a visitor without a session never reaches the app", func(t *testing.T) {
		before := s.appRequests()
		s.queueThrough(t, s.browser(), "/shop")
		if s.appRequests() != before {
			t.Fatal("reached the app")
		}
	})

	t.Run("a script without a session gets 401, not the queue", func(t *testing.T) {
		before := s.appRequests()
		b := s.browser()
		resp, _ := s.do(t, b, http.MethodGet, s.base+"/api/cart", "X-Requested-With", "XMLHttpRequest")
		if resp.StatusCode != http.StatusUnauthorized || resp.Request.Response != nil || s.appRequests() != before {
			t.Fatalf("%d at %s", resp.StatusCode, resp.Request.URL)
		}
	})

	t.Run("the second visitor waits for the next advance", func(t *testing.T) {
		// Continue leads back to the waiting page: only position 1 is in.
		resp, _ := s.continueFrom(t, second, secondWait)
		if resp.Request.URL.String() != secondWait {
			t.Fatalf("continue at position 2 after one advance: %d at %s", resp.StatusCode, resp.Request.URL)
		}
		if st := pollStatus(t, second, secondWait); st.State == "admitted" || st.Position != 2 {
			t.Fatalf("second visitor: %+v", st)
		}
		// Reloading the site while waiting starts a new login each time,
		// each with its own state cookie, more than mod_auth_openidc keeps
		// by default; the place stays the same.
		var lastWait string
		for range 9 {
			lastWait = s.queueThrough(t, second, "/account")
			if st := pollStatus(t, second, lastWait); st.Position != 2 {
				t.Fatalf("after a reload: %+v", st)
			}
		}
		if lastWait == secondWait {
			t.Fatal("a reload reused the first login")
		}

		// The visitor goes on in the tab they first waited in. Its login's
		// state cookie was dropped for the newer ones, so mod_auth_openidc
		// sends them to OIDCDefaultURL, which logs them in again: Anteroom
		// remembers the admission, and lets them straight through.
		s.advance(t, 1)
		resp, body := s.continueFrom(t, second, secondWait)
		if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != s.base+"/" || !strings.HasPrefix(body, "app: /") {
			t.Fatalf("after the second advance: %d at %s: %.500s", resp.StatusCode, resp.Request.URL, body)
		}
		seen := s.lastSeen(t)
		if sub := seen.header.Get("X-Anteroom-Sub"); len(sub) != 22 || sub == firstSub ||
			seen.header.Get("X-Anteroom-Room") != roomID || seen.header.Get("X-Anteroom-Position") != "2" {
			t.Fatalf("the app saw %v", seen.header)
		}
	})
}
