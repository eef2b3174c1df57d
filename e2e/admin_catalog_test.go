package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anteroom/anteroom/config"
)

// TestAdminCLIRoomsAndClients: `anteroom admin rooms|clients
// create|get|list|update|delete` and `audit` do what the admin API does,
// from files written as the config file writes a room or a client.
func TestAdminCLIRoomsAndClients(t *testing.T) {
	e := newEnv(t, false, func(c *config.Config) {
		c.Admin.Tokens = []config.AdminToken{{Name: viewerName, Token: viewerToken, Role: "viewer"}}
	})
	_, addr := e.start()
	base := "http://" + addr
	t.Setenv("ANTEROOM_URL", base)
	t.Setenv("ANTEROOM_ADMIN_TOKEN", adminToken)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cli := func(args ...string) string {
		t.Helper()
		code, out, errOut := adminCLI(t, args...)
		if code != 0 || errOut != "" {
			t.Fatalf("%v: exit %d, stderr %q", args, code, errOut)
		}
		return out
	}

	room := write("room.yaml", "id: drop\nname: The Drop\nadmission:\n  rate_per_minute: 30\nsession_ttl: 10m\n")
	if out := cli("rooms", "create", room); !strings.Contains(out, `"source": "api"`) || !strings.Contains(out, `"rate_per_minute": 30`) {
		t.Fatalf("rooms create:\n%s", out)
	}
	if out := cli("rooms", "list"); !strings.Contains(out, "drop") || !strings.Contains(out, roomID) {
		t.Fatalf("rooms list:\n%s", out)
	}
	if out := cli("rooms", "get", "drop"); !strings.Contains(out, `"definition"`) || !strings.Contains(out, `"The Drop"`) {
		t.Fatalf("rooms get:\n%s", out)
	}
	client := write("client.yaml", "id: drop-shop\nroom: drop\nredirect_uris: [\""+rpCallback+"\"]\n")
	out := cli("clients", "create", client)
	if !strings.Contains(out, "client secret (shown once; store it now): ") {
		t.Fatalf("clients create:\n%s", out)
	}
	if out := cli("clients", "list"); !strings.Contains(out, "drop-shop") || !strings.Contains(out, clientID) || strings.Contains(out, secret) {
		t.Fatalf("clients list:\n%s", out)
	}
	updated := write("room2.yaml", "{\"name\": \"The Drop\", \"message\": \"Sold out soon\"}")
	if out := cli("rooms", "update", "drop", updated); !strings.Contains(out, "Sold out soon") || !strings.Contains(out, `"rev": 2`) {
		t.Fatalf("rooms update:\n%s", out)
	}

	// A viewer's token changes nothing, and the command says why.
	code, _, errOut := adminCLI(t, "--token", viewerToken, "rooms", "delete", "drop")
	if code == 0 || !strings.Contains(errOut, "viewer") || !strings.Contains(errOut, "403") {
		t.Fatalf("viewer rooms delete: exit %d, %q", code, errOut)
	}
	// The file wins.
	if code, _, errOut := adminCLI(t, "rooms", "delete", roomID); code == 0 || !strings.Contains(errOut, "configuration file") {
		t.Fatalf("deleting the file's room: exit %d, %q", code, errOut)
	}

	if out := cli("clients", "delete", "drop-shop"); out != "deleted client drop-shop\n" {
		t.Fatalf("clients delete: %q", out)
	}
	if out := cli("rooms", "delete", "drop"); out != "deleted room drop\n" {
		t.Fatalf("rooms delete: %q", out)
	}
	out = cli("audit", "--limit", "10")
	for _, want := range []string{"room.create", "client.create", "room.update", "client.delete", "room.delete"} {
		if !strings.Contains(out, want) {
			t.Fatalf("audit lacks %s:\n%s", want, out)
		}
	}
	if strings.Count(out, "admin") < 5 {
		t.Fatalf("audit does not name who:\n%s", out)
	}
}
