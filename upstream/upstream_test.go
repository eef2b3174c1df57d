package upstream

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/anteroom/anteroom/internal/fakeidp"
)

// login runs the code flow against idp the way a browser would, up to the
// callback's query.
func login(t *testing.T, p *Provider, idp *fakeidp.IdP) (url.Values, Login) {
	t.Helper()
	l := NewLogin()
	u, err := p.AuthURL(context.Background(), l.State, l, "")
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	back, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return back.Query(), l
}

// now is the providers' clock in these tests.
var now = time.Now()

func newProvider(t *testing.T, idp *fakeidp.IdP) *Provider {
	t.Helper()
	p, err := New(Config{Issuer: idp.URL, ClientID: idp.ClientID, ClientSecret: idp.ClientSecret, Now: func() time.Time { return now },
		Scopes: []string{"email"}, RedirectURL: "http://127.0.0.1:1/upstream/callback"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCodeFlowWithPKCEAndNonce: OIDC Core §3.1.2.1 (state, nonce), RFC 7636
// §4.3 (S256 challenge, which the fake provider checks against the
// verifier at its token endpoint), §3.1.3.7 (a valid ID token is taken).
func TestCodeFlowWithPKCEAndNonce(t *testing.T) {
	idp := fakeidp.New("anteroom", "s3cret")
	defer idp.Close()
	p := newProvider(t, idp)
	q, l := login(t, p, idp)
	if q.Get("state") != l.State {
		t.Fatalf("state %q, want %q", q.Get("state"), l.State)
	}
	id, err := p.Exchange(context.Background(), q.Get("code"), l)
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "alice" || id.Issuer != idp.URL || id.Claims["email"] != "alice@example.com" {
		t.Fatalf("identity %+v", id)
	}
	if id.Key() != SubjectOf(idp.URL, "alice") || id.Key() == SubjectOf(idp.URL, "bob") || id.Key() == SubjectOf(idp.URL+"x", "alice") {
		t.Fatal("keys do not tell identities apart")
	}
	// A wrong verifier is refused by the provider (RFC 7636 §4.6): the
	// code is bound to this login.
	q, l = login(t, p, idp)
	l.Verifier += "x"
	var re *RefusedError
	if _, err := p.Exchange(context.Background(), q.Get("code"), l); !errors.As(err, &re) {
		t.Fatalf("wrong verifier: %v", err)
	}
}

// TestBadIDTokensAreRefused: every check of OIDC Core §3.1.3.7 that an
// upstream could fail — item 2 (iss), 3 (aud), 6 (signature by the
// provider's key), 9 (exp), 11 (nonce) — refuses the login with a reason.
func TestBadIDTokensAreRefused(t *testing.T) {
	idp := fakeidp.New("anteroom", "s3cret")
	defer idp.Close()
	p := newProvider(t, idp)
	for _, tc := range []struct {
		fault  fakeidp.Fault
		reason string
	}{
		{fakeidp.WrongNonce, "ID token nonce mismatch"},
		{fakeidp.WrongIssuer, "ID token of another issuer"},
		{fakeidp.WrongAudience, "ID token for another audience"},
		{fakeidp.BadSignature, "ID token signature invalid"},
		{fakeidp.Expired, "ID token expired"},
	} {
		t.Run(string(tc.fault), func(t *testing.T) {
			idp.SetFault(fakeidp.None)
			q, l := login(t, p, idp)
			idp.SetFault(tc.fault)
			_, err := p.Exchange(context.Background(), q.Get("code"), l)
			var re *RefusedError
			if !errors.As(err, &re) || re.Reason != tc.reason {
				t.Fatalf("got %v, want refusal %q", err, tc.reason)
			}
		})
	}
}

// TestProviderDownIsUnavailable: discovery that cannot be read is
// ErrUnavailable (retry), not a refusal; once read, it is cached.
func TestProviderDownIsUnavailable(t *testing.T) {
	idp := fakeidp.New("anteroom", "s3cret")
	defer idp.Close()
	p := newProvider(t, idp)
	idp.SetFault(fakeidp.Unavailable)
	if _, err := p.AuthURL(context.Background(), "s", NewLogin(), ""); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("down: %v", err)
	}
	idp.SetFault(fakeidp.None)
	q, l := login(t, p, idp)
	idp.SetFault(fakeidp.Unavailable)
	if _, err := p.AuthURL(context.Background(), "s", NewLogin(), ""); err != nil {
		t.Fatalf("discovery read a moment ago: %v", err)
	}
	now = now.Add(liveness)
	if _, err := p.AuthURL(context.Background(), "s", NewLogin(), ""); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("a sign-in after the provider went down: %v", err)
	}
	if _, err := p.Exchange(context.Background(), q.Get("code"), l); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("token endpoint down: %v", err)
	}
}

func TestRequire(t *testing.T) {
	rules := []Rule{{Claim: "email", Values: []string{"@example.com", "vip@other.org"}},
		{Claim: "email_verified", Values: []string{"true"}}, {Claim: "groups", Values: []string{"customers"}}}
	base := func() map[string]any {
		return map[string]any{"email": "Ann@Example.COM", "email_verified": true, "groups": []any{"staff", "customers"}}
	}
	if ok, _ := Admits(rules, base()); !ok {
		t.Fatal("matching identity refused")
	}
	for name, change := range map[string]func(map[string]any){
		"other domain":      func(c map[string]any) { c["email"] = "ann@example.org" },
		"subdomain trick":   func(c map[string]any) { c["email"] = "ann@evil.example.com" },
		"unverified":        func(c map[string]any) { c["email_verified"] = false },
		"no group":          func(c map[string]any) { c["groups"] = []any{"staff"} },
		"missing claim":     func(c map[string]any) { delete(c, "groups") },
		"verified as text":  func(c map[string]any) { c["email_verified"] = "false" },
		"group not in list": func(c map[string]any) { c["groups"] = "staff" },
	} {
		c := base()
		change(c)
		if ok, claim := Admits(rules, c); ok || claim == "" {
			t.Errorf("%s: admitted", name)
		}
	}
	c := base()
	c["email"], c["email_verified"], c["groups"] = "vip@other.org", "true", "customers"
	if ok, claim := Admits(rules, c); !ok {
		t.Fatalf("listed address, string true, single group: refused on %s", claim)
	}
}

func TestAllowedClaimsOnly(t *testing.T) {
	id := Identity{Claims: map[string]any{"email": "a@b", "name": "A", "groups": []any{"x"}, "phone_number": "1"}}
	got := id.Allowed([]string{"email", "name", "picture"})
	if len(got) != 2 || got["email"] != "a@b" || got["name"] != "A" {
		t.Fatalf("allowed %v", got)
	}
}
