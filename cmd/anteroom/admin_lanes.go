package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// `anteroom admin codes …` and `anteroom admin events …`: priority codes
// and scheduled events through the admin API.

const lanesUsage = `  codes ROOM                the room's priority lanes: who waits, codes issued and used
  codes issue ROOM --lane L --count N [--uses N] [--expires TIME] [--csv]
                            create N codes for lane L, printed once, one a line
                            (--csv: as a CSV file for a CRM); Anteroom keeps only their hashes
  events ROOM               the room's scheduled events
  events create ROOM --name NAME --starts TIME --ends TIME [--prequeue-from TIME]
                     [--rate N] [--max-active N] [--session-ttl D] [--message TEXT] [--shuffle]
                            schedule an event: while it runs, its settings replace the room's
  events update ROOM ID [the flags of create]
                            change an event that has not started (only the flags given)
  events cancel ROOM ID     cancel an event, at any time
                            (TIME is RFC 3339: 2026-12-01T09:00:00+01:00)
`

// laneFlags are the flags of codes and events.
type laneFlags struct {
	lane, expires, name, starts, ends, prequeue, sessionTTL, message *string
	count, uses                                                      *int
	csv, shuffle                                                     *bool
}

func newLaneFlags(fs *flag.FlagSet) laneFlags {
	return laneFlags{
		lane: fs.String("lane", "", ""), expires: fs.String("expires", "", ""),
		name: fs.String("name", "", ""), starts: fs.String("starts", "", ""), ends: fs.String("ends", "", ""),
		prequeue: fs.String("prequeue-from", "", ""), sessionTTL: fs.String("session-ttl", "", ""),
		message: fs.String("message", "", ""),
		count:   fs.Int("count", 0, ""), uses: fs.Int("uses", 1, ""),
		csv: fs.Bool("csv", false, ""), shuffle: fs.Bool("shuffle", false, ""),
	}
}

// laneFlagNames are the flags only codes and events take.
var laneFlagNames = map[string]string{
	"lane": "codes issue", "count": "codes issue", "uses": "codes issue", "expires": "codes issue", "csv": "codes issue",
	"name": "events", "starts": "events", "ends": "events", "prequeue-from": "events", "session-ttl": "events",
	"message": "events", "shuffle": "events",
}

// laneRequest builds the call of a codes or events command; set holds
// the flags given (rate and max-active among them).
func laneRequest(cmd string, rest []string, f laneFlags, set map[string]bool, rate float64, maxActive int) (adminRequest, error) {
	for name, owner := range laneFlagNames {
		if set[name] && !strings.HasPrefix(cmd+" "+strings.Join(rest, " "), owner) {
			return adminRequest{}, fmt.Errorf("--%s belongs to %s", name, owner)
		}
	}
	roomPath := func(room string) string { return "/admin/v1/rooms/" + url.PathEscape(room) }
	switch {
	case cmd == "codes" && len(rest) == 1:
		return adminRequest{method: http.MethodGet, room: rest[0], path: roomPath(rest[0]) + "/codes", show: writeLaneTable}, nil
	case cmd == "codes" && len(rest) == 2 && rest[0] == "issue":
		if *f.lane == "" || *f.count < 1 {
			return adminRequest{}, fmt.Errorf("codes issue: give --lane and --count (at least 1)")
		}
		body := map[string]any{"lane": *f.lane, "count": *f.count, "uses": *f.uses}
		if *f.expires != "" {
			body["expires_at"] = *f.expires
		}
		req := adminRequest{method: http.MethodPost, room: rest[1], path: roomPath(rest[1]) + "/codes", body: body, show: writeCodes}
		if *f.csv {
			req.path += "?format=csv"
			req.show = func(w io.Writer, b []byte) error { _, err := w.Write(b); return err }
		}
		return req, nil
	case cmd == "events" && len(rest) == 1:
		return adminRequest{method: http.MethodGet, room: rest[0], path: roomPath(rest[0]) + "/events", show: writeEventTable}, nil
	case cmd == "events" && len(rest) == 2 && rest[0] == "create":
		body := eventFlagsBody(f, set, rate, maxActive)
		for _, need := range []string{"name", "starts_at", "ends_at"} {
			if _, ok := body[need]; !ok {
				return adminRequest{}, fmt.Errorf("events create: give --name, --starts and --ends")
			}
		}
		return adminRequest{method: http.MethodPost, room: rest[1], path: roomPath(rest[1]) + "/events", body: body, show: writeEvent}, nil
	case cmd == "events" && len(rest) == 3 && rest[0] == "update":
		body := eventFlagsBody(f, set, rate, maxActive)
		if len(body) == 0 {
			return adminRequest{}, fmt.Errorf("events update: give at least one flag of events create")
		}
		return adminRequest{method: http.MethodPatch, room: rest[1], path: roomPath(rest[1]) + "/events/" + url.PathEscape(rest[2]), body: body, show: writeEvent}, nil
	case cmd == "events" && len(rest) == 3 && rest[0] == "cancel":
		return adminRequest{method: http.MethodDelete, room: rest[1], path: roomPath(rest[1]) + "/events/" + url.PathEscape(rest[2]),
			show: func(w io.Writer, _ []byte) error { _, err := fmt.Fprintf(w, "cancelled %s\n", rest[2]); return err }}, nil
	}
	return adminRequest{}, fmt.Errorf("usage: %s", map[string]string{"codes": "codes ROOM, or codes issue ROOM --lane L --count N", "events": "events ROOM, events create ROOM …, events update ROOM ID …, events cancel ROOM ID"}[cmd])
}

// eventFlagsBody is the event the flags given describe.
func eventFlagsBody(f laneFlags, set map[string]bool, rate float64, maxActive int) map[string]any {
	body := map[string]any{}
	for flagName, v := range map[string]struct {
		key string
		val any
	}{
		"name": {"name", *f.name}, "starts": {"starts_at", *f.starts}, "ends": {"ends_at", *f.ends},
		"prequeue-from": {"prequeue_from", *f.prequeue}, "session-ttl": {"session_ttl", *f.sessionTTL},
		"message": {"message", *f.message}, "shuffle": {"shuffle_at_start", *f.shuffle},
	} {
		if set[flagName] {
			body[v.key] = v.val
		}
	}
	adm := map[string]any{}
	if set["rate"] {
		adm["rate_per_minute"] = rate
	}
	if set["max-active"] {
		adm["max_active"] = maxActive
	}
	if len(adm) > 0 {
		body["admission"] = adm
	}
	return body
}

// writeLaneTable prints GET …/codes.
func writeLaneTable(w io.Writer, body []byte) error {
	var doc struct {
		Lanes []struct {
			ID      string `json:"id"`
			Weight  int    `json:"weight"`
			Waiting int64  `json:"waiting"`
			Issued  int64  `json:"codes_issued"`
			Used    int64  `json:"codes_used"`
		} `json:"lanes"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return fmt.Errorf("the server's answer is not a list of lanes: %v", err)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LANE\tWEIGHT\tWAITING\tCODES ISSUED\tCODES USED")
	for _, l := range doc.Lanes {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\n", l.ID, l.Weight, l.Waiting, l.Issued, l.Used)
	}
	return tw.Flush()
}

// writeCodes prints the codes of POST …/codes, one a line.
func writeCodes(w io.Writer, body []byte) error {
	var doc struct {
		Codes []string `json:"codes"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || len(doc.Codes) == 0 {
		return fmt.Errorf("the server's answer is not a list of codes: %.200s", body)
	}
	_, err := fmt.Fprintln(w, strings.Join(doc.Codes, "\n"))
	return err
}

// adminEvent is an event as the admin API shows it.
type adminEvent struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Phase        string `json:"phase"`
	PrequeueFrom string `json:"prequeue_from"`
	StartsAt     string `json:"starts_at"`
	EndsAt       string `json:"ends_at"`
	Admission    struct {
		RatePerMinute *float64 `json:"rate_per_minute"`
		MaxActive     *int     `json:"max_active"`
	} `json:"admission"`
}

func writeEvent(w io.Writer, body []byte) error {
	var e adminEvent
	if err := json.Unmarshal(body, &e); err != nil || e.ID == "" {
		return fmt.Errorf("the server's answer is not an event: %.200s", body)
	}
	return writeEvents(w, []adminEvent{e})
}

func writeEventTable(w io.Writer, body []byte) error {
	var doc struct {
		Events []adminEvent `json:"events"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return fmt.Errorf("the server's answer is not a list of events: %v", err)
	}
	return writeEvents(w, doc.Events)
}

func writeEvents(w io.Writer, events []adminEvent) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tPHASE\tPRE-QUEUE\tSTARTS\tENDS\tRATE/MIN\tMAX ACTIVE")
	for _, e := range events {
		rate, maxActive := "room's", "room's"
		if r := e.Admission.RatePerMinute; r != nil {
			rate = formatRate(*r)
		}
		if m := e.Admission.MaxActive; m != nil {
			maxActive = strconv.Itoa(*m)
		}
		pre := e.PrequeueFrom
		if pre == "" {
			pre = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.Name, e.Phase, pre, e.StartsAt, e.EndsAt, rate, maxActive)
	}
	return tw.Flush()
}

// checkTime reports a TIME flag that is not RFC 3339, before asking the
// server.
func checkTime(name, v string) error {
	if v == "" {
		return nil
	}
	if _, err := time.Parse(time.RFC3339, v); err != nil {
		return fmt.Errorf("--%s must be an RFC 3339 time with a zone, like 2026-12-01T09:00:00+01:00, got %q", name, v)
	}
	return nil
}
