package e2e

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"github.com/anteroom/anteroom/config"
)

// withLanes gives the test room a vip lane of weight 3 (issue 16's
// example).
func withLanes() setup {
	return configure(func(c *config.Config) {
		c.Rooms[0].Lanes = []config.Lane{{ID: "vip", Weight: 3}, {ID: "standard", Weight: 1}}
	})
}

// issueCodes creates n codes of the vip lane with uses each through the
// admin API and returns them.
func (h *harness) issueCodes(n, uses int) []string {
	h.t.Helper()
	code, doc := h.admin(http.MethodPost, "/admin/v1/rooms/"+roomID+"/codes", `{"count": `+itoa(n)+`, "lane": "vip", "uses": `+itoa(uses)+`}`)
	if code != http.StatusCreated {
		h.t.Fatalf("issue codes: %d %v", code, doc)
	}
	raw, _ := doc["codes"].([]any)
	out := make([]string, len(raw))
	for i, c := range raw {
		out[i], _ = c.(string)
	}
	if len(out) != n {
		h.t.Fatalf("issued %d codes, want %d: %v", len(out), n, doc)
	}
	return out
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// onInstance is the visitor's browser (its cookies) talking to instance i
// directly, past the load balancer.
func (v *visitor) onInstance(i int) *http.Client {
	addr := v.h.addrs[i]
	return &http.Client{Jar: v.browser.Jar, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
		DisableKeepAlives: true,
	}}
}

// enterCode posts code by the JSON API and returns the answer's status and
// document.
func (v *visitor) enterCode(c *http.Client, code string) (int, map[string]any) {
	v.h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, v.waitURL+"/code", strings.NewReader(`{"code": "`+code+`"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		v.h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&doc)
	return resp.StatusCode, doc
}

// TestSingleUseCodeRedeemedOnceAcrossTwoInstances: 20 visitors enter one
// single-use code at once, half through each of two instances on one
// Redis: exactly one moves into the lane, the others are told the code is
// used up and keep their place.
func TestSingleUseCodeRedeemedOnceAcrossTwoInstances(t *testing.T) {
	h := newHarness(t, instances(2), withLanes())
	code := h.issueCodes(1, 1)[0]
	visitors := make([]*visitor, 20)
	for i := range visitors {
		visitors[i] = h.visitor()
		visitors[i].queue()
	}
	var wg sync.WaitGroup
	statuses := make([]int, len(visitors))
	docs := make([]map[string]any, len(visitors))
	for i, v := range visitors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], docs[i] = v.enterCode(v.onInstance(i%2), code)
		}()
	}
	wg.Wait()
	won := 0
	for i, st := range statuses {
		switch {
		case st == http.StatusOK && docs[i]["lane"] == "vip":
			won++
		case st == http.StatusConflict && docs[i]["error"] == "code_used_up":
		default:
			t.Fatalf("redemption %d: %d %v", i, st, docs[i])
		}
	}
	if won != 1 {
		t.Fatalf("%d of 20 concurrent redemptions on two instances won, want exactly 1", won)
	}
	_, doc := h.admin(http.MethodGet, "/admin/v1/rooms/"+roomID+"/codes", "")
	lanes, _ := doc["lanes"].([]any)
	if len(lanes) != 1 {
		t.Fatalf("code stats: %v", doc)
	}
	if l := lanes[0].(map[string]any); l["codes_issued"] != 1.0 || l["codes_used"] != 1.0 || l["waiting"] != 1.0 {
		t.Fatalf("lane stats %v, want one issued, one used, one waiting", l)
	}
}

// TestPriorityCodesAPI: codes are created in JSON and CSV (for a CRM),
// shown once; bad requests name the field; a wrong code loses nothing.
func TestPriorityCodesAPI(t *testing.T) {
	h := newHarness(t, withLanes())
	for body, want := range map[string]string{
		`{"count": 0, "lane": "vip"}`:                           "count:",
		`{"count": 1, "lane": "gold"}`:                          "lane:",
		`{"count": 1, "lane": "standard"}`:                      "lane:",
		`{"count": 1, "lane": "vip", "uses": 0}`:                "uses:",
		`{"count": 1, "lane": "vip", "expires_at": "tomorrow"}`: "expires_at:",
		`{"count": 1, "lane": "vip", "colour": 1}`:              `unknown field "colour"`,
	} {
		code, doc := h.admin(http.MethodPost, "/admin/v1/rooms/"+roomID+"/codes", body)
		if desc, _ := doc["error_description"].(string); code != http.StatusBadRequest || !strings.Contains(desc, want) {
			t.Errorf("%s: %d %v, want 400 naming %q", body, code, doc, want)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, issuer+"/admin/v1/rooms/"+roomID+"/codes?format=csv",
		strings.NewReader(`{"count": 3, "lane": "vip", "uses": 2, "expires_at": "2099-01-01T00:00:00Z"}`))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := (&http.Client{Transport: h.transport()}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(resp.Body).ReadAll()
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusCreated || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") || len(rows) != 4 {
		t.Fatalf("csv: %d %s %v %v", resp.StatusCode, resp.Header.Get("Content-Type"), rows, err)
	}
	if strings.Join(rows[0], ",") != "code,room,lane,uses,expires_at" || rows[1][2] != "vip" || rows[1][3] != "2" || rows[1][4] != "2099-01-01T00:00:00Z" {
		t.Fatalf("csv rows %v", rows)
	}
	// Nothing lists the codes again: Redis has their hashes only.
	keys, err := h.rdb.Keys(t.Context(), "*code*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		for _, row := range rows[1:] {
			if strings.Contains(k, row[0]) || strings.Contains(k, strings.ReplaceAll(row[0], "-", "")) {
				t.Fatalf("key %q names a code", k)
			}
		}
	}

	v := h.visitor()
	v.queue()
	before := v.status()
	if code, doc := v.enterCode(v.browser, "WRNG-WRNG-WRNG"); code != http.StatusBadRequest || doc["error"] != "invalid_code" {
		t.Fatalf("a wrong code: %d %v", code, doc)
	}
	if after := v.status(); after.Position != before.Position || after.State != "waiting" {
		t.Fatalf("a wrong code moved the visitor: %+v → %+v", before, after)
	}
	if code, doc := v.enterCode(v.browser, strings.ToLower(rows[1][0])); code != http.StatusOK || doc["lane"] != "vip" || doc["position"] != float64(before.Position) {
		t.Fatalf("the code: %d %v", code, doc)
	}
	if code, doc := v.enterCode(v.browser, rows[2][0]); code != http.StatusConflict || doc["error"] != "already_in_lane" {
		t.Fatalf("a second code: %d %v", code, doc)
	}
	// The form (no script): back to the page, which says why.
	form := url.Values{"code": {"nope"}}
	resp, err = v.browser.PostForm(v.waitURL+"/code", form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(resp.Request.URL.String(), "code_error=") || !strings.Contains(string(body), `id="code-error"`) {
		t.Fatalf("the form's wrong code: at %s: %.400s", resp.Request.URL, body)
	}
}

// TestScheduledEventsAPI: events are created on one instance, listed,
// edited until they start, refused when they overlap (409) or name a bad
// field (400), and the waiting page of another instance names the event
// within 2 s.
func TestScheduledEventsAPI(t *testing.T) {
	h := newHarness(t, instances(2))
	now := h.clock.Now().UTC()
	at := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	code, doc := h.admin(http.MethodPost, "/admin/v1/rooms/"+roomID+"/events",
		`{"name": "Winter drop", "prequeue_from": "`+at(time.Hour)+`", "starts_at": "`+at(2*time.Hour)+`", "ends_at": "`+at(3*time.Hour)+`",
		  "admission": {"rate_per_minute": 300}, "session_ttl": "20m", "message": "Sizes run small", "shuffle_at_start": true}`)
	if code != http.StatusCreated || doc["phase"] != "scheduled" || doc["session_ttl"] != "20m0s" {
		t.Fatalf("create: %d %v", code, doc)
	}
	id, _ := doc["id"].(string)
	for body, want := range map[string]string{
		`{"name": "Clash", "starts_at": "` + at(150*time.Minute) + `", "ends_at": "` + at(4*time.Hour) + `"}`: "overlap",
		`{"name": "", "starts_at": "` + at(5*time.Hour) + `", "ends_at": "` + at(6*time.Hour) + `"}`:          "name:",
		`{"name": "Back", "starts_at": "` + at(6*time.Hour) + `", "ends_at": "` + at(5*time.Hour) + `"}`:      "ends_at:",
		`{"name": "Odd", "starts_at": "noon", "ends_at": "` + at(5*time.Hour) + `"}`:                          "starts_at:",
	} {
		code, doc := h.admin(http.MethodPost, "/admin/v1/rooms/"+roomID+"/events", body)
		got, _ := doc["error_description"].(string)
		if want == "overlap" {
			got, _ = doc["error"].(string)
		}
		if code/100 != 4 || !strings.Contains(got, want) {
			t.Errorf("%s: %d %v, want %q", body, code, doc, want)
		}
	}
	if code, doc := h.admin(http.MethodPatch, "/admin/v1/rooms/"+roomID+"/events/"+id, `{"name": "Winter drop II"}`); code != http.StatusOK || doc["name"] != "Winter drop II" || doc["message"] != "Sizes run small" {
		t.Fatalf("patch: %d %v", code, doc)
	}
	if code, doc := h.admin(http.MethodGet, "/admin/v1/rooms/"+roomID+"/events", ""); code != http.StatusOK || len(doc["events"].([]any)) != 1 {
		t.Fatalf("list: %d %v", code, doc)
	}
	// The other instance's waiting page names it within 2 s (its
	// scheduler reads the events every half second).
	h.on(1)
	v := h.visitor()
	v.queue()
	if !waitUntil(2*time.Second, func() bool {
		_, body := visit(t, v.browser, http.MethodGet, v.waitURL)
		return strings.Contains(body, "Winter drop II") && strings.Contains(body, `id="event-countdown"`)
	}) {
		_, body := visit(t, v.browser, http.MethodGet, v.waitURL)
		t.Fatalf("the second instance's page does not name the event: %.600s", body)
	}
	var st struct {
		Event         string `json:"event"`
		EventStartsAt int64  `json:"event_starts_at"`
	}
	if _, body := visit(t, v.browser, http.MethodGet, v.waitURL+"?format=json"); json.Unmarshal([]byte(body), &st) != nil ||
		st.Event != "Winter drop II" || st.EventStartsAt != now.Add(2*time.Hour).Unix() {
		t.Fatalf("the status JSON names %+v: %s", st, body)
	}
	// It starts: it can no longer be edited, only cancelled.
	h.clock.Advance(2*time.Hour + time.Second)
	if code, doc := h.admin(http.MethodPatch, "/admin/v1/rooms/"+roomID+"/events/"+id, `{"name": "Late"}`); code != http.StatusConflict || doc["error"] != "event_started" {
		t.Fatalf("patch a running event: %d %v", code, doc)
	}
	if code, _ := h.admin(http.MethodDelete, "/admin/v1/rooms/"+roomID+"/events/"+id, ""); code != http.StatusNoContent {
		t.Fatalf("cancel: %d", code)
	}
	if code, _ := h.admin(http.MethodDelete, "/admin/v1/rooms/"+roomID+"/events/"+id, ""); code != http.StatusNotFound {
		t.Fatalf("cancel twice: %d", code)
	}
}

// TestPriorityCodeInABrowser: in Chromium, a visitor on the waiting page
// types a wrong code and is told so, keeping their place, then a right one
// and is moved into the vip lane, which the page says.
func TestPriorityCodeInABrowser(t *testing.T) {
	chromium := requireChromium(t)
	if err := redisServer.FlushAll(); err != nil {
		t.Fatal(err)
	}
	issuer, siteURL, _ := demoSite(t, func(cfg *config.Config, _ string) {
		cfg.Rooms[0].Lanes = []config.Lane{{ID: "vip", Weight: 3}}
	})
	// Someone waits ahead, so the browser's visitor waits too.
	jar, _ := cookiejar.New(nil)
	if resp, err := (&http.Client{Jar: jar, Timeout: 10 * time.Second}).Get(siteURL + "/login"); err != nil || !strings.Contains(resp.Request.URL.Path, "/wait/") {
		t.Fatalf("first visitor: %v %v", resp, err)
	}
	req, _ := http.NewRequest(http.MethodPost, issuer+"/admin/v1/rooms/"+roomID+"/codes", strings.NewReader(`{"count": 1, "lane": "vip"}`))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var issued struct{ Codes []string }
	_ = json.NewDecoder(resp.Body).Decode(&issued)
	resp.Body.Close()
	if len(issued.Codes) != 1 {
		t.Fatalf("issue a code: %d", resp.StatusCode)
	}

	ctx := browser(t, chromium)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(siteURL+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#code-form")),
		chromedp.SendKeys(chromedp.CSS("#code"), "WRNG-0000-WRNG"),
		chromedp.Click(chromedp.CSS("#code-submit")),
		chromedp.WaitVisible(chromedp.CSS("#code-error")),
	); err != nil {
		t.Fatalf("enter a wrong code: %v", err)
	}
	if pos, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#position"))); err != nil || pos != "2" {
		t.Fatalf("after a wrong code the page shows number %q (%v), want 2", pos, err)
	}
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#code"), strings.ToLower(issued.Codes[0])),
		chromedp.Click(chromedp.CSS("#code-submit")),
		chromedp.WaitVisible(chromedp.CSS("#lane")),
	); err != nil {
		t.Fatalf("enter the code: %v", err)
	}
	lane, err1 := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#lane")))
	pos, err2 := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#position")))
	ahead, err3 := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#ahead")))
	if err1 != nil || err2 != nil || err3 != nil || !strings.Contains(lane, "vip") || pos != "2" || ahead != "0" {
		t.Fatalf("in the lane the page shows %q, number %q, ahead %q (%v %v %v); want the vip lane, number 2, nobody ahead", lane, pos, ahead, err1, err2, err3)
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#code-form").length`)); err != nil || n != 0 {
		t.Fatalf("the code form is still offered in the lane (%d, %v)", n, err)
	}
}

// TestAdminCLICodesAndEvents runs `anteroom admin codes|events …` as the
// shell would: codes issued once (lines, or CSV), the lanes' counts, an
// event scheduled, listed, edited and cancelled; a bad flag is named.
func TestAdminCLICodesAndEvents(t *testing.T) {
	_, base := startForAdmin(t)
	t.Setenv("ANTEROOM_URL", base)
	code, out, errOut := adminCLI(t, "codes", "issue", "sale", "--lane", "vip", "--count", "3")
	if code != 1 || !strings.Contains(errOut, `room "sale": room sale has no priority lanes: set rooms[].lanes (HTTP 409)`) {
		t.Fatalf("codes for a room without lanes: %d %q %q", code, out, errOut)
	}
	h := newHarness(t, withLanes())
	_, addr := h.start()
	t.Setenv("ANTEROOM_URL", "http://"+addr)
	code, out, errOut = adminCLI(t, "codes", "issue", roomID, "--lane", "vip", "--count", "3", "--uses", "2")
	if lines := strings.Fields(out); code != 0 || len(lines) != 3 || len(lines[0]) != 14 {
		t.Fatalf("codes issue: %d %q %q", code, out, errOut)
	}
	code, out, errOut = adminCLI(t, "codes", "issue", roomID, "--lane", "vip", "--count", "2", "--csv")
	if code != 0 || !strings.HasPrefix(out, "code,room,lane,uses,expires_at\n") || strings.Count(out, "\n") != 3 {
		t.Fatalf("codes issue --csv: %d %q %q", code, out, errOut)
	}
	code, out, errOut = adminCLI(t, "codes", roomID)
	if fields := strings.Fields(strings.Split(out, "\n")[1]); code != 0 || strings.Join(fields, " ") != "vip 3 0 5 0" {
		t.Fatalf("codes: %d %q %q", code, out, errOut)
	}
	t.Setenv("ANTEROOM_URL", base)
	now := time.Now().UTC()
	at := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	code, out, errOut = adminCLI(t, "events", "create", "sale", "--name", "Flash sale", "--starts", at(time.Hour), "--ends", at(2*time.Hour),
		"--rate", "1200", "--session-ttl", "15m", "--message", "Two per customer")
	if code != 0 || !strings.Contains(out, "Flash sale") || !strings.Contains(out, "scheduled") || !strings.Contains(out, "1200") {
		t.Fatalf("events create: %d %q %q", code, out, errOut)
	}
	id := strings.Fields(strings.Split(out, "\n")[1])[0]
	if code, out, errOut = adminCLI(t, "events", "update", "sale", id, "--name", "Flash sale II"); code != 0 || !strings.Contains(out, "Flash sale II") {
		t.Fatalf("events update: %d %q %q", code, out, errOut)
	}
	if code, out, errOut = adminCLI(t, "events", "sale"); code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "STARTS") {
		t.Fatalf("events: %d %q %q", code, out, errOut)
	}
	if code, _, errOut = adminCLI(t, "events", "create", "sale", "--name", "Clash", "--starts", at(90*time.Minute), "--ends", at(3*time.Hour)); code != 1 || !strings.Contains(errOut, "overlaps") {
		t.Fatalf("an overlapping event: %d %q", code, errOut)
	}
	if code, _, errOut = adminCLI(t, "events", "create", "sale", "--name", "X", "--starts", "noon", "--ends", at(3*time.Hour)); code != 2 || !strings.Contains(errOut, "--starts must be an RFC 3339 time") {
		t.Fatalf("a bad time: %d %q", code, errOut)
	}
	if code, out, errOut = adminCLI(t, "events", "cancel", "sale", id); code != 0 || !strings.Contains(out, "cancelled "+id) {
		t.Fatalf("events cancel: %d %q %q", code, out, errOut)
	}
	if code, _, errOut = adminCLI(t, "codes", "sale", "--count", "2"); code != 2 || !strings.Contains(errOut, "--count belongs to codes issue") {
		t.Fatalf("a flag of another command: %d %q", code, errOut)
	}
}

// TestDashboardShowsLanesAndEvents: in Chromium, the dashboard shows a
// room's priority lanes (who waits, codes issued and used) and its
// scheduled events, from the admin API's room status.
func TestDashboardShowsLanesAndEvents(t *testing.T) {
	chromium := requireChromium(t)
	if err := redisServer.FlushAll(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	cfg := testConfig()
	cfg.Issuer = base
	cfg.Rooms[0].Lanes = []config.Lane{{ID: "vip", Weight: 3}}
	cfg.Clients = []config.Client{{ID: clientID, Secret: secret, Room: roomID, RedirectURIs: []string{rpCallback}}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	serveApp(t, cfg, ln, nil)
	bearer := func(method, path, body string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(method, base+"/admin/v1/rooms/"+roomID+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var doc map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s: %d %v %v", method, path, resp.StatusCode, err, doc)
		}
		return doc
	}
	codes := bearer(http.MethodPost, "/codes", `{"count": 3, "lane": "vip"}`)["codes"].([]any)
	starts := time.Now().Add(time.Hour).UTC()
	bearer(http.MethodPost, "/events", `{"name": "Spring drop", "starts_at": "`+starts.Format(time.RFC3339)+`", "ends_at": "`+
		starts.Add(time.Hour).Format(time.RFC3339)+`", "admission": {"rate_per_minute": 900}}`)
	// Two visitors wait; one enters a code.
	for i := range 2 {
		jar, _ := cookiejar.New(nil)
		b := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if req.URL.Host == rpHost {
				return http.ErrUseLastResponse
			}
			return nil
		}}
		l := newLogin()
		q := url.Values{"client_id": {clientID}, "redirect_uri": {rpCallback}, "response_type": {"code"}, "scope": {"openid"},
			"state": {l.state}, "nonce": {l.nonce}, "code_challenge": {oauth2.S256ChallengeFromVerifier(l.verifier)}, "code_challenge_method": {"S256"}}
		resp, err := b.Get(base + "/authorize?" + q.Encode())
		if err != nil || !strings.Contains(resp.Request.URL.Path, "/wait/") {
			t.Fatalf("visitor: %v %v", resp, err)
		}
		resp.Body.Close()
		if i == 1 {
			req, _ := http.NewRequest(http.MethodPost, resp.Request.URL.String()+"/code", strings.NewReader(`{"code": "`+codes[0].(string)+`"}`))
			req.Header.Set("Content-Type", "application/json")
			if resp, err := b.Do(req); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("enter the code: %v %v", resp, err)
			}
		}
	}
	ctx := browser(t, chromium)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/admin/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), adminToken),
		chromedp.Submit(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.CSS(`[data-field="lanes"] tr`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-field="events"] tr`)),
	); err != nil {
		t.Fatalf("sign in and see the lanes and events: %v", err)
	}
	lanes, err1 := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('[data-field="lanes"] tr td')].map(td => td.textContent)`))
	events, err2 := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('[data-field="events"] tr td')].map(td => td.textContent)`))
	if err1 != nil || err2 != nil || strings.Join(lanes, "|") != "vip|3|1|3|1" || len(events) != 6 || events[0] != "Spring drop" || events[1] != "scheduled" || events[5] != "900" {
		t.Fatalf("the dashboard shows lanes %q and events %q (%v %v)", lanes, events, err1, err2)
	}
}

// readmeJSON returns the fenced json block of docs/operations.md that starts with
// prefix, so that the example a reader copies is the one tested.
func readmeJSON(t *testing.T, prefix string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "```json\n"+prefix)
	if !ok {
		t.Fatalf("docs/operations.md has no json block starting with %q", prefix)
	}
	block, _, _ := strings.Cut(rest, "```")
	return prefix + block
}

// TestReadmeSeasonExamples: the README's room with lanes loads, and its
// event and codes bodies are accepted by the admin API as written.
func TestReadmeSeasonExamples(t *testing.T) {
	block := readmeBlock(t, "# A room with priority lanes.")
	base := "issuer: " + issuer + "\nsecrets: {cookie_keys: [\"" + cookieKey + "\"]}\nadmin: {token: " + adminToken + "}\n" +
		"clients: [{id: " + clientID + ", secret: " + secret + ", redirect_uris: [\"" + rpCallback + "\"], room: launch}]\n"
	loaded, err := config.Parse([]byte(base+block), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("the README's room with lanes: %v", err)
	}
	if len(loaded.Rooms) != 1 || len(loaded.Rooms[0].Lanes) != 2 {
		t.Fatalf("test is void: %+v", loaded.Rooms)
	}
	h := newHarness(t, configure(func(c *config.Config) { c.Rooms = loaded.Rooms }))
	if code, doc := h.admin(http.MethodPost, "/admin/v1/rooms/launch/events", readmeJSON(t, `{"name": "Winter drop"`)); code != http.StatusCreated || doc["shuffle_at_start"] != true {
		t.Fatalf("the README's event: %d %v", code, doc)
	}
	if code, doc := h.admin(http.MethodPost, "/admin/v1/rooms/launch/codes", readmeJSON(t, `{"count": 500`)); code != http.StatusCreated || len(doc["codes"].([]any)) != 500 {
		t.Fatalf("the README's codes: %d", code)
	}
}

// TestPriorityCodeRefusedFromAnotherSite: a form of another site cannot
// spend a code of its choosing on a visitor's place (the browser says
// Sec-Fetch-Site: cross-site); nothing is spent.
func TestPriorityCodeRefusedFromAnotherSite(t *testing.T) {
	h := newHarness(t, withLanes())
	code := h.issueCodes(1, 1)[0]
	v := h.visitor()
	v.queue()
	req, _ := http.NewRequest(http.MethodPost, v.waitURL+"/code", strings.NewReader(url.Values{"code": {code}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := v.browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a cross-site post of a code: %d, want 403", resp.StatusCode)
	}
	if c, doc := v.enterCode(v.browser, code); c != http.StatusOK || doc["lane"] != "vip" {
		t.Fatalf("a cross-site post spent the code: %d %v (the post answered %d)", c, doc, resp.StatusCode)
	}
}

// TestCodesAndEventsDuringARedisOutage: while Redis is down, entering a
// code answers 503 with Retry-After, and so do the admin API's codes and
// events: never a 500.
func TestCodesAndEventsDuringARedisOutage(t *testing.T) {
	if !redisServer.Real() {
		t.Skip("needs a real redis-server to kill")
	}
	h := newHarness(t, withLanes())
	code := h.issueCodes(1, 1)[0]
	v := h.visitor()
	v.queue()
	if err := redisServer.Kill(); err != nil {
		t.Fatal(err)
	}
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = redisServer.Restart()
		}
	})
	req, _ := http.NewRequest(http.MethodPost, v.waitURL+"/code", strings.NewReader(`{"code": "`+code+`"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := v.browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a code during the outage: %d Retry-After=%q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	for _, path := range []string{"/codes", "/events"} {
		if code, doc := h.admin(http.MethodGet, "/admin/v1/rooms/"+roomID+path, ""); code != http.StatusServiceUnavailable || doc["error"] != "temporarily_unavailable" {
			t.Fatalf("GET %s during the outage: %d %v", path, code, doc)
		}
	}
	if err := redisServer.Restart(); err != nil {
		t.Fatal(err)
	}
	restarted = true
}

// metricSum is the sum of a counter's series with the given labels over
// the harness's instances, from their /metrics.
func (h *harness) metricSum(name string, labels ...string) float64 {
	h.t.Helper()
	sum := 0.0
	for _, addr := range h.addrs {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			h.t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
	lines:
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(line, name+"{") {
				continue
			}
			for _, l := range labels {
				if !strings.Contains(line, l) {
					continue lines
				}
			}
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				h.t.Fatalf("%s: %v", line, err)
			}
			sum += v
		}
	}
	return sum
}

// TestLanesAndEventsAreCounted: operators see the lanes at work and the
// events switch, in the instances' metrics. A vip code holder behind two
// standard visitors is admitted first by weight 3:1 and counted in the
// vip lane; an event starts and ends by the instances' clock and each
// switch is counted once for the deployment, though both instances apply
// the room's events.
func TestLanesAndEventsAreCounted(t *testing.T) {
	h := newHarness(t, instances(2), withLanes()) // manual: everyone waits
	code := h.issueCodes(1, 1)[0]
	var vs []*visitor
	for range 3 {
		v := h.visitor()
		v.queue()
		vs = append(vs, v)
	}
	if st, doc := vs[2].enterCode(vs[2].browser, code); st != http.StatusOK || doc["lane"] != "vip" {
		t.Fatalf("code: %d %v", st, doc)
	}
	if st, doc := h.admin(http.MethodPatch, "/admin/v1/rooms/"+roomID, `{"rate_per_minute": 60}`); st != http.StatusOK {
		t.Fatalf("rate: %d %v", st, doc)
	}
	for deadline := time.Now().Add(20 * time.Second); h.metricSum("anteroom_lane_admissions_total", `lane="vip"`) < 1; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no vip admission counted; standard %v", h.metricSum("anteroom_lane_admissions_total", `lane="standard"`))
		}
		h.clock.Advance(time.Second)
	}
	if vip := h.metricSum("anteroom_lane_admissions_total", `room="`+roomID+`"`, `lane="vip"`); vip != 1 {
		t.Fatalf("vip admissions counted %v, want 1", vip)
	}

	now := h.clock.Now().UTC()
	at := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	if st, doc := h.admin(http.MethodPost, "/admin/v1/rooms/"+roomID+"/events",
		`{"name": "Flash sale", "starts_at": "`+at(time.Minute)+`", "ends_at": "`+at(2*time.Minute)+`", "admission": {"rate_per_minute": 600}}`); st != http.StatusCreated {
		t.Fatalf("event: %d %v", st, doc)
	}
	for _, step := range []struct {
		to     time.Duration
		change string
	}{{90 * time.Second, "started"}, {150 * time.Second, "ended"}} {
		h.clock.Advance(now.Add(step.to).Sub(h.clock.Now()))
		for deadline := time.Now().Add(10 * time.Second); h.metricSum("anteroom_event_switches_total", `change="`+step.change+`"`) < 1; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the event's %s was not counted", step.change)
			}
		}
	}
	// Both instances have applied the events many times since: still one
	// switch each way.
	time.Sleep(time.Second)
	for _, change := range []string{"started", "ended"} {
		if n := h.metricSum("anteroom_event_switches_total", `room="`+roomID+`"`, `change="`+change+`"`); n != 1 {
			t.Errorf("event %s counted %v times across the instances, want 1", change, n)
		}
	}
}
