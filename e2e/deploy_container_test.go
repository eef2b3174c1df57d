//go:build unix

package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// podmanFlags are the global flags these machines need to run a container
// (../shared/CONTAINERS.md): crun fails on their cgroup setup, and systemd
// does not manage their cgroups.
var podmanFlags = []string{"--runtime", "runc", "--cgroup-manager=cgroupfs"}

// podmanRunFlags keep the container's rlimits under the machines' hard
// limits, which podman's defaults exceed.
var podmanRunFlags = []string{"--ulimit", "nofile=10000:10000", "--ulimit", "nproc=1000:1000"}

// podman runs `podman args…` to its end and returns its standard output;
// a failure fails the test with podman's own message.
func podman(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, append(append([]string{}, podmanFlags...), args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("podman %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// buildImage builds the Dockerfile as its header says: a static binary
// built first, the CA certificates beside it, then podman build. It
// returns the image's name, removed when the test ends.
func buildImage(t *testing.T, bin string) string {
	t.Helper()
	ctxDir := t.TempDir()
	dist := filepath.Join(ctxDir, "dist")
	if err := os.Mkdir(dist, 0o755); err != nil {
		t.Fatal(err)
	}
	build := exec.Command(goCommand(), "build", "-trimpath", "-o", filepath.Join(dist, "anteroom"), "./cmd/anteroom")
	build.Dir = ".."
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build ./cmd/anteroom: %v\n%s", err, out)
	}
	assertStatic(t, filepath.Join(dist, "anteroom"))
	certs, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		t.Fatalf("the image carries the build machine's CA certificates: %v", err)
	}
	files := map[string]string{
		"Dockerfile":                repoFile(t, "Dockerfile"),
		".dockerignore":             repoFile(t, ".dockerignore"),
		"dist/ca-certificates.crt":  string(certs),
		"dist/not-in-the-image.txt": "the .dockerignore keeps this out",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(ctxDir, filepath.FromSlash(name)), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var tag [6]byte
	_, _ = rand.Read(tag[:])
	image := "localhost/anteroom:e2e-" + hex.EncodeToString(tag[:])
	start := time.Now()
	podman(t, bin, "build", "--quiet", "-t", image, ctxDir)
	t.Logf("podman build took %v", time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() { _ = exec.Command(bin, append(podmanFlags, "rmi", "--force", image)...).Run() })
	return image
}

// assertStatic fails unless path is an executable that needs no dynamic
// loader and no shared library: FROM scratch has neither.
func assertStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatalf("%s asks for a dynamic loader: it would not start in a scratch image", path)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Fatalf("%s needs shared libraries %v", path, libs)
	}
}

// The image the Dockerfile builds runs as the unprivileged user on a
// read-only root filesystem with every capability dropped, reads the
// shipped deploy/container/anteroom.yaml with its secrets from the
// environment, reaches a real redis-server, publishes its discovery
// document (OpenID Connect Discovery 1.0 §4) and takes a visitor through
// the queue to tokens a relying party verifies (OpenID Connect Core 1.0
// §3.1, with PKCE, RFC 7636).
func TestContainerImageServesAFullFlow(t *testing.T) {
	bin := findTool(t, "podman", "apt-get install podman runc")
	if err := redisServer.FlushAll(); err != nil {
		t.Fatal(err)
	}
	image := buildImage(t, bin)

	// The shipped configuration, on free ports of the host's network
	// (--network host: the container reaches the test's redis-server on
	// the loopback).
	listen, ops := freeAddr(t), freeAddr(t)
	conf := replaceAll(t, "deploy/container/anteroom.yaml", repoFile(t, "deploy/container/anteroom.yaml"), map[string]string{
		"listen: 0.0.0.0:8080":        "listen: " + listen,
		"ops: {listen: 0.0.0.0:9090}": "ops: {listen: " + ops + "}",
	})
	confPath := filepath.Join(t.TempDir(), "anteroom.yaml")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	name := "anteroom-e2e-" + strings.TrimPrefix(image, "localhost/anteroom:e2e-")
	args := append(append([]string{}, podmanFlags...), "run", "--rm", "--name", name, "--network", "host",
		"--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges")
	args = append(args, podmanRunFlags...)
	for k, v := range map[string]string{
		"ANTEROOM_ISSUER":      issuer,
		"ANTEROOM_REDIS_URL":   redisServer.URL(),
		"ANTEROOM_COOKIE_KEY":  cookieKey,
		"ANTEROOM_ADMIN_TOKEN": adminToken,
		"SHOP_CLIENT_SECRET":   secret,
		"SHOP_REDIRECT_URI":    rpCallback,
	} {
		args = append(args, "-e", k+"="+v)
	}
	args = append(args, "-v", confPath+":/etc/anteroom/anteroom.yaml:ro", image)
	cmd := exec.Command(bin, args...)
	output := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = output, output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		// podman stop sends SIGTERM, which Anteroom drains on; then the
		// container is gone (--rm) whatever happened.
		_ = exec.Command(bin, append(podmanFlags, "stop", "--time", "25", name)...).Run()
		_ = exec.Command(bin, append(podmanFlags, "rm", "--force", name)...).Run()
		<-exited
		if t.Failed() {
			t.Logf("the container's output:\n%s", output.String())
		}
	})
	p := &process{t: t, cmd: cmd, addr: ops, output: output, exited: exited}
	p.waitFor("/readyz")

	// The operator's endpoints are on ops.listen alone.
	if resp, err := http.Get("http://" + listen + "/readyz"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("/readyz on the public listener: %v %v, want 404", resp, err)
	} else {
		resp.Body.Close()
	}
	// The image holds the binary and the certificates: the .dockerignore
	// kept the rest of the build context out.
	exported := exec.Command(bin, append(podmanFlags, "export", name)...)
	tarball, err := exported.Output()
	if err != nil {
		t.Fatalf("podman export: %v", err)
	}
	var files []string
	for tr := tar.NewReader(bytes.NewReader(tarball)); ; {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if h.Typeflag == tar.TypeReg && h.Size > 0 {
			files = append(files, strings.TrimPrefix(h.Name, "/"))
		}
	}
	slices.Sort(files)
	if want := []string{"etc/ssl/certs/ca-certificates.crt", "usr/local/bin/anteroom"}; !slices.Equal(files, want) {
		t.Errorf("the image's files: %q, want %q", files, want)
	}
	// It runs as the image's user, not root.
	if user := strings.TrimSpace(podman(t, bin, "top", name, "huser")); !strings.HasSuffix(user, "65532") {
		t.Errorf("podman top %s huser: %q, want the image's user 65532", name, user)
	}

	lb := &balancer{}
	lb.set(listen)
	rpClient := &http.Client{Transport: lb.transport(), Timeout: 10 * time.Second}
	rpCtx := context.WithValue(context.Background(), oauth2.HTTPClient, rpClient)
	_, body, err := get(rpClient, issuer+"/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var discovery struct {
		Issuer   string `json:"issuer"`
		JWKSURI  string `json:"jwks_uri"`
		TokenURL string `json:"token_endpoint"`
	}
	if err := json.Unmarshal([]byte(body), &discovery); err != nil {
		t.Fatalf("discovery: %v\n%s", err, body)
	}
	// §4.3: the issuer is the one configured, by the environment, exactly.
	if discovery.Issuer != issuer || !strings.HasPrefix(discovery.JWKSURI, issuer+"/") || !strings.HasPrefix(discovery.TokenURL, issuer+"/") {
		t.Fatalf("discovery document: %s", body)
	}
	provider, err := gooidc.NewProvider(rpCtx, issuer)
	if err != nil {
		t.Fatal(err)
	}
	oauth := &oauth2.Config{ClientID: clientID, ClientSecret: secret, Endpoint: provider.Endpoint(), RedirectURL: rpCallback, Scopes: []string{gooidc.ScopeOpenID}}
	verifier := provider.Verifier(&gooidc.Config{ClientID: clientID})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := logIn(ctx, browserVia(lb.transport()), oauth, verifier, rpCtx, "", false, nil); err != nil {
		t.Fatalf("a visitor through the container: %v", err)
	}
}
