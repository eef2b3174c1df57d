//go:build unix

package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// readmeFence returns the README's fenced block of the given language whose
// first line is first.
func readmeFence(t *testing.T, lang, first string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "```"+lang+"\n"+first)
	if !ok {
		t.Fatalf("README has no %s block starting with %q", lang, first)
	}
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatalf("README: unterminated %s block", lang)
	}
	return first + block
}

// TestQuickstartInTheREADME runs the README's "ten minutes" guide as a
// reader would: the key commands as written (openssl), the Anteroom
// configuration and the nginx site (each the same as its file under
// examples/quickstart/) with only ports and file locations changed, nginx
// with TLS in front of a static site, and a real Chromium that resolves
// shop.example.com to that nginx. Its first visit reaches the site through
// the gate; with the room paused by the guide's own admin commands, a
// second browser waits on the waiting page and reaches the site once the
// room resumes.
func TestQuickstartInTheREADME(t *testing.T) {
	chromium := requireChromium(t)
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		if os.Getenv("ANTEROOM_TEST_NGINX") == "required" {
			t.Fatal("nginx is required (ANTEROOM_TEST_NGINX=required) but not installed")
		}
		t.Skip("nginx not installed (set ANTEROOM_TEST_NGINX=required to fail instead)")
	}
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl, which the guide makes the keys with, is not installed")
	}
	if err := redisServer.FlushAll(); err != nil {
		t.Fatal(err)
	}

	// The guide's files are the examples', byte for byte.
	yamlDoc := readmeFence(t, "yaml", "# /etc/anteroom/anteroom.yaml")
	nginxDoc := readmeFence(t, "nginx", "# /etc/nginx/sites-enabled/shop.conf")
	for file, doc := range map[string]string{"anteroom.yaml": yamlDoc, "nginx.conf": nginxDoc} {
		b, err := os.ReadFile(filepath.Join("..", "examples", "quickstart", file))
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != doc {
			t.Fatalf("README's %s differs from examples/quickstart/%s", file, file)
		}
	}

	// 2. Make the keys, with the guide's own commands.
	keys := readmeFence(t, "sh", "export ANTEROOM_COOKIE_KEY=")
	out, err := exec.Command("bash", "-ec", keys+`printf '%s\n%s\n' "$ANTEROOM_COOKIE_KEY" "$ANTEROOM_ADMIN_TOKEN"`).Output()
	if err != nil {
		t.Fatalf("the guide's key commands: %v", err)
	}
	made := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(made) != 2 || made[0] == "" || made[1] == "" || made[0] == made[1] {
		t.Fatalf("the guide's key commands made %q", made)
	}
	env := []string{"ANTEROOM_COOKIE_KEY=" + made[0], "ANTEROOM_ADMIN_TOKEN=" + made[1]}

	// 3, 4. Anteroom with the guide's configuration.
	anteroomAddr, opsAddr := freeAddr(t), freeAddr(t)
	conf := replaceAll(t, "the guide's anteroom.yaml", yamlDoc, map[string]string{
		"listen: 127.0.0.1:8080":   "listen: " + anteroomAddr,
		"listen: 127.0.0.1:9090":   "listen: " + opsAddr,
		"redis://127.0.0.1:6379/0": redisServer.URL(),
	})
	p := launchConfigured(t, "quickstart", conf, opsAddr, env)
	p.waitFor("/readyz")

	// 5. nginx with the guide's site, TLS from a certificate for
	// shop.example.com, serving a static site.
	dir := t.TempDir()
	// nginx's workers run as another user (nobody, when the tests run as
	// root), and t.TempDir's directories are the test's alone.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	site := filepath.Join(dir, "www")
	if err := os.MkdirAll(filepath.Join(site, "assets"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{
		"index.html":      `<!doctype html><title>Shop</title><link rel="stylesheet" href="/assets/shop.css"><h1 id="shop">Welcome to the shop</h1>`,
		"assets/shop.css": `h1 { color: #123 }`,
	} {
		if err := os.WriteFile(filepath.Join(site, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	certFile, keyFile := selfSignedCertificate(t, dir, "shop.example.com")
	httpAddr, httpsAddr := freeAddr(t), freeAddr(t)
	site443 := replaceAll(t, "the guide's nginx site", nginxDoc, map[string]string{
		"listen 80;":             "listen " + httpAddr + ";",
		"listen 443 ssl;":        "listen " + httpsAddr + " ssl;",
		"server 127.0.0.1:8080;": "server " + anteroomAddr + ";",
		"root /var/www/shop;":    "root " + site + ";",
		"/etc/letsencrypt/live/shop.example.com/fullchain.pem": certFile,
		"/etc/letsencrypt/live/shop.example.com/privkey.pem":   keyFile,
	})
	nginxDir := startNginx(t, nginx, site443, httpsAddr)
	accessLog := func() string {
		b, _ := os.ReadFile(filepath.Join(nginxDir, "access.log"))
		return string(b)
	}

	// A browser for which shop.example.com is this nginx.
	visitor := func() context.Context {
		return browser(t, chromium,
			chromedp.Flag("host-resolver-rules", "MAP shop.example.com:443 "+httpsAddr+", MAP shop.example.com:80 "+httpAddr),
			chromedp.Flag("ignore-certificate-errors", true))
	}
	onTheShop := func(ctx context.Context, who string) {
		t.Helper()
		step, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(step, chromedp.WaitVisible(chromedp.CSS("#shop"))); err != nil {
			where, _ := chromedp.Run(ctx, chromedp.Location())
			t.Fatalf("%s never reached the shop (at %s): %v\nnginx access.log:\n%s\nanteroom:\n%s", who, where, err, accessLog(), p.output.String())
		}
	}

	// 6. Try it: the first visitor passes at once, through the gate. The
	// plain-http address sends them to https first.
	first := visitor()
	if err := chromedp.Do(first, chromedp.Navigate("http://shop.example.com/")); err != nil {
		t.Fatal(err)
	}
	onTheShop(first, "the first visitor")
	for _, want := range []string{`"GET /_anteroom/gate/callback?`, `"GET /_anteroom/wait/`, `"GET /assets/shop.css`} {
		if !strings.Contains(accessLog(), want) {
			t.Fatalf("the first visitor's way to the shop had no %s:\n%s", want, accessLog())
		}
	}

	// The guide's admin commands, pointed at this test's ops listener.
	admin := readmeFence(t, "sh", "anteroom admin --url http://127.0.0.1:9090 pause launch")
	var pause, resume string
	for _, line := range strings.Split(admin, "\n") {
		line = strings.TrimSpace(strings.SplitN(line, "#", 2)[0])
		switch {
		case strings.HasSuffix(line, " pause launch"):
			pause = line
		case strings.HasSuffix(line, " resume launch"):
			resume = line
		}
	}
	if pause == "" || resume == "" {
		t.Fatalf("the guide's admin commands: no pause or resume in\n%s", admin)
	}
	run := func(line string) {
		t.Helper()
		line = strings.Replace(line, "http://127.0.0.1:9090", "http://"+opsAddr, 1)
		args := strings.Fields(line)
		cmd := exec.Command(anteroomBinary(t), args[1:]...)
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", line, err, out)
		}
	}
	run(pause)

	second := visitor()
	if err := chromedp.Do(second, chromedp.Navigate("https://shop.example.com/")); err != nil {
		t.Fatal(err)
	}
	step, cancel := context.WithTimeout(second, 20*time.Second)
	err = chromedp.Do(step, chromedp.WaitVisible(chromedp.CSS("#position")))
	cancel()
	if err != nil {
		t.Fatalf("the second visitor saw no waiting page while the room was paused: %v\n%s", err, accessLog())
	}
	position, err := chromedp.Run(second, chromedp.Text(chromedp.CSS("#position")))
	if err != nil {
		t.Fatal(err)
	}
	if position != "2" {
		t.Fatalf("the second visitor's position: %q, want 2", position)
	}
	run(resume)
	onTheShop(second, "the second visitor, once the room resumed")
}

// selfSignedCertificate writes a certificate for host and its key into dir
// and returns their paths.
func selfSignedCertificate(t *testing.T, dir, host string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: host},
		DNSNames:     []string{host},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "fullchain.pem"), filepath.Join(dir, "privkey.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
