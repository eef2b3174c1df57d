package config_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/anteroom/anteroom/config"
)

func identityRoom(identity string) string {
	return `issuer: https://queue.example.com
secrets: {cookie_keys: ["` + cookieKey + `"]}
rooms:
  - id: r1
    identity:
` + identity + `
clients: [{id: c1, secret: "` + shopSecret + `", redirect_uris: ["https://a.example/cb"], room: r1}]
`
}

func TestIdentityParses(t *testing.T) {
	t.Parallel()
	c, err := config.Parse([]byte(identityRoom(`      issuer: https://id.example.com
      client_id: anteroom
      client_secret: ${IDP_SECRET}
      claims: [email, name]
      require: {email: ["@example.com", vip@other.org], email_verified: [true], groups: customers}`)),
		env(map[string]string{"IDP_SECRET": "from-the-environment"}))
	if err != nil {
		t.Fatal(err)
	}
	id := c.Rooms[0].Identity
	if id.ClientSecret != "from-the-environment" || !reflect.DeepEqual(id.Scopes, []string{"openid", "email", "profile"}) {
		t.Fatalf("identity %+v", id)
	}
	want := config.Require{{Claim: "email", Values: []string{"@example.com", "vip@other.org"}},
		{Claim: "email_verified", Values: []string{"true"}}, {Claim: "groups", Values: []string{"customers"}}}
	if !reflect.DeepEqual(id.Require, want) {
		t.Fatalf("require %+v", id.Require)
	}
}

func TestIdentityErrorsNameTheKey(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		identity string
		want     []string
	}{
		"missing": {`      scopes: [email]`, []string{
			"rooms[0].identity.issuer: required",
			"rooms[0].identity.client_id: required",
			"rooms[0].identity.client_secret: required (use ${ENV} to keep it out of the file)",
			"rooms[0].identity.scopes: must include openid",
		}},
		"plain http": {`      {issuer: "http://id.example.com", client_id: a, client_secret: b}`, []string{
			"rooms[0].identity.issuer: must use https (http is allowed only for localhost and loopback addresses)",
		}},
		"reserved claim": {`      {issuer: "https://id.example.com", client_id: a, client_secret: b, claims: [email, sub, email]}`, []string{
			`rooms[0].identity.claims[1]: "sub" is one of Anteroom's own claims and cannot be copied from the provider`,
			`rooms[0].identity.claims[2]: duplicate claim "email"`,
		}},
		"require shape": {`      {issuer: "https://id.example.com", client_id: a, client_secret: b, require: {email: [[x]], groups: []}}`, []string{
			"rooms[0].identity.require.email[0]: expected a string, number or true/false, got a list",
			"rooms[0].identity.require.groups: must list at least one value",
		}},
		"require not a map": {`      {issuer: "https://id.example.com", client_id: a, client_secret: b, require: [email]}`, []string{
			"rooms[0].identity.require: expected a mapping of claim to allowed values, got a list",
		}},
		"unknown key": {`      {issuer: "https://id.example.com", client_id: a, client_secret: b, secret: c}`, []string{
			"rooms[0].identity.secret: unknown key",
		}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Parse([]byte(identityRoom(tc.identity)), env(nil))
			if got := errLines(err); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestIdentityWithAChallengeWarns: in a room with an identity provider the
// place is given at the provider's callback, so a challenge there would
// never be asked; the operator is told at start-up, not left to believe
// it protects the room.
func TestIdentityWithAChallengeWarns(t *testing.T) {
	c, err := config.Parse([]byte(`
issuer: https://queue.example.com
secrets: {cookie_keys: ["0123456789abcdef0123456789abcdef"]}
rooms:
  - id: exam
    challenge: {mode: always}
    identity: {issuer: https://id.example.com, client_id: anteroom, client_secret: s3cret}
  - id: shop
    challenge: {mode: always}
clients:
  - {id: c, secret: 0123456789abcdef, redirect_uris: ["https://a.example/cb"], room: exam}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	w := c.Warnings()
	if len(w) != 1 || !strings.HasPrefix(w[0], "rooms[0].challenge: this room has an identity provider") {
		t.Fatalf("Warnings() = %q, want one for rooms[0].challenge", w)
	}
}
