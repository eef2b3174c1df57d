package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/anteroom/anteroom/config"
	"github.com/anteroom/anteroom/internal/fakeidp"
)

// Rooms chained to the site's own provider (rooms[].identity), driven by Go
// clients through an in-test provider (internal/fakeidp) that signs in
// whoever the test says and can forge each kind of bad ID token. The same
// scenarios through dex's own login form, by Go clients and by Chromium,
// are in dex_e2e_test.go.

// personKey is the name of a person's record in the test room.
var personKey = regexp.MustCompile(`^anteroom:\{r:launch\}:i:[0-9a-f]{2}$`)

// identityHarness is a harness whose room is chained to idp, with the
// claims and require rules the README's examples use.
func identityHarness(t *testing.T, idp *fakeidp.IdP) *harness {
	t.Helper()
	return newHarness(t, configure(func(c *config.Config) {
		c.Rooms[0].Identity = &config.Identity{Issuer: idp.URL, ClientID: idp.ClientID, ClientSecret: idp.ClientSecret,
			Scopes: []string{"openid", "email"}, Claims: []string{"email", "email_verified"},
			Require: config.Require{{Claim: "email", Values: []string{"@example.com"}}, {Claim: "email_verified", Values: []string{"true"}}}}
	}))
}

func person(sub, email string) fakeidp.User {
	return fakeidp.User{Subject: sub, Claims: map[string]any{"email": email, "email_verified": true, "name": "Secret Name"}}
}

// identityClaims are the ID token's claims a test reads.
type identityClaims struct {
	Sub           string `json:"sub"`
	Sid           string `json:"sid"`
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
	Name          string `json:"name"`
	Room          string `json:"room"`
	Position      int64  `json:"queue_position"`
	QueuedAt      int64  `json:"queued_at"`
	AdmittedAt    int64  `json:"admitted_at"`
}

func (v *visitor) identityToken(code string) (identityClaims, *oauth2.Token, string) {
	v.h.t.Helper()
	tok, err := v.redeem(code)
	if err != nil {
		v.h.t.Fatalf("redeem: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := v.h.rp.verifier.Verify(v.h.rp.ctx, raw)
	if err != nil {
		v.h.t.Fatal(err)
	}
	var c identityClaims
	if err := idt.Claims(&c); err != nil {
		v.h.t.Fatal(err)
	}
	return c, tok, raw
}

// TestIdentityOnePlacePerPerson: the same person in two fresh browsers
// holds one position (each browser its own cookie for it), two people hold
// two; the relying party's ID token names the person (a sub stable across
// browsers, not the ticket) and carries the provider's allow-listed email
// beside the queue claims (OIDC Core §2, §5.1), and nothing else of
// theirs (name is not allow-listed).
func TestIdentityOnePlacePerPerson(t *testing.T) {
	idp := fakeidp.New("anteroom", "upstream-secret-0123")
	defer idp.Close()
	h := identityHarness(t, idp)

	idp.SignIn(person("alice", "alice@example.com"))
	laptop := h.visitor()
	laptop.queue()
	phone := h.visitor()
	phone.queue()
	idp.SignIn(person("bob", "bob@example.com"))
	bob := h.visitor()
	bob.queue()

	a1, a2, b := laptop.status(), phone.status(), bob.status()
	if a1.Position != 1 || a2.Position != 1 || b.Position != 2 {
		t.Fatalf("positions: laptop %d, phone %d, bob %d; want 1, 1, 2", a1.Position, a2.Position, b.Position)
	}
	if tail := h.tail(); tail != float64(2) {
		t.Fatalf("tail = %v, want 2 (one place per person)", tail)
	}
	// The people's records, named as TestRedisKeyNamesArePinned pins them.
	if keys, _ := h.rdb.Keys(t.Context(), "anteroom:{r:launch}:i:*").Result(); len(keys) < 1 || !personKey.MatchString(keys[0]) {
		t.Fatalf("person records: %q", keys)
	}

	h.advance(1)
	codeLaptop, codePhone := laptop.proceed(), phone.proceed()
	if codeLaptop == "" || codePhone == "" {
		t.Fatal("admitted person got no code in one of their browsers")
	}
	c1, tok, _ := laptop.identityToken(codeLaptop)
	c2, _, _ := phone.identityToken(codePhone)
	if c1.Sub != c2.Sub || c1.Sub == "" || strings.Contains(c1.Sub, "alice") || c1.Sid == "" || c1.Sid != c2.Sid {
		t.Fatalf("subjects: laptop %+v, phone %+v", c1, c2)
	}
	if c1.Email != "alice@example.com" || !c1.EmailVerified || c1.Room != roomID || c1.Position != 1 || c1.AdmittedAt == 0 || c1.QueuedAt == 0 {
		t.Fatalf("ID token claims: %+v", c1)
	}
	if c1.Name != "" {
		t.Fatalf("claim name leaked though not allow-listed: %+v", c1)
	}
	// Userinfo says the same (OIDC Core §5.3.2: its sub is the ID token's).
	req, _ := http.NewRequest(http.MethodGet, issuer+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := (&http.Client{Transport: h.transport()}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var info map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	if info["sub"] != c1.Sub || info["email"] != "alice@example.com" || info["queue_position"] != float64(1) || info["name"] != nil {
		t.Fatalf("userinfo: %d %v", resp.StatusCode, info)
	}
	// Bob is still waiting; his own token is not Alice's.
	if st := bob.status(); st.State != "waiting" {
		t.Fatalf("bob: %+v", st)
	}
}

// TestIdentityRequireRefuses: a person outside the room's require rules
// sees the room's page ("This queue is for registered customers"), takes
// no place, and the relying party hears access_denied (OIDC Core
// §3.1.2.6) with its state and iss (RFC 9207).
func TestIdentityRequireRefuses(t *testing.T) {
	idp := fakeidp.New("anteroom", "upstream-secret-0123")
	defer idp.Close()
	h := identityHarness(t, idp)
	for name, u := range map[string]fakeidp.User{
		"other domain": person("carol", "carol@example.org"),
		"unverified":   {Subject: "dave", Claims: map[string]any{"email": "dave@example.com", "email_verified": false}},
	} {
		t.Run(name, func(t *testing.T) {
			idp.SignIn(u)
			v := h.visitor()
			v.login = newLogin()
			resp, body := visit(t, v.browser, http.MethodGet, h.rp.authURL(v.login))
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "This queue is for registered customers") {
				t.Fatalf("refused person saw %d: %.400s", resp.StatusCode, body)
			}
			if tail := h.tail(); tail != float64(0) {
				t.Fatalf("tail = %v after a refusal, want 0", tail)
			}
			action := formAction(t, body)
			req, _ := http.NewRequest(http.MethodPost, action, nil)
			req.Header.Set("Origin", issuer)
			back, err := v.browser.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			back.Body.Close()
			wantRPError(t, back, v.login, "access_denied")
		})
	}
}

// formAction is the action of the first form of a page.
func formAction(t *testing.T, body string) string {
	t.Helper()
	_, rest, ok := strings.Cut(body, `<form method="post" action="`)
	if !ok {
		t.Fatalf("no form: %.400s", body)
	}
	action, _, _ := strings.Cut(rest, `"`)
	return strings.ReplaceAll(action, "&amp;", "&")
}

// wantRPError checks a redirect to the relying party with error code.
func wantRPError(t *testing.T, resp *http.Response, l login, code string) {
	t.Helper()
	loc, err := resp.Location()
	if err != nil || loc.Host != rpHost {
		t.Fatalf("not sent to the relying party: %d %v", resp.StatusCode, err)
	}
	q := loc.Query()
	if q.Get("error") != code || q.Get("state") != l.state || q.Get("iss") != issuer || q.Get("code") != "" {
		t.Fatalf("relying party got %v, want error=%s with state and iss", q, code)
	}
}

// TestIdentityBadUpstreamTokensRefused: every ID token OIDC Core §3.1.3.7
// makes a relying party reject — wrong nonce (item 11), issuer (2),
// audience (3), signature (6), expired (9) — and the provider's own
// access_denied (§3.1.2.6) end the login at the relying party with
// access_denied; nobody takes a place.
func TestIdentityBadUpstreamTokensRefused(t *testing.T) {
	idp := fakeidp.New("anteroom", "upstream-secret-0123")
	defer idp.Close()
	h := identityHarness(t, idp)
	idp.SignIn(person("mallory", "mallory@example.com"))
	for _, f := range []fakeidp.Fault{fakeidp.WrongNonce, fakeidp.WrongIssuer, fakeidp.WrongAudience, fakeidp.BadSignature, fakeidp.Expired, fakeidp.Denied} {
		t.Run(string(f), func(t *testing.T) {
			idp.SetFault(f)
			defer idp.SetFault(fakeidp.None)
			v := h.visitor()
			v.login = newLogin()
			resp, body := visit(t, v.browser, http.MethodGet, h.rp.authURL(v.login))
			if resp.StatusCode/100 != 3 {
				t.Fatalf("%s: %d %.300s", f, resp.StatusCode, body)
			}
			wantRPError(t, resp, v.login, "access_denied")
			if tail := h.tail(); tail != float64(0) {
				t.Fatalf("tail = %v after a refused token", tail)
			}
		})
	}
}

// TestIdentityProviderDown: with the provider down, a newcomer sees the
// room's page saying so (503, Retry-After, reloading itself) and people
// already waiting keep their places and their pages; prompt=none answers
// login_required without asking the provider (OIDC Core §3.1.2.6); when the
// provider is back, the newcomer's reload signs them in.
func TestIdentityProviderDown(t *testing.T) {
	idp := fakeidp.New("anteroom", "upstream-secret-0123")
	defer idp.Close()
	h := identityHarness(t, idp)
	idp.SignIn(person("alice", "alice@example.com"))
	alice := h.visitor()
	alice.queue()

	idp.SetFault(fakeidp.Unavailable)
	// Past the moment for which the last read of the provider's discovery
	// vouches that it is up (upstream.liveness).
	h.clock.Advance(time.Minute)
	idp.SignIn(person("bob", "bob@example.com"))
	bob := h.visitor()
	bob.login = newLogin()
	resp, body := visit(t, bob.browser, http.MethodGet, h.rp.authURL(bob.login))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		!strings.Contains(body, "cannot reach the sign-in service") || !strings.Contains(body, `http-equiv="refresh"`) {
		t.Fatalf("newcomer with the provider down: %d %.400s", resp.StatusCode, body)
	}
	if st := alice.status(); st.State != "waiting" || st.Position != 1 {
		t.Fatalf("alice lost her place: %+v", st)
	}
	before := idp.Requests
	silent := newLogin()
	resp, _ = visit(t, h.browser(), http.MethodGet, h.rp.authURL(silent, oauth2.SetAuthURLParam("prompt", "none")))
	wantRPError(t, resp, silent, "login_required")
	if idp.Requests != before {
		t.Fatal("prompt=none asked the provider")
	}

	idp.SetFault(fakeidp.None)
	bob.waitURL = queue(t, bob.browser, h.rp, bob.login)
	if st := bob.status(); st.Position != 2 {
		t.Fatalf("bob after the provider came back: %+v", st)
	}
}

// TestIdentityPromptNoneAndEndSession: prompt=none succeeds only for a
// browser with an admitted ticket of the person; end_session (RP-Initiated
// Logout §2) with the person's ID token ends the person's session in every
// browser, and their next sign-in queues again.
func TestIdentityPromptNoneAndEndSession(t *testing.T) {
	idp := fakeidp.New("anteroom", "upstream-secret-0123")
	defer idp.Close()
	h := identityHarness(t, idp)
	idp.SignIn(person("alice", "alice@example.com"))
	alice := h.visitor()
	alice.queue()
	h.advance(1)
	code := alice.proceed()
	if code == "" {
		t.Fatal("no code")
	}
	c, _, raw := alice.identityToken(code)

	silent := newLogin()
	resp, _ := visit(t, alice.browser, http.MethodGet, h.rp.authURL(silent, oauth2.SetAuthURLParam("prompt", "none")))
	if codeFrom(t, resp, silent) == "" {
		t.Fatalf("prompt=none for an admitted person: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}

	resp, _ = visit(t, alice.browser, http.MethodGet, issuer+"/end_session?id_token_hint="+url.QueryEscape(raw)+"&client_id="+clientID)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("end_session: %d", resp.StatusCode)
	}
	silent = newLogin()
	resp, _ = visit(t, alice.browser, http.MethodGet, h.rp.authURL(silent, oauth2.SetAuthURLParam("prompt", "none")))
	wantRPError(t, resp, silent, "login_required")
	again := h.visitor()
	again.queue()
	if st := again.status(); st.Position != 2 || st.State != "waiting" {
		t.Fatalf("after end_session the person queues again: %+v", st)
	}
	if c.Email != "alice@example.com" {
		t.Fatalf("claims: %+v", c)
	}
}
