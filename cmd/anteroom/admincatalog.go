package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"text/tabwriter"

	"gopkg.in/yaml.v3"
)

// adminCatalogUsage documents the commands of rooms and clients at run
// time and the audit log (issue 16).
const adminCatalogUsage = `  rooms list                the rooms: the file's and those created at run time
  rooms get ROOM            one room's status and, if created at run time, definition
  rooms create FILE         create a room from FILE (a room as the config file writes
                            it, YAML or JSON; - reads stdin); every instance serves it
                            within 2 s
  rooms update ROOM FILE    replace a runtime room's definition
  rooms delete ROOM         delete a runtime room: its visitors see the closed page
  clients list              the relying parties (never their secrets)
  clients get ID            one relying party
  clients create FILE [--public]
                            create a relying party; a confidential one's secret is
                            printed once, now: store it
  clients update ID FILE    replace a runtime client's definition (its secret stays)
  clients delete ID         delete a runtime client
  audit [--limit N]         who changed what, newest first
`

// catalogRequest builds the call of a rooms, clients or audit command;
// ok is false when cmd is none of them. usage reports a misuse.
func catalogRequest(cmd string, rest []string, public bool, limit int, usage func(string, ...any) int) (req adminRequest, code int, ok bool) {
	kind := map[string]string{"rooms": "room", "clients": "client"}[cmd]
	switch {
	case cmd == "audit":
		if len(rest) != 0 {
			return req, usage("usage: audit [--limit N]"), true
		}
		path := "/admin/v1/audit"
		if limit > 0 {
			path += "?limit=" + strconv.Itoa(limit)
		}
		return adminRequest{method: http.MethodGet, path: path, show: writeAudit}, -1, true
	case kind == "":
		return req, 0, false
	case len(rest) == 0:
		return req, usage("usage: %s list|get|create|update|delete", cmd), true
	}
	base := "/admin/v1/" + cmd
	sub, args := rest[0], rest[1:]
	one := func(id string) string { return base + "/" + url.PathEscape(id) }
	if public && (cmd != "clients" || sub != "create") {
		return req, usage("--public belongs to clients create"), true
	}
	switch {
	case sub == "list" && len(args) == 0:
		req = adminRequest{method: http.MethodGet, path: base, show: writeDefinitions(cmd)}
		if cmd == "rooms" {
			req.show = nil // the room status table
		}
	case sub == "get" && len(args) == 1:
		req = adminRequest{method: http.MethodGet, path: one(args[0]), show: writeIndented}
	case sub == "create" && len(args) == 1:
		body, err := readDefinition(args[0])
		if err != nil {
			return req, usage("%s create: %v", cmd, err), true
		}
		if public {
			body["public"] = true
		}
		req = adminRequest{method: http.MethodPost, path: base, body: body, show: writeCreated}
	case sub == "update" && len(args) == 2:
		body, err := readDefinition(args[1])
		if err != nil {
			return req, usage("%s update: %v", cmd, err), true
		}
		req = adminRequest{method: http.MethodPut, path: one(args[0]), body: body, show: writeIndented}
	case sub == "delete" && len(args) == 1:
		req = adminRequest{method: http.MethodDelete, path: one(args[0]), show: func(w io.Writer, _ []byte) error {
			_, err := fmt.Fprintf(w, "deleted %s %s\n", kind, args[0])
			return err
		}}
	default:
		return req, usage("usage: %s list, get ID, create FILE, update ID FILE or delete ID", cmd), true
	}
	if kind == "room" && len(args) > 0 && sub != "create" {
		req.room = args[0]
	}
	return req, -1, true
}

// readDefinition reads a room or client from path ("-": stdin) as YAML,
// of which JSON is a part, so a block copied from the config file works.
func readDefinition(path string) (map[string]any, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(io.LimitReader(os.Stdin, 1<<16))
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if doc == nil {
		return nil, fmt.Errorf("%s: must be a mapping of a room's or a client's keys", path)
	}
	return doc, nil
}

// writeIndented prints the answer as indented JSON.
func writeIndented(w io.Writer, body []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, body, "", "  "); err != nil {
		return fmt.Errorf("the server's answer is not JSON: %.200s", body)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// writeCreated prints a creation's answer, and a client's secret apart,
// so that it is not missed.
func writeCreated(w io.Writer, body []byte) error {
	if err := writeIndented(w, body); err != nil {
		return err
	}
	var doc struct {
		Secret string `json:"client_secret"`
	}
	if json.Unmarshal(body, &doc) == nil && doc.Secret != "" {
		_, err := fmt.Fprintf(w, "\nclient secret (shown once; store it now): %s\n", doc.Secret)
		return err
	}
	return nil
}

// writeDefinitions prints a list of clients as a table.
func writeDefinitions(kind string) func(io.Writer, []byte) error {
	return func(w io.Writer, body []byte) error {
		var doc map[string][]struct {
			Source     string         `json:"source"`
			Definition map[string]any `json:"definition"`
			Rev        int64          `json:"rev"`
			UpdatedAt  string         `json:"updated_at"`
			UpdatedBy  string         `json:"updated_by"`
			Public     bool           `json:"public"`
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			return fmt.Errorf("the server's answer is not a list of %s: %v", kind, err)
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tROOM\tSOURCE\tPUBLIC\tREV\tUPDATED\tBY")
		for _, c := range doc[kind] {
			rev, updated, by := "-", "-", "-"
			if c.Source == "api" {
				rev, updated, by = strconv.FormatInt(c.Rev, 10), c.UpdatedAt, c.UpdatedBy
			}
			fmt.Fprintf(tw, "%v\t%v\t%s\t%t\t%s\t%s\t%s\n", c.Definition["id"], c.Definition["room"], c.Source, c.Public, rev, updated, by)
		}
		return tw.Flush()
	}
}

// writeAudit prints the audit log, one change a line.
func writeAudit(w io.Writer, body []byte) error {
	var doc struct {
		Entries []struct {
			At     string `json:"at"`
			Who    string `json:"who"`
			Action string `json:"action"`
			Target string `json:"target"`
		} `json:"entries"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return fmt.Errorf("the server's answer is not the audit log: %v", err)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "AT\tWHO\tACTION\tTARGET")
	for _, e := range doc.Entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.At, e.Who, e.Action, e.Target)
	}
	return tw.Flush()
}
