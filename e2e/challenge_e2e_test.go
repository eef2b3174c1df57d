package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/anteroom/anteroom/challenge"
	"github.com/anteroom/anteroom/config"
)

// These tests hold the proof of work before a place (rooms[].challenge) to
// ALTCHA's protocol (https://altcha.org/docs/api-specification) and to
// the issue's contract: a JSON client gets {"state":"challenge",
// "challenge":{algorithm, challenge, maxnumber, salt, signature},
// "proof_url"}, posts {"payload"} there and gets the status JSON with the
// ticket cookie; every refusal is a 400 with its code and takes no place.

// challengeRoom challenges every new visitor of the test room at a
// difficulty a test solves in a moment.
func challengeRoom(mode string, maxNumber int64) setup {
	return configure(func(c *config.Config) {
		c.Rooms[0].Challenge = config.Challenge{Mode: mode, MaxNumber: maxNumber, JoinsPerSecond: 3}
	})
}

// challengeDoc is the answer of /wait/{id} to a JSON client that must
// solve a challenge first.
type challengeDoc struct {
	State     string              `json:"state"`
	Challenge challenge.Challenge `json:"challenge"`
	ProofURL  string              `json:"proof_url"`
}

// jsonGet fetches u with Accept: application/json in browser b.
func jsonGet(t *testing.T, b *http.Client, u string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Accept", "application/json")
	resp, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// askChallenge starts a login in b and returns its waiting page's URL and
// the challenge it is given.
func askChallenge(t *testing.T, h *harness, b *http.Client) (string, challengeDoc) {
	t.Helper()
	waitURL := queue(t, b, h.rp, newLogin())
	resp, body := jsonGet(t, b, waitURL)
	var doc challengeDoc
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &doc) != nil || doc.State != "challenge" {
		t.Fatalf("want a challenge, got %d %s", resp.StatusCode, body)
	}
	var raw map[string]any
	_ = json.Unmarshal(body, &raw)
	if len(raw) != 3 || len(raw["challenge"].(map[string]any)) != 5 {
		t.Fatalf("challenge document is not exactly the issue's shape: %s", body)
	}
	if doc.ProofURL != waitURL+"/proof" {
		t.Fatalf("proof_url %q for %q", doc.ProofURL, waitURL)
	}
	return waitURL, doc
}

// postProof posts payload to proofURL as a JSON client and returns the
// status and body.
func postProof(t *testing.T, b *http.Client, proofURL, payload string) (int, []byte, *http.Response) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"payload": payload})
	req, _ := http.NewRequest(http.MethodPost, proofURL, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out, resp
}

func solve(t *testing.T, c challenge.Challenge) string {
	t.Helper()
	n, ok := challenge.Solve(c)
	if !ok {
		t.Fatalf("no solution for %+v", c)
	}
	return challenge.Encode(c, n)
}

func wantRefusal(t *testing.T, what string, code int, body []byte, want string) {
	t.Helper()
	var doc struct {
		Error string `json:"error"`
	}
	if code != http.StatusBadRequest || json.Unmarshal(body, &doc) != nil || doc.Error != want {
		t.Fatalf("%s: got %d %s, want 400 %q", what, code, body, want)
	}
}

// TestChallengeRefusalsAndReplayAcrossInstances: two instances on one
// Redis. Issuing stores nothing; each refusal (wrong, expired, other room,
// other request, replayed, also on the other instance) is a 400 with its
// code and takes no place; the good proof takes exactly one, at the moment
// it is accepted.
func TestChallengeRefusalsAndReplayAcrossInstances(t *testing.T) {
	h := newHarness(t, instances(2), challengeRoom("always", 2000))
	ctx := context.Background()
	alice := h.visitor()
	waitURL := alice.queue()
	// The page a person sees: checking the browser in a same-origin
	// worker, under the unchanged strict CSP, with the live region and a
	// <noscript> explanation.
	resp, page := visit(t, alice.browser, http.MethodGet, waitURL)
	for _, want := range []string{`data-state="challenge"`, `data-worker-url="` + issuer + `/static/solve.js"`,
		`role="status" aria-live="polite"`, `<noscript><p class="notice" id="noscript">`, `id="challenge"`, `action="` + waitURL + `/proof"`} {
		if !strings.Contains(page, want) {
			t.Errorf("challenge page lacks %s", want)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); csp != "default-src 'self'; frame-ancestors 'none'; form-action 'self' https: http:; base-uri 'none'" {
		t.Errorf("CSP changed: %q", csp)
	}
	_, doc := askChallengeAt(t, h, alice.browser, waitURL)
	// Issuing a challenge stores nothing for the visitor: no binding, no
	// place (the arrival counters are per room and second).
	if keys, _ := h.rdb.Keys(ctx, "anteroom:{r:launch}:b:*").Result(); len(keys) != 0 {
		t.Fatalf("issuing a challenge bound the request: %v", keys)
	}
	if doc.Challenge.Algorithm != "SHA-256" || doc.Challenge.MaxNumber != 2000 {
		t.Fatalf("challenge %+v", doc.Challenge)
	}
	good := solve(t, doc.Challenge)
	n, _ := challenge.Solve(doc.Challenge)

	code, body, _ := postProof(t, alice.browser, doc.ProofURL, challenge.Encode(doc.Challenge, n+1))
	wantRefusal(t, "wrong number", code, body, "proof_invalid")
	code, body, _ = postProof(t, alice.browser, doc.ProofURL, "bm90IGEgcGF5bG9hZA==")
	wantRefusal(t, "garbage", code, body, "proof_invalid")

	// Another request's waiting page (Bob's) refuses Alice's proof.
	bob := h.browser()
	_, bobDoc := askChallenge(t, h, bob)
	code, body, _ = postProof(t, bob, bobDoc.ProofURL, good)
	wantRefusal(t, "other request", code, body, "proof_other_request")

	// Another room's challenge for this very request, signed with the
	// deployment's key (as another room of it issues them), is refused.
	iss, err := challenge.New([][]byte{[]byte(cookieKey)})
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimPrefix(waitURL, issuer+"/wait/")
	code, body, _ = postProof(t, alice.browser, doc.ProofURL, solve(t, iss.Issue("sale", id, 500)))
	wantRefusal(t, "other room", code, body, "proof_other_room")
	// Past the challenge's expires=.
	h.clock.Advance(challenge.DefaultTTL + time.Second)
	code, body, _ = postProof(t, alice.browser, doc.ProofURL, good)
	wantRefusal(t, "expired", code, body, "proof_expired")
	if tail := h.tail(); tail != float64(0) {
		t.Fatalf("refused proofs took places: tail %v", tail)
	}

	// A fresh challenge, solved a while after it was issued: one place,
	// dated from the proof's acceptance, with the ticket cookie.
	_, doc = askChallengeAt(t, h, alice.browser, waitURL)
	good = solve(t, doc.Challenge)
	h.clock.Advance(7 * time.Second)
	joinedAt := h.clock.Now().Unix()
	code, body, resp = postProof(t, alice.browser, doc.ProofURL, good)
	if code != http.StatusOK {
		t.Fatalf("good proof: %d %s", code, body)
	}
	var st status
	if err := json.Unmarshal(body, &st); err != nil || st.State != "waiting" || st.Position != 1 {
		t.Fatalf("good proof: status %s", body)
	}
	if len(resp.Cookies()) == 0 || resp.Cookies()[0].Name != "anteroom_"+roomID {
		t.Fatalf("no ticket cookie: %v", resp.Header)
	}

	// Replayed on the other instance by a browser without the ticket:
	// refused, no second place.
	h.on(1)
	mallory := h.browser()
	code, body, _ = postProof(t, mallory, doc.ProofURL, good)
	wantRefusal(t, "replay on the second instance", code, body, "proof_replayed")
	// Replayed by the browser that holds the ticket: its status, no new
	// place.
	code, body, _ = postProof(t, alice.browser, doc.ProofURL, good)
	if err := json.Unmarshal(body, &st); code != http.StatusOK || err != nil || st.Position != 1 {
		t.Fatalf("replay by the ticket holder: %d %s", code, body)
	}
	if tail := h.tail(); tail != float64(1) {
		t.Fatalf("one proof took %v places", tail)
	}
	// A browser that holds a ticket is never challenged again.
	if resp, body := jsonGet(t, alice.browser, waitURL); resp.StatusCode != http.StatusOK || strings.Contains(string(body), `"challenge"`) {
		t.Fatalf("ticket holder challenged: %d %s", resp.StatusCode, body)
	}

	// A person's browser posting a bad proof gets a page in the room's
	// style.
	form := url.Values{"payload": {"garbage"}}
	req, _ := http.NewRequest(http.MethodPost, bobDoc.ProofURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/html")
	resp, err = bob.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	errPage, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(errPage), "The browser check did not work") || !strings.Contains(string(errPage), "style.css") {
		t.Fatalf("refusal page: %d %s", resp.StatusCode, errPage)
	}

	// The metrics of each instance count what it saw.
	_, metrics := visit(t, h.browser(), http.MethodGet, issuer+"/metrics")
	for _, want := range []string{
		`anteroom_challenges_refused_total{reason="proof_replayed",room="launch"} 1`,
		`anteroom_challenges_refused_total{reason="proof_invalid",room="launch"} 1`,
		`anteroom_challenge_difficulty{room="launch"} 2000`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("instance 2's metrics lack %s", want)
		}
	}
	h.on(0)
	_, metrics = visit(t, h.browser(), http.MethodGet, issuer+"/metrics")
	for _, want := range []string{
		`anteroom_challenges_issued_total{room="launch"} 6`,
		`anteroom_challenges_solved_total{room="launch"} 1`,
		`anteroom_challenges_refused_total{reason="proof_expired",room="launch"} 1`,
		`anteroom_challenges_refused_total{reason="proof_invalid",room="launch"} 2`,
		`anteroom_challenges_refused_total{reason="proof_other_request",room="launch"} 1`,
		`anteroom_challenges_refused_total{reason="proof_other_room",room="launch"} 1`,
		`anteroom_challenge_solve_seconds_count{room="launch"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("instance 1's metrics lack %s", want)
		}
	}

	// Admitted, the ID token's queued_at is the proof's acceptance.
	h.advance(1)
	code3 := alice.proceed()
	tok, err := alice.redeem(code3)
	if err != nil {
		t.Fatal(err)
	}
	idt, _ := h.rp.verifier.Verify(h.rp.ctx, tok.Extra("id_token").(string))
	var claims struct {
		QueuedAt int64 `json:"queued_at"`
	}
	if err := idt.Claims(&claims); err != nil || claims.QueuedAt != joinedAt {
		t.Fatalf("queued_at %d, want the proof's acceptance %d (%v)", claims.QueuedAt, joinedAt, err)
	}
}

// askChallengeAt asks the waiting page at waitURL for a new challenge.
func askChallengeAt(t *testing.T, h *harness, b *http.Client, waitURL string) (string, challengeDoc) {
	t.Helper()
	resp, body := jsonGet(t, b, waitURL)
	var doc challengeDoc
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &doc) != nil || doc.State != "challenge" {
		t.Fatalf("want a challenge, got %d %s", resp.StatusCode, body)
	}
	return waitURL, doc
}

// TestChallengeUnderLoadAndLiveSwitch: under_load challenges once the
// room's arrivals, counted on both instances, reach joins_per_second, and
// stops when they fall (injected clock); an operator's switch through the
// admin API reaches the other instance; `anteroom admin challenge` too.
func TestChallengeUnderLoadAndLiveSwitch(t *testing.T) {
	h := newHarness(t, instances(2), challengeRoom("under_load", 1000))
	ctx := context.Background()
	// sync is two rounds of the instances' syncs, as their tickers would
	// run them: the first adds each one's counts, the second reads all.
	sync := func() {
		t.Helper()
		for i := range 4 {
			i %= 2
			if err := h.instance(i).Arrivals().Sync(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Quiet: a new visitor joins at once (one redirect, no challenge).
	sync()
	v := h.visitor()
	if _, body := jsonGet(t, v.browser, v.queue()); strings.Contains(string(body), `"challenge"`) {
		t.Fatalf("quiet room challenged: %s", body)
	}
	h.clock.Advance(10 * time.Second)
	// Two arrivals on each instance within one second: 4 ≥ 3 a second.
	for i := range 2 {
		h.on(i)
		for range 2 {
			queue(t, h.browser(), h.rp, newLogin())
		}
	}
	h.clock.Advance(time.Second)
	sync()
	for i := range 2 {
		h.on(i)
		_, doc := askChallenge(t, h, h.browser())
		if doc.Challenge.MaxNumber != 1333 { // 1000 × 4/3
			t.Fatalf("instance %d: difficulty %d at 4 arrivals a second, want 1333", i, doc.Challenge.MaxNumber)
		}
	}
	// The flood ends: two quiet seconds, and nobody is challenged.
	h.clock.Advance(3 * time.Second)
	sync()
	h.on(1)
	if _, body := jsonGet(t, h.browser(), queue(t, h.browser(), h.rp, newLogin())); strings.Contains(string(body), `"challenge"`) {
		// queue's own GET was the arrival; the JSON GET is a second one.
		t.Fatalf("challenged after the flood: %s", body)
	}

	// The operator switches to always on instance 1; instance 2 follows
	// at its sync.
	h.on(0)
	code, doc := h.admin(http.MethodPatch, "/admin/v1/rooms/"+roomID, `{"challenge_mode":"always"}`)
	if code != http.StatusOK {
		t.Fatalf("PATCH challenge_mode: %d %v", code, doc)
	}
	if ch, _ := doc["challenge"].(map[string]any); ch["mode"] != "always" || ch["difficulty"] != float64(1000) {
		t.Fatalf("status after the switch: %v", doc["challenge"])
	}
	sync()
	h.on(1)
	askChallenge(t, h, h.browser())
	if code, doc := h.admin(http.MethodPatch, "/admin/v1/rooms/"+roomID, `{"challenge_mode":"sometimes"}`); code != http.StatusBadRequest {
		t.Fatalf("bad mode: %d %v", code, doc)
	}

	// anteroom admin challenge ROOM off, against instance 2.
	code2, out, errOut := adminCLI(t, "--url", "http://"+h.addrs[1], "--token", adminToken, "challenge", roomID, "off")
	if code2 != 0 || errOut != "" {
		t.Fatalf("admin challenge: exit %d, %q", code2, errOut)
	}
	if rows := tableRows(t, out); rows[roomID][10] != "off" {
		t.Fatalf("admin challenge: %s", out)
	}
	sync()
	h.on(0)
	if _, body := jsonGet(t, h.browser(), queue(t, h.browser(), h.rp, newLogin())); strings.Contains(string(body), `"challenge"`) {
		t.Fatalf("challenged after the switch to off: %s", body)
	}
}

// TestChallengeProofFromAnotherSiteIsRefused: a proof a page of another
// site makes the browser post (Sec-Fetch-Site: cross-site) arrives without
// the browser's ticket, and would replace its cookie: it is refused, and
// takes no place.
func TestChallengeProofFromAnotherSiteIsRefused(t *testing.T) {
	h := newHarness(t, challengeRoom("always", 1000))
	b := h.browser()
	_, doc := askChallenge(t, h, b)
	form := url.Values{"payload": {solve(t, doc.Challenge)}}
	req, _ := http.NewRequest(http.MethodPost, doc.ProofURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	wantRefusal(t, "cross-site", resp.StatusCode, body, "proof_invalid")
	if len(resp.Cookies()) != 0 || h.tail() != float64(0) {
		t.Fatalf("a cross-site proof set %v, tail %v", resp.Cookies(), h.tail())
	}
	// The same proof from the page itself (same-origin) takes the place,
	// in the form field ALTCHA's widget fills (altcha).
	form = url.Values{"altcha": form["payload"]}
	req, _ = http.NewRequest(http.MethodPost, doc.ProofURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err = b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasSuffix(resp.Request.URL.Path, strings.TrimPrefix(strings.TrimSuffix(doc.ProofURL, "/proof"), issuer)) || h.tail() != float64(1) {
		t.Fatalf("same-origin form post: %d at %s, tail %v", resp.StatusCode, resp.Request.URL, h.tail())
	}
}
