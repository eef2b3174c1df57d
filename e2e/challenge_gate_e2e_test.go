package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/anteroom/anteroom/config"
)

// TestChallengeBehindNginxGate: the nginx gate (deploy/nginx/anteroom.conf
// as shipped) passes the challenge through unchanged: a browser gets the
// page that solves it; a script's 401 start_url leads, as JSON, to the
// challenge (asked of the waiting page it leads to), whose proof_url (under the site's /_anteroom/ prefix) takes
// the place; admitted, the script reaches the app.
func TestChallengeBehindNginxGate(t *testing.T) {
	s := startGateSite(t, func(c *config.Config) {
		c.Rooms[0].Challenge = config.Challenge{Mode: "always", MaxNumber: 2000}
	})
	resp, body := s.get(s.browser(), "/shop")
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Request.URL.Path, "/_anteroom/wait/") ||
		!strings.Contains(body, `data-state="challenge"`) || !strings.Contains(body, s.base+"/_anteroom/static/solve.js") {
		t.Fatalf("browser: %d at %s: %.400s", resp.StatusCode, resp.Request.URL, body)
	}
	if s.upstream.Load() != 0 {
		t.Fatal("a challenged visitor reached the app")
	}

	b := s.browser()
	resp, body = s.get(b, "/api/cart", "X-Requested-With", "XMLHttpRequest")
	var start struct {
		StartURL string `json:"start_url"`
	}
	if err := json.Unmarshal([]byte(body), &start); resp.StatusCode != http.StatusUnauthorized || err != nil {
		t.Fatalf("script: %d %s", resp.StatusCode, body)
	}
	// The script opens the start URL as a page would (the gate answers
	// a JSON request there with the same 401), and asks the waiting page
	// it lands on for JSON.
	resp, err := b.Get(start.StartURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, raw := jsonGet(t, b, resp.Request.URL.String())
	var doc challengeDoc
	if err := json.Unmarshal(raw, &doc); resp.StatusCode != http.StatusOK || err != nil || doc.State != "challenge" ||
		!strings.HasPrefix(doc.ProofURL, s.base+"/_anteroom/wait/") {
		t.Fatalf("the start URL as JSON: %d %s", resp.StatusCode, raw)
	}
	code, out, _ := postProof(t, b, doc.ProofURL, solve(t, doc.Challenge))
	var st status
	if err := json.Unmarshal(out, &st); code != http.StatusOK || err != nil || st.Position != 1 {
		t.Fatalf("proof through nginx: %d %s", code, out)
	}
	waitURL := strings.TrimSuffix(doc.ProofURL, "/proof")
	resp, body = s.admit(b, roomID, waitURL)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(body, "app: /api/cart") {
		t.Fatalf("after admission: %d at %s: %.300s", resp.StatusCode, resp.Request.URL, body)
	}
}
