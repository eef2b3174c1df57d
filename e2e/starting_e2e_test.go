package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/anteroom/anteroom/internal/testredis"
)

// `anteroom serve` started before its Redis listens at once and answers as
// the README promises for Redis being down: alive (/healthz) but not ready
// (/readyz 503), people get the room's 503 page with Retry-After, relying
// parties temporarily_unavailable (RFC 6749 §5.2 names no outage code at
// the token endpoint; §4.1.2.1's temporarily_unavailable is the one
// clients retry). When a real redis-server then starts, the instance
// loads what start-up loads (room state, signing keys, the scheduler's
// lease, scripts) by itself, without a restart, and a visitor goes all
// the way through.
func TestServeStartsWithoutRedisAndRecoversWhenItComes(t *testing.T) {
	srv := testredis.Start(t)
	if !srv.Real() {
		t.Skip("needs a real redis-server to start after anteroom")
	}
	// The port is known and nothing listens on it: Redis is not there yet.
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	p := launchProcess(t, "early", srv.URL())
	p.waitFor("/healthz")

	direct := &http.Client{Timeout: 5 * time.Second}
	resp, body, err := get(direct, "http://"+p.addr+"/readyz")
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz without redis: %v %v %q, want 503", err, resp, body)
	}

	lb := &balancer{}
	lb.set(p.addr)
	browser := browserVia(lb.transport())
	oauth := &oauth2.Config{ClientID: clientID, ClientSecret: secret, RedirectURL: rpCallback, Scopes: []string{gooidc.ScopeOpenID},
		Endpoint: oauth2.Endpoint{AuthURL: issuer + "/authorize", TokenURL: issuer + "/oauth/token"}}
	l := newLogin()
	authURL := oauth.AuthCodeURL(l.state, gooidc.Nonce(l.nonce), oauth2.S256ChallengeOption(l.verifier))

	// A person: the room's page, in its style, that reloads itself.
	resp, body, err = get(browser, authURL, "Accept", "text/html,application/xhtml+xml", "Accept-Language", "de")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("a person without redis: %d %v, want a 503 page with Retry-After", resp.StatusCode, resp.Header)
	}
	for _, want := range []string{`<html lang="de"`, `href="` + issuer + `/static/style.css"`, `http-equiv="refresh"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the page without redis lacks %s: %.600s", want, body)
		}
	}
	if resp, _, err := get(browser, issuer+"/static/style.css"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("the page's style without redis: %v %v", err, resp)
	}

	// Relying parties: JSON temporarily_unavailable with Retry-After.
	form := url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "redirect_uri": {rpCallback},
		"client_id": {clientID}, "client_secret": {secret}, "code_verifier": {l.verifier}}
	rpClient := &http.Client{Transport: lb.transport(), Timeout: 10 * time.Second}
	for _, call := range []func() (*http.Response, error){
		func() (*http.Response, error) { return rpClient.PostForm(issuer+"/oauth/token", form) },
		func() (*http.Response, error) { return rpClient.Get(issuer + "/.well-known/openid-configuration") },
		func() (*http.Response, error) { return rpClient.Get(issuer + "/keys") },
	} {
		resp, err := call()
		if err != nil {
			t.Fatal(err)
		}
		var doc struct{ Error string }
		_ = json.NewDecoder(resp.Body).Decode(&doc)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || doc.Error != "temporarily_unavailable" || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s without redis: %d %+v %v, want 503 temporarily_unavailable with Retry-After", resp.Request.URL.Path, resp.StatusCode, doc, resp.Header)
		}
	}

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	p.waitFor("/readyz")
	rpCtx := context.WithValue(context.Background(), oauth2.HTTPClient, rpClient)
	provider, err := gooidc.NewProvider(rpCtx, issuer)
	if err != nil {
		t.Fatal(err)
	}
	oauth.Endpoint = provider.Endpoint()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := logIn(ctx, browser, oauth, provider.Verifier(&gooidc.Config{ClientID: clientID}), rpCtx, "", false, nil); err != nil {
		t.Fatalf("a login once redis is up: %v", err)
	}
	// Whether start-up logged "waiting for redis" depends on how soon Redis
	// came back (go-redis's own retries may bridge the gap); the refused
	// dials before it are always logged, structured.
	if !strings.Contains(p.output.String(), "component=redis") {
		t.Errorf("the log does not show the refused connections to redis:\n%s", p.output.String())
	}
}
