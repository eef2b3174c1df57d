package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/anteroom/anteroom/waitingroom"
)

// exitFailed is the exit code of an admin command the server refused or
// could not be asked.
const exitFailed = 1

// adminTimeout bounds each call to the admin API.
const adminTimeout = 10 * time.Second

// defaultAdminURL is where `anteroom admin` looks without --url or
// ANTEROOM_URL: the default listen address.
const defaultAdminURL = "http://127.0.0.1:8080"

func adminUsage(w io.Writer) {
	fmt.Fprint(w, `usage: anteroom admin [--url URL] [--token TOKEN] [--json] COMMAND

commands:
  status [ROOM]             every room's status, or one room's
  advance ROOM N            move the room's serving counter by N
  pause ROOM                admit nobody; everyone keeps their place
  resume ROOM               admit by the room's policy again (state open)
  close ROOM                take no new visitors
  open ROOM                 take visitors and admit them (state open)
  set ROOM [--rate N] [--max-active N] [--state S]
                            change the admission policy (0 clears a limit) or state
                            (open, paused, closed, passthrough)
  challenge ROOM MODE       switch the room's proof of work before a place for every
                            instance: off, always or under_load
`+lanesUsage+`  keys                      the signing keys in the JWKS, and what each does
  keys retire KID           take a leaked signing key out of the JWKS at once; if it
                            signs, a new key signs from now (other instances follow
                            at their next refresh of the keys, within a minute)
`+adminCatalogUsage+`
flags:
  --url URL        the server's base URL, its issuer (default $ANTEROOM_URL, else `+defaultAdminURL+`)
  --token TOKEN    the admin token (default $ANTEROOM_ADMIN_TOKEN; prefer the variable,
                   other users can read a process's arguments)
  --json           print the API's JSON instead of a table
`)
}

// adminCmd runs `anteroom admin`: it calls a running server's admin API.
// getenv reads the environment (os.Getenv).
func adminCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("admin", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported below, on one line
	base := fs.String("url", "", "")
	token := fs.String("token", "", "")
	asJSON := fs.Bool("json", false, "")
	rate := fs.Float64("rate", 0, "")
	maxActive := fs.Int("max-active", 0, "")
	state := fs.String("state", "", "")
	public := fs.Bool("public", false, "")
	limit := fs.Int("limit", 0, "")
	lanes := newLaneFlags(fs)
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "anteroom admin: "+format+"\n", a...)
		fmt.Fprintln(stderr, "run 'anteroom admin --help' for usage")
		return exitConfig
	}
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		adminUsage(stdout)
		return 0
	}
	if err != nil {
		return usageErr("%v", err)
	}
	if len(pos) == 0 {
		return usageErr("a command is required")
	}
	setFlags, given := map[string]bool{}, map[string]bool{}
	fs.Visit(func(f *flag.Flag) {
		given[f.Name] = true
		if f.Name == "rate" || f.Name == "max-active" || f.Name == "state" {
			setFlags[f.Name] = true
		}
	})
	cmd, rest := pos[0], pos[1:]
	if cmd != "set" && len(setFlags) > 0 && (cmd != "events" || setFlags["state"]) {
		return usageErr("--rate, --max-active and --state belong to set (--rate and --max-active to events too)")
	}

	var req adminRequest
	switch cmd {
	case "status":
		if len(rest) > 1 {
			return usageErr("status takes at most one room")
		}
		req = adminRequest{method: http.MethodGet, path: "/admin/v1/rooms"}
		if len(rest) == 1 {
			req.room = rest[0]
			req.path += "/" + url.PathEscape(rest[0])
		}
	case "advance":
		if len(rest) != 2 {
			return usageErr("usage: advance ROOM N")
		}
		n, err := strconv.ParseInt(rest[1], 10, 64)
		if err != nil || n < 1 {
			return usageErr("advance: the count N must be a positive whole number (how many people to let in), got %q", rest[1])
		}
		req = adminRequest{method: http.MethodPost, room: rest[0], path: "/admin/v1/rooms/" + url.PathEscape(rest[0]) + "/advance",
			body: map[string]any{"count": n}}
	case "pause", "resume", "close", "open":
		if len(rest) != 1 {
			return usageErr("usage: %s ROOM", cmd)
		}
		st := map[string]waitingroom.State{"pause": waitingroom.StatePaused, "resume": waitingroom.StateOpen,
			"close": waitingroom.StateClosed, "open": waitingroom.StateOpen}[cmd]
		req = adminRequest{method: http.MethodPatch, room: rest[0], path: "/admin/v1/rooms/" + url.PathEscape(rest[0]),
			body: map[string]any{"state": st}}
	case "set":
		if len(rest) != 1 {
			return usageErr("usage: set ROOM [--rate N] [--max-active N] [--state S]")
		}
		if len(setFlags) == 0 {
			return usageErr("set: give at least one of --rate, --max-active and --state")
		}
		body := map[string]any{}
		if setFlags["rate"] {
			if math.IsNaN(*rate) || math.IsInf(*rate, 0) {
				return usageErr("set: --rate must be a number, got %v", *rate)
			}
			body["rate_per_minute"] = *rate
		}
		if setFlags["max-active"] {
			body["max_active"] = *maxActive
		}
		if setFlags["state"] {
			if !waitingroom.State(*state).Valid() {
				return usageErr("set: --state must be open, paused, closed or passthrough, got %q", *state)
			}
			body["state"] = *state
		}
		req = adminRequest{method: http.MethodPatch, room: rest[0], path: "/admin/v1/rooms/" + url.PathEscape(rest[0]), body: body}
	case "challenge":
		if len(rest) != 2 {
			return usageErr("usage: challenge ROOM MODE")
		}
		if m := rest[1]; m != "off" && m != "always" && m != "under_load" {
			return usageErr("challenge: MODE must be off, always or under_load, got %q", m)
		}
		req = adminRequest{method: http.MethodPatch, room: rest[0], path: "/admin/v1/rooms/" + url.PathEscape(rest[0]),
			body: map[string]any{"challenge_mode": rest[1]}}
	case "codes", "events":
		for name, v := range map[string]string{"starts": *lanes.starts, "ends": *lanes.ends, "prequeue-from": *lanes.prequeue, "expires": *lanes.expires} {
			if err := checkTime(name, v); err != nil {
				return usageErr("%v", err)
			}
		}
		if req, err = laneRequest(cmd, rest, lanes, given, *rate, *maxActive); err != nil {
			return usageErr("%v", err)
		}
	case "keys":
		switch {
		case len(rest) == 0:
			req = adminRequest{method: http.MethodGet, path: "/admin/v1/keys", show: writeKeyTable}
		case len(rest) == 2 && rest[0] == "retire" && rest[1] != "":
			req = adminRequest{method: http.MethodPost, kid: rest[1], path: "/admin/v1/keys/" + url.PathEscape(rest[1]) + "/retire",
				show: writeRetired}
		default:
			return usageErr("usage: keys, or keys retire KID")
		}
	default:
		r, code, ok := catalogRequest(cmd, rest, *public, *limit, usageErr)
		if !ok {
			return usageErr("unknown command %q", cmd)
		}
		if code >= 0 {
			return code
		}
		req = r
	}

	if *base == "" {
		*base = getenv("ANTEROOM_URL")
	}
	if *base == "" {
		*base = defaultAdminURL
	}
	u, err := url.Parse(*base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return usageErr("--url must be an http:// or https:// base URL such as https://queue.example.com, got %q", *base)
	}
	if *token == "" {
		*token = getenv("ANTEROOM_ADMIN_TOKEN")
	}
	if *token == "" {
		return usageErr("no admin token: set ANTEROOM_ADMIN_TOKEN (or pass --token)")
	}

	client := &adminClient{base: strings.TrimSuffix(u.String(), "/"), token: *token, http: &http.Client{
		Timeout: adminTimeout,
		// A redirect would resend the token elsewhere, or turn a PATCH
		// into a GET: report it instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	body, err := client.do(ctx, req)
	if err != nil {
		fmt.Fprintf(stderr, "anteroom admin: %v\n", err)
		return exitFailed
	}
	if *asJSON {
		_, _ = stdout.Write(body)
		if !bytes.HasSuffix(body, []byte("\n")) {
			fmt.Fprintln(stdout)
		}
		return 0
	}
	show := req.show
	if show == nil {
		show = writeRooms(req.room)
	}
	if err := show(stdout, body); err != nil {
		fmt.Fprintf(stderr, "anteroom admin: %v\n", err)
		return exitFailed
	}
	return 0
}

// writeRooms returns what prints the answer of a call about room ("":
// every room) as a table.
func writeRooms(room string) func(io.Writer, []byte) error {
	return func(w io.Writer, body []byte) error {
		var rooms []adminRoom
		var err error
		if room == "" {
			var doc struct {
				Rooms []adminRoom `json:"rooms"`
			}
			err = json.Unmarshal(body, &doc)
			rooms = doc.Rooms
		} else {
			var doc adminRoom
			err = json.Unmarshal(body, &doc)
			rooms = []adminRoom{doc}
		}
		if err != nil {
			return fmt.Errorf("the server's answer is not a room status: %v", err)
		}
		writeRoomTable(w, rooms)
		return nil
	}
}

// parseInterspersed parses fs's flags wherever they stand among the
// positional arguments (`set launch --rate 600`), and returns the latter.
// An argument that is a negative number (`advance launch -1`) is a
// positional argument, not an unknown flag, unless it is the value of the
// flag before it (`--rate -1`), so that the command can say what is wrong
// with it. "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for len(args) > 0 {
		a := args[0]
		if a == "--" {
			return append(pos, args[1:]...), nil
		}
		if len(a) < 2 || a[0] != '-' || isNumber(a) {
			pos = append(pos, a)
			args = args[1:]
			continue
		}
		// One flag, with its value when that is the next argument.
		n := 1
		name := strings.TrimLeft(a, "-")
		if !strings.Contains(name, "=") {
			if f := fs.Lookup(name); f != nil && !isBoolFlag(f) {
				n = min(2, len(args))
			}
		}
		if err := fs.Parse(args[:n]); err != nil {
			return nil, err
		}
		args = args[n:]
	}
	return pos, nil
}

// isNumber reports whether s is a number, such as -1 or -2.5.
func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

// isBoolFlag reports whether f takes no value (--json).
func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// adminRequest is one call to the admin API.
type adminRequest struct {
	method, path string
	// room is the room the call is about ("" for every room), for
	// messages and to know the answer's shape.
	room string
	// kid is the signing key the call is about, for messages.
	kid string
	// body is sent as JSON when set.
	body any
	// show prints the answer as a person reads it (nil: rooms).
	show func(io.Writer, []byte) error
}

// adminClient calls the admin API of the server at base.
type adminClient struct {
	base  string
	token string
	http  *http.Client
}

// do makes the call and returns the answer's body, or an error fit for
// one line of output (never containing the token).
func (c *adminClient) do(ctx context.Context, ar adminRequest) ([]byte, error) {
	var body io.Reader
	if ar.body != nil {
		b, err := json.Marshal(ar.body)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, ar.method, c.base+ar.path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		if errors.Is(err, context.DeadlineExceeded) || (uerr != nil && uerr.Timeout()) {
			return nil, fmt.Errorf("%s did not answer within %s", c.base, adminTimeout)
		}
		return nil, fmt.Errorf("cannot reach %s: %v", c.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("read the answer of %s: %v", c.base, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return b, nil
	}
	about := ""
	switch {
	case ar.room != "":
		about = fmt.Sprintf("room %q: ", ar.room)
	case ar.kid != "":
		about = fmt.Sprintf("signing key %q: ", ar.kid)
	}
	var apiErr struct {
		Code        string `json:"error"`
		Description string `json:"error_description"`
	}
	isAPIError := json.Unmarshal(b, &apiErr) == nil && apiErr.Code != ""
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return nil, errors.New("the server refused the admin token (HTTP 401): check ANTEROOM_ADMIN_TOKEN or --token")
	case resp.StatusCode == http.StatusForbidden && isAPIError:
		// A viewer's token: the description names it.
		return nil, fmt.Errorf("%s (HTTP 403)", apiErr.Description)
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return nil, fmt.Errorf("%s redirects to %s (HTTP %d): use that address as --url", c.base, resp.Header.Get("Location"), resp.StatusCode)
	case isAPIError && apiErr.Description != "":
		return nil, fmt.Errorf("%s%s (HTTP %d)", about, apiErr.Description, resp.StatusCode)
	case isAPIError:
		return nil, fmt.Errorf("%s%s (HTTP %d)", about, apiErr.Code, resp.StatusCode)
	}
	return nil, fmt.Errorf("%s%s %s answered HTTP %d; is --url an Anteroom server?", about, ar.method, c.base+ar.path, resp.StatusCode)
}

// adminRoom is the part of the admin API's room status the table shows.
type adminRoom struct {
	ID      string `json:"id"`
	State   string `json:"state"`
	Waiting int64  `json:"waiting"`
	Serving int64  `json:"serving"`
	Tail    int64  `json:"tail"`
	Active  int64  `json:"active"`
	Policy  struct {
		RatePerMinute float64 `json:"rate_per_minute"`
		MaxActive     int64   `json:"max_active"`
	} `json:"policy"`
	MeasuredRatePerMinute *float64 `json:"measured_rate_per_minute"`
	ETASeconds            *int64   `json:"eta_seconds"`
	QueueFull             bool     `json:"queue_full"`
	Challenge             *struct {
		Mode       string `json:"mode"`
		Difficulty int64  `json:"difficulty"`
	} `json:"challenge"`
}

// writeRoomTable writes rooms as an aligned table, one room a line.
func writeRoomTable(w io.Writer, rooms []adminRoom) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tWAITING\tSERVING\tTAIL\tACTIVE\tRATE/MIN\tMEASURED\tETA\tQUEUE FULL\tCHALLENGE")
	for _, r := range rooms {
		active := strconv.FormatInt(r.Active, 10)
		if r.Policy.MaxActive > 0 {
			active += "/" + strconv.FormatInt(r.Policy.MaxActive, 10)
		}
		rate := "-"
		switch {
		case r.Policy.RatePerMinute > 0:
			rate = formatRate(r.Policy.RatePerMinute)
		case r.Policy.MaxActive == 0:
			rate = "manual"
		}
		measured := "-"
		if r.MeasuredRatePerMinute != nil {
			measured = formatRate(*r.MeasuredRatePerMinute)
		}
		eta := "-"
		if r.ETASeconds != nil {
			eta = formatETA(*r.ETASeconds)
		}
		full := "no"
		if r.QueueFull {
			full = "yes"
		}
		// The mode, and the difficulty (ALTCHA maxnumber) while it
		// challenges.
		challenge := "-"
		if c := r.Challenge; c != nil {
			challenge = c.Mode
			if c.Difficulty > 0 {
				challenge += ":" + strconv.FormatInt(c.Difficulty, 10)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n",
			r.ID, r.State, r.Waiting, r.Serving, r.Tail, active, rate, measured, eta, full, challenge)
	}
	_ = tw.Flush()
}

// adminKey is a signing key as the admin API lists it.
type adminKey struct {
	KID       string `json:"kid"`
	Alg       string `json:"alg"`
	State     string `json:"state"`
	NotBefore int64  `json:"not_before"`
	NotAfter  *int64 `json:"not_after"`
}

// writeKeyTable prints the answer of GET /admin/v1/keys as a table, one
// key a line, whole kids (to copy into keys retire) and times in UTC.
func writeKeyTable(w io.Writer, body []byte) error {
	var doc struct {
		Keys []adminKey `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return fmt.Errorf("the server's answer is not a list of signing keys: %v", err)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tSTATE\tNOT BEFORE\tNOT AFTER")
	for _, k := range doc.Keys {
		notAfter := "-"
		if k.NotAfter != nil {
			notAfter = formatUnix(*k.NotAfter)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.KID, k.Alg, k.State, formatUnix(k.NotBefore), notAfter)
	}
	return tw.Flush()
}

// writeRetired prints the answer of POST /admin/v1/keys/{kid}/retire.
func writeRetired(w io.Writer, body []byte) error {
	var doc struct {
		Retired string `json:"retired"`
		Signing string `json:"signing"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.Retired == "" || doc.Signing == "" {
		return fmt.Errorf("the server's answer is not a retired key: %.200s", body)
	}
	_, err := fmt.Fprintf(w, "retired %s; %s signs now\n", doc.Retired, doc.Signing)
	return err
}

// formatUnix writes unix seconds as an RFC 3339 time in UTC.
func formatUnix(secs int64) string { return time.Unix(secs, 0).UTC().Format(time.RFC3339) }

// formatRate writes a rate per minute as a whole number when it is one,
// else with one decimal.
func formatRate(v float64) string {
	if v == math.Trunc(v) {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// formatETA writes a wait compactly: 45s, 12m05s, 3h20m.
func formatETA(secs int64) string {
	d := time.Duration(secs) * time.Second
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", secs)
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", secs/60, secs%60)
	}
	return fmt.Sprintf("%dh%02dm", secs/3600, secs%3600/60)
}
