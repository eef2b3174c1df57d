package e2e

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/anteroom/anteroom/config"
)

// These tests run the anteroom command's `anteroom admin`, as the shell
// would, against an instance of the e2e harness.

// adminCLI runs `anteroom admin args…` and returns its exit code and output.
func adminCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return runAnteroom(t, append([]string{"admin"}, args...)...)
}

// startForAdmin starts an instance with a second room that has a policy,
// and returns its base URL. The token comes from the environment, as the
// README recommends.
func startForAdmin(t *testing.T) (*env, string) {
	t.Helper()
	e := newEnv(t, false, func(c *config.Config) {
		rate, maxActive := 600.0, 50
		c.Rooms = append(c.Rooms, config.Room{ID: "sale", Name: "Sale",
			Admission:  config.Admission{RatePerMinute: &rate, MaxActive: &maxActive},
			SessionTTL: config.Duration(30 * time.Minute), MaxWait: config.Duration(time.Hour)})
		c.ApplyDefaults()
	})
	_, addr := e.start()
	t.Setenv("ANTEROOM_ADMIN_TOKEN", adminToken)
	t.Setenv("ANTEROOM_URL", "")
	return e, "http://" + addr
}

// tableRows splits a table into its header and rows, and checks that every
// row's columns start where the header's do.
func tableRows(t *testing.T, out string) map[string][]string {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	header := lines[0]
	cols := []string{"ID", "STATE", "WAITING", "SERVING", "TAIL", "ACTIVE", "RATE/MIN", "MEASURED", "ETA", "QUEUE FULL", "CHALLENGE"}
	var starts []int
	for _, c := range cols {
		i := strings.Index(header, c)
		if i < 0 {
			t.Fatalf("header lacks %s: %q", c, header)
		}
		starts = append(starts, i)
	}
	rows := map[string][]string{}
	for _, l := range lines[1:] {
		fields := strings.Fields(l)
		if len(fields) != len(cols) {
			t.Fatalf("row %q has %d columns, want %d", l, len(fields), len(cols))
		}
		for i, start := range starts {
			if len(l) <= start || l[start] == ' ' || (start > 0 && l[start-1] != ' ') {
				t.Fatalf("column %s is not aligned in %q (header %q)", cols[i], l, header)
			}
		}
		rows[fields[0]] = fields
	}
	return rows
}

func TestAdminCLIStatusTableAndJSON(t *testing.T) {
	e, base := startForAdmin(t)
	t.Setenv("ANTEROOM_URL", base)
	r := e.rp(clientID, secret, rpCallback)
	queue(t, e.browser(), r, newLogin())
	queue(t, e.browser(), r, newLogin())

	code, out, errOut := adminCLI(t, "status")
	if code != 0 || errOut != "" {
		t.Fatalf("status: exit %d, stderr %q", code, errOut)
	}
	rows := tableRows(t, out)
	if got := strings.Join(rows["launch"], " "); got != "launch open 2 0 2 0 manual - - no off" {
		t.Fatalf("launch row: %q\n%s", got, out)
	}
	// The sale room admits at 600/min with 50 active at most; nobody waits.
	if got := strings.Join(rows["sale"], " "); got != "sale open 0 0 0 0/50 600 - 1s no off" {
		t.Fatalf("sale row: %q\n%s", got, out)
	}

	// One room.
	code, out, _ = adminCLI(t, "status", "launch")
	if rows := tableRows(t, out); code != 0 || len(rows) != 1 || rows["launch"] == nil {
		t.Fatalf("status launch: exit %d\n%s", code, out)
	}

	// --json prints the API's documents.
	code, out, _ = adminCLI(t, "--json", "status")
	var all struct {
		Rooms []map[string]any `json:"rooms"`
	}
	if err := json.Unmarshal([]byte(out), &all); code != 0 || err != nil || len(all.Rooms) != 2 ||
		all.Rooms[0]["id"] != roomID || all.Rooms[0]["waiting"] != float64(2) || all.Rooms[1]["id"] != "sale" {
		t.Fatalf("status --json: exit %d, %v: %s", code, err, out)
	}
	code, out, _ = adminCLI(t, "status", "--json", "launch")
	var one map[string]any
	if err := json.Unmarshal([]byte(out), &one); code != 0 || err != nil || one["id"] != roomID || one["tail"] != float64(2) {
		t.Fatalf("status --json launch: exit %d, %v: %s", code, err, out)
	}
}

func TestAdminCLIChangesRooms(t *testing.T) {
	e, base := startForAdmin(t)
	r := e.rp(clientID, secret, rpCallback)
	b := e.browser()
	waitURL := queue(t, b, r, newLogin())
	queue(t, e.browser(), r, newLogin())
	cli := func(args ...string) []string {
		t.Helper()
		code, out, errOut := adminCLI(t, append([]string{"--url", base, "--token", adminToken}, args...)...)
		if code != 0 || errOut != "" {
			t.Fatalf("%v: exit %d, stderr %q", args, code, errOut)
		}
		rows := tableRows(t, out)
		if len(rows) != 1 {
			t.Fatalf("%v: want the room's status, got\n%s", args, out)
		}
		for _, row := range rows {
			return row
		}
		return nil
	}
	const (
		state   = 1
		waiting = 2
		serving = 3
		active  = 5
		rate    = 6
	)

	if row := cli("advance", roomID, "1"); row[serving] != "1" || row[waiting] != "1" {
		t.Fatalf("advance: %v", row)
	}
	if e.serving() != 1 {
		t.Fatalf("serving after advance: %d", e.serving())
	}
	if st := pollStatus(t, b, waitURL); st.State != "admitted" {
		t.Fatalf("the first visitor after advance: %+v", st)
	}

	for _, c := range []struct{ cmd, want string }{
		{"pause", "paused"}, {"resume", "open"}, {"close", "closed"}, {"open", "open"},
	} {
		if row := cli(c.cmd, roomID); row[state] != c.want {
			t.Fatalf("%s: state %q, want %q", c.cmd, row[state], c.want)
		}
		if got := e.roomStatus()["state"]; got != c.want {
			t.Fatalf("%s: the API says %v", c.cmd, got)
		}
	}

	// set, with its flags after the room.
	if row := cli("set", roomID, "--rate", "120", "--max-active", "40"); row[rate] != "120" || row[active] != "0/40" {
		t.Fatalf("set: %v", row)
	}
	pol, _ := e.roomStatus()["policy"].(map[string]any)
	if pol["rate_per_minute"] != float64(120) || pol["max_active"] != float64(40) {
		t.Fatalf("policy after set: %v", pol)
	}
	if row := cli("set", roomID, "--state", "passthrough", "--max-active", "0"); row[state] != "passthrough" || row[active] != "0" {
		t.Fatalf("set --state: %v", row)
	}

	// --json prints the room the API answered with.
	code, out, _ := adminCLI(t, "--url", base+"/", "--json", "pause", roomID)
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); code != 0 || err != nil || doc["state"] != "paused" {
		t.Fatalf("pause --json: exit %d, %v: %s", code, err, out)
	}
}

func TestAdminCLIErrors(t *testing.T) {
	_, base := startForAdmin(t)

	// The server refuses: exit 1, one line, the API's reason, no token.
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"wrong token", []string{"--token", "wrong-token-0123456789", "status"}, "anteroom admin: the server refused the admin token (HTTP 401): check ANTEROOM_ADMIN_TOKEN or --token"},
		{"unknown room", []string{"status", "nowhere"}, `anteroom admin: room "nowhere": no such room (HTTP 404)`},
		{"unknown room advance", []string{"advance", "nowhere", "3"}, `anteroom admin: room "nowhere": no such room (HTTP 404)`},
		{"refused value", []string{"advance", roomID, "2000000"}, `anteroom admin: room "launch": count: must be between 1 and 1000000 (HTTP 400)`},
		{"refused policy", []string{"set", roomID, "--rate", "-1"}, `anteroom admin: room "launch": rate_per_minute must be between 0 and 1000000, got -1 (HTTP 400)`},
	} {
		code, out, errOut := adminCLI(t, append([]string{"--url", base}, c.args...)...)
		if code != 1 || out != "" || errOut != c.want+"\n" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 1 and %q", c.name, code, out, errOut, c.want)
		}
		if strings.Contains(errOut, adminToken) || strings.Contains(errOut, "wrong-token") {
			t.Errorf("%s: the token is in the output: %q", c.name, errOut)
		}
	}

	// A server that is not there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := "http://" + ln.Addr().String()
	ln.Close()
	if code, _, errOut := adminCLI(t, "--url", gone, "status"); code != 1 || !strings.HasPrefix(errOut, "anteroom admin: cannot reach "+gone+": ") ||
		strings.Count(errOut, "\n") != 1 {
		t.Errorf("unreachable: exit %d, %q", code, errOut)
	}

	// Usage errors: exit 2, before any request.
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"status", "a", "b"},
		{"advance", roomID},
		{"advance", roomID, "x"},
		{"advance", roomID, "0"},
		{"pause"},
		{"pause", roomID, "extra"},
		{"set", roomID},
		{"set", roomID, "--state", "asleep"},
		{"pause", roomID, "--rate", "5"},
		{"--colour", "status"},
		{"--url", "ftp://x", "status"},
		{"--url", "not a url", "status"},
	} {
		code, out, errOut := adminCLI(t, args...)
		if args := strings.Join(args, " "); code != 2 || out != "" || !strings.HasPrefix(errOut, "anteroom admin: ") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2", args, code, out, errOut)
		}
	}
	t.Setenv("ANTEROOM_ADMIN_TOKEN", "")
	if code, _, errOut := adminCLI(t, "--url", base, "status"); code != 2 || !strings.Contains(errOut, "no admin token") {
		t.Errorf("no token: exit %d, %q", code, errOut)
	}
	if code, out, _ := adminCLI(t, "--help"); code != 0 || !strings.Contains(out, "advance ROOM N") {
		t.Errorf("--help: exit %d, %q", code, out)
	}
}

func TestAdminCLIKeysListsAndRetires(t *testing.T) {
	_, base := startForAdmin(t)
	t.Setenv("ANTEROOM_URL", base)
	keyRows := func() [][]string {
		t.Helper()
		code, out, errOut := adminCLI(t, "keys")
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if code != 0 || errOut != "" || len(lines) < 2 || strings.Join(strings.Fields(lines[0]), " ") != "KID ALG STATE NOT BEFORE NOT AFTER" {
			t.Fatalf("keys: exit %d, stderr %q\n%s", code, errOut, out)
		}
		var rows [][]string
		for _, l := range lines[1:] {
			rows = append(rows, strings.Fields(l))
		}
		return rows
	}
	rows := keyRows()
	if len(rows) != 1 || len(rows[0]) != 5 || rows[0][1] != "RS256" || rows[0][2] != "signing" || rows[0][4] != "-" {
		t.Fatalf("keys: %v, want one RS256 key signing, open-ended", rows)
	}
	if _, err := time.Parse(time.RFC3339, rows[0][3]); err != nil {
		t.Fatalf("keys: NOT BEFORE %q: %v", rows[0][3], err)
	}
	leaked := rows[0][0]

	// (The instance, running in this process, logs its warning to the
	// same stderr; the command itself writes none.)
	code, out, errOut := adminCLI(t, "keys", "retire", leaked)
	fresh, ok := strings.CutPrefix(strings.TrimSuffix(out, " signs now\n"), "retired "+leaked+"; ")
	if code != 0 || strings.Contains(errOut, "anteroom admin") || !ok || fresh == "" || fresh == leaked {
		t.Fatalf("keys retire: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if rows := keyRows(); len(rows) != 1 || rows[0][0] != fresh || rows[0][2] != "signing" {
		t.Fatalf("keys after the retirement: %v, want only %s signing", rows, fresh)
	}
	code, out, _ = adminCLI(t, "--json", "keys")
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal([]byte(out), &doc); code != 0 || err != nil || len(doc.Keys) != 1 || doc.Keys[0]["kid"] != fresh ||
		doc.Keys[0]["state"] != "signing" || doc.Keys[0]["not_after"] != nil {
		t.Fatalf("keys --json: exit %d, %v: %s", code, err, out)
	}

	// The key is gone: retiring it again is refused, in one line.
	want := `anteroom admin: signing key "` + leaked + `": no such signing key (never issued here, or already retired) (HTTP 404)` + "\n"
	if code, out, errOut := adminCLI(t, "keys", "retire", leaked); code != 1 || out != "" || errOut != want {
		t.Fatalf("retiring again: exit %d, stdout %q, stderr %q; want exit 1 and %q", code, out, errOut, want)
	}
	for _, args := range [][]string{{"keys", "retire"}, {"keys", "retire", ""}, {"keys", "retire", "a", "b"}, {"keys", "frob"}, {"keys", "--rate", "5"}} {
		if code, out, errOut := adminCLI(t, args...); code != 2 || out != "" || !strings.HasPrefix(errOut, "anteroom admin: ") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2", args, code, out, errOut)
		}
	}
	if code, out, _ := adminCLI(t, "--help"); code != 0 || !strings.Contains(out, "keys retire KID") {
		t.Errorf("--help: exit %d, %q", code, out)
	}
}
