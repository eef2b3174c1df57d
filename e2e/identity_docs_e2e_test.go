//go:build unix

package e2e

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/anteroom/anteroom/config"
	"github.com/anteroom/anteroom/internal/fakeidp"
)

// readmeIdentity loads the README's rooms[].identity example whose block
// starts with first, inside an otherwise minimal configuration, with env
// for its ${…} references.
func readmeIdentity(t *testing.T, first string, env map[string]string) *config.Identity {
	t.Helper()
	block := readmeBlock(t, first)
	src := "issuer: https://queue.example.com\nsecrets: {cookie_keys: [\"" + cookieKey + "\"]}\n" +
		"clients: [{id: shop, secret: \"" + secret + "\", redirect_uris: [\"https://shop.example.com/cb\"], room: launch}]\n" +
		"rooms:\n  - id: launch\n" + indent(block, "    ")
	c, err := config.Parse([]byte(src), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("the README's %q: %v", first, err)
	}
	if c.Rooms[0].Identity == nil {
		t.Fatalf("the README's %q sets no identity", first)
	}
	return c.Rooms[0].Identity
}

func indent(s, by string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = by + l
	}
	return strings.Join(lines, "\n") + "\n"
}

// TestReadmeIdentityExamplesLoad: the README's examples for Keycloak,
// Microsoft Entra ID and Google load as they are (the dex one is run
// against dex by TestDexOnePlacePerPerson), and so does the section's
// first, with its require rules as the section explains them.
func TestReadmeIdentityExamplesLoad(t *testing.T) {
	src := "issuer: https://queue.example.com\nsecrets: {cookie_keys: [\"" + cookieKey + "\"]}\n" +
		"clients: [{id: shop, secret: \"" + secret + "\", redirect_uris: [\"https://shop.example.com/cb\"], room: launch}]\n" +
		readmeBlock(t, "# A room that queues people, not browsers.")
	c, err := config.Parse([]byte(src), func(k string) (string, bool) { return "s", k == "IDP_CLIENT_SECRET" })
	if err != nil {
		t.Fatalf("the README's first identity example: %v", err)
	}
	want := config.Require{{Claim: "email", Values: []string{"@example.com", "vip@other.org"}},
		{Claim: "email_verified", Values: []string{"true"}}, {Claim: "groups", Values: []string{"customers"}}}
	if id := c.Rooms[0].Identity; id == nil || !reflect.DeepEqual(id.Require, want) || len(id.Claims) != 3 {
		t.Fatalf("the README's first identity example: %+v", id)
	}
	for first, want := range map[string]string{
		"# rooms[].identity for Keycloak":           "https://sso.example.com/realms/shop",
		"# rooms[].identity for Microsoft Entra ID": "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0",
		"# rooms[].identity for Google":             "https://accounts.google.com",
	} {
		id := readmeIdentity(t, first, map[string]string{"KEYCLOAK_CLIENT_SECRET": "k", "ENTRA_CLIENT_SECRET": "e", "GOOGLE_CLIENT_SECRET": "g"})
		if id.Issuer != want || id.ClientSecret == "" || len(id.Require) == 0 || len(id.Claims) == 0 {
			t.Errorf("%s: %+v", first, id)
		}
	}
}

// TestIdentityThroughTheGate: behind the shipped nginx config, the gate
// gets identity-bound places without change: a person signs in at the
// provider on the way, is let in, and reaches the app; the gate checks the
// ticket by the ID token's sid, since sub names the person.
func TestIdentityThroughTheGate(t *testing.T) {
	idp := fakeidp.New("anteroom", "upstream-secret-0123")
	defer idp.Close()
	idp.SignIn(person("alice", "alice@example.com"))
	s := startGateSite(t, func(c *config.Config) {
		c.Rooms[0].Identity = &config.Identity{Issuer: idp.URL, ClientID: idp.ClientID, ClientSecret: idp.ClientSecret,
			Scopes: []string{"openid", "email"}, Claims: []string{"email"}}
	})
	laptop, phone := s.browser(), s.browser()
	w1, w2 := s.queueThrough(laptop, "/shop?item=7"), s.queueThrough(phone, "/shop?item=8")
	if idp.Requests != 2 {
		t.Fatalf("the provider saw %d sign-ins, want 2", idp.Requests)
	}
	resp, body := s.admit(laptop, roomID, w1)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(body, "app: /shop sub=") {
		t.Fatalf("laptop after admission: %d at %s: %.200s", resp.StatusCode, resp.Request.URL, body)
	}
	// The same person's phone was let in with the same admission: no
	// second advance.
	resp, err := phone.Post(w2+"/continue", "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != "/shop" {
		t.Fatalf("phone: %d at %s", resp.StatusCode, resp.Request.URL)
	}
}
