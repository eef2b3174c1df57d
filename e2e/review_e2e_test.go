//go:build unix

package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Found in review of issue 19's merge.

// TestPublicClientNamedInTheBasicHeaderRedeems: a public client (RFC 6749
// §2.1, token_endpoint_auth_method none) that names itself in the Basic
// header with an empty password, as golang.org/x/oauth2 does with
// AuthStyleInHeader and no secret, authenticates nothing and proves the
// code with PKCE (RFC 7636 §4.5). The library redeemed such requests
// before the provider's own client check came in front of it; that check
// must not turn them into invalid_client. A confidential client still
// needs its secret (the gate's: TestGateClientsCannotBeRunFromOutside).
func TestPublicClientNamedInTheBasicHeaderRedeems(t *testing.T) {
	e := negativeEnv(t)
	pub := e.rp(publicAppID, "", publicRP)
	l := newLogin()
	code := e.admitted(pub.authURL(l), l)
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {publicRP}, "code_verifier": {l.verifier}}
	if status, _, body := e.call(http.MethodPost, "/oauth/token", form, publicAppID, "", nil); status != http.StatusOK || !strings.Contains(body, `"id_token"`) {
		t.Errorf("public client, Basic with an empty password: %d %s", status, body)
	}
	// A confidential client is never let through without its secret.
	l = newLogin()
	r := e.rp(clientID, secret, rpCallback)
	code = e.admitted(r.authURL(l), l)
	if status, h, body := e.call(http.MethodPost, "/oauth/token", codeForm(code, l.verifier), clientID, "", nil); status != http.StatusUnauthorized ||
		jsonError(body) != "invalid_client" || h.Get("WWW-Authenticate") == "" {
		t.Errorf("confidential client, Basic with an empty password: %d %q %s", status, h.Get("WWW-Authenticate"), body)
	}
}

// TestNginxExampleRefusesTheLibraryReadinessProbe: besides /readyz,
// Anteroom's OIDC library answers /ready itself, with a Redis PING per
// request. Without ops.listen it is on the public listener, and the
// shipped nginx config, which claims to refuse every operational path
// even then, passes it through (the issue: /readyz must not be public).
func TestNginxExampleRefusesTheLibraryReadinessProbe(t *testing.T) {
	nginxAddr := freeAddr(t)
	cfg := nginxExampleConfig(t, "http://"+nginxAddr+"/_anteroom")
	cfg.Ops.Listen = "" // the nginx rule alone must refuse it
	insecure := false
	cfg.Gate.Cookie.Secure = &insecure
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	exampleSite(t, cfg, nginxAddr)
	for _, path := range []string{"/_anteroom/ready", "/_anteroom/%72eady", "/_anteroom//ready"} {
		conn, err := net.Dial("tcp", nginxAddr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: shop.example.com\r\nConnection: close\r\n\r\n", path)
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		head, _ := io.ReadAll(conn)
		conn.Close()
		if status, _, _ := strings.Cut(string(head), "\r\n"); status != "HTTP/1.1 404 Not Found" {
			t.Errorf("GET %s through nginx: %q, want 404", path, status)
		}
	}
}
