package config

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// The admin API's rooms and clients are decoded and checked as the file's
// are, with errors naming the key without the rooms[N] prefix.
func TestParseRoomLikeTheFile(t *testing.T) {
	r, err := ParseRoom([]byte(`{"id": "sale", "admission": {"rate_per_minute": 120}, "session_ttl": "10m"}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "sale" || r.State != "open" || r.MaxWait.D().Hours() != 6 || *r.Admission.RatePerMinute != 120 || r.SessionTTL.String() != "10m" {
		t.Fatalf("room with defaults: %+v", r)
	}
	for body, want := range map[string]string{
		`{"id": "sale", "admission": {"rate_per_minute": 0}}`: "admission.rate_per_minute: must be > 0",
		`{"id": "Sale!"}`:                                        "id: must match",
		`{"id": "sale", "admision": {}}`:                         "admision: unknown key",
		`{"id": "sale", "session_ttl": 30}`:                      "session_ttl: invalid duration",
		`{"id": "sale", "session_ttl": "30s"}`:                   "session_ttl: must be at least 1m",
		`{"id": "sale", "state": "ajar"}`:                        "state: must be one of",
		`{"id": "sale", "origin_health": {"url": "https://x/"}}`: "origin_health: not available",
		`[1]`: "body must be a YAML mapping",
		``:    "body is empty",
	} {
		_, err := ParseRoom([]byte(body))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseRoom(%s) = %v, want %q", body, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "rooms[") {
			t.Errorf("ParseRoom(%s): %v names the file's path", body, err)
		}
	}
}

func TestParseClientLikeTheFile(t *testing.T) {
	rooms := func(id string) bool { return id == "sale" }
	if _, err := ParseClient([]byte(`{"id": "shop", "room": "sale", "redirect_uris": ["http://shop.example/cb"]}`), true, rooms); err != nil {
		t.Fatalf("confidential client with an http redirect: %v", err)
	}
	for _, tc := range []struct {
		body         string
		confidential bool
		want         string
	}{
		{`{"id": "shop", "room": "sale", "redirect_uris": ["http://shop.example/cb"]}`, false, "redirect_uris[0]: a public client must use https"},
		{`{"id": "shop", "room": "gone", "redirect_uris": ["https://shop.example/cb"]}`, true, `room: unknown room "gone"`},
		{`{"id": "shop", "room": "sale"}`, true, "redirect_uris: at least one redirect URI is required"},
		{`{"id": "shop", "room": "sale", "secret": "0123456789abcdefghij", "redirect_uris": ["https://a/"]}`, true, "secret: is drawn by the server"},
		{`{"id": "sh op", "room": "sale", "redirect_uris": ["https://a/"]}`, true, "id: must match"},
	} {
		_, err := ParseClient([]byte(tc.body), tc.confidential, rooms)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseClient(%s) = %v, want %q", tc.body, err, tc.want)
		}
	}
}

func TestAdminTokens(t *testing.T) {
	c := &Config{Admin: Admin{Token: "the-old-admin-token", Tokens: []AdminToken{
		{Name: "ops", Token: "an-operator-token-0001", Role: "operator"},
		{Name: "ops", Token: "a-viewer-token-00000001", Role: "viewer"},
		{Name: "admin", Token: "the-old-admin-token", Role: "owner"},
		{Name: "Bad.Name", Token: "short", Role: "viewer"},
	}}}
	v := new(validator)
	v.admin(&c.Admin)
	got := errors.Join(v.errs...).Error()
	for _, want := range []string{
		"admin.tokens[1].name: duplicate of admin.tokens[0]",
		`admin.tokens[2].name: "admin" names admin.token`,
		"admin.tokens[2].token: same as admin.token",
		`admin.tokens[2].role: must be viewer or operator, got "owner"`,
		"admin.tokens[3].name: must match",
		"admin.tokens[3].token: must be at least 16 characters, got 5",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "the-old-admin-token") || strings.Contains(got, "short") {
		t.Errorf("a token in an error message:\n%s", got)
	}
}

// TestREADMERuntimeExamples: the room and client bodies for the admin API
// in docs/operations.md are what ParseRoom and ParseClient accept, and the
// admin block with named tokens in docs/configuration.md validates.
func TestREADMERuntimeExamples(t *testing.T) {
	var readme string
	for _, doc := range []string{"../docs/operations.md", "../docs/configuration.md"} {
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		readme += string(data)
	}
	block := func(start string) string {
		_, rest, ok := strings.Cut(readme, start)
		if !ok {
			t.Fatalf("the docs have no block starting %q", start)
		}
		body, _, _ := strings.Cut(rest, "```")
		return strings.TrimPrefix(start, "```json\n") + body
	}
	room, err := ParseRoom([]byte(block("```json\n{\"id\": \"spring-drop\"")))
	if err != nil {
		t.Fatalf("README room: %v", err)
	}
	if _, err := ParseClient([]byte(block("```json\n{\"id\": \"spring-shop\"")), true, func(id string) bool { return id == room.ID }); err != nil {
		t.Fatalf("README client: %v", err)
	}
	admin := block("admin:\n  token:")
	admin, _, _ = strings.Cut(admin, "rooms:")
	c, err := Parse([]byte("issuer: https://q.example.com\nsecrets: {cookie_keys: [\"0123456789abcdef0123456789abcdef\"]}\n"+
		admin+"rooms: [{id: r1}]\nclients: [{id: c, room: r1, redirect_uris: [\"https://a.example/cb\"]}]\n"), func(n string) (string, bool) {
		return "token-of-" + strings.ToLower(n) + "-0123456789", true
	})
	if err != nil {
		t.Fatalf("README admin block: %v", err)
	}
	if len(c.Admin.Tokens) != 2 || c.Admin.Tokens[1].Role != "viewer" {
		t.Fatalf("README admin tokens: %+v", c.Admin.Tokens)
	}
}

// TestRuntimeRoomRefusesWhatOnlyTheFileWires: a room created through the
// admin API cannot ask for what an instance wires only at start (probes,
// an identity provider, a proof of work); accepted, the last two would be
// a room that looks protected and is not.
func TestRuntimeRoomRefusesWhatOnlyTheFileWires(t *testing.T) {
	for body, key := range map[string]string{
		`{"id": "r", "origin_health": {"url": "https://shop.example.com/healthz"}}`:                             "origin_health",
		`{"id": "r", "identity": {"issuer": "https://id.example.com", "client_id": "c", "client_secret": "s"}}`: "identity",
		`{"id": "r", "challenge": {"mode": "always"}}`:                                                          "challenge",
	} {
		_, err := ParseRoom([]byte(body))
		if err == nil || !strings.HasPrefix(err.Error(), key+": not available for rooms created through the admin API") {
			t.Errorf("%s: %v, want %s refused", body, err, key)
		}
	}
	if _, err := ParseRoom([]byte(`{"id": "r", "challenge": {"mode": "off"}}`)); err != nil {
		t.Errorf("challenge off: %v", err)
	}
}
