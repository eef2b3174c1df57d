//go:build unix

package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/anteroom/anteroom/config"
	"github.com/anteroom/anteroom/gate"
	"github.com/anteroom/anteroom/oidc"
)

// codeFrom runs an authorization request in browser b and returns the code
// of the response it sends to redirectURI, without following it there.
func (s *gateSite) codeFrom(b *http.Client, clientID, redirectURI, verifier string) string {
	s.t.Helper()
	q := url.Values{"client_id": {clientID}, "redirect_uri": {redirectURI}, "response_type": {"code"}, "scope": {"openid"},
		"state": {"attacker"}, "nonce": {"n"}, "code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)},
		"code_challenge_method": {"S256"}}
	stop := &http.Client{Jar: b.Jar, Timeout: b.Timeout, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), redirectURI) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	resp, err := stop.Get(s.base + "/_anteroom/authorize?" + q.Encode())
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil || !strings.HasPrefix(loc.String(), redirectURI) || loc.Query().Get("code") == "" {
		s.t.Fatalf("authorization request of %s: %d, Location %v", clientID, resp.StatusCode, loc)
	}
	return loc.Query().Get("code")
}

// redeem posts a code to the public token endpoint, as anyone can.
func (s *gateSite) redeem(form url.Values) (int, map[string]any) {
	s.t.Helper()
	resp, err := http.PostForm(s.base+"/_anteroom/oauth/token", form)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &body)
	return resp.StatusCode, body
}

func (s *gateSite) roomStatus(room string) (active int64) {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.anteroom+"/admin/v1/rooms/"+room, nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct{ Active int64 }
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		s.t.Fatal(err)
	}
	return doc.Active
}

// enter takes browser b through the gate to /shop, queueing if it must
// (a room with a free max_active slot and nobody waiting admits at once).
func (s *gateSite) enter(b *http.Client) {
	s.t.Helper()
	resp, body := s.get(b, "/shop")
	if strings.Contains(resp.Request.URL.Path, "/_anteroom/wait/") {
		resp, body = s.admit(b, roomID, resp.Request.URL.String())
	}
	if resp.Request.URL.String() != s.base+"/shop" || !strings.HasPrefix(body, "app: /shop") {
		s.t.Fatalf("not through the gate: %d at %s: %.200s", resp.StatusCode, resp.Request.URL, body)
	}
}

// passes reports whether b's gate session, as it is, lets it through to
// the app; a refused one is not followed into the queue (where a visitor
// whose session ended may well get a new one).
func (s *gateSite) passes(b *http.Client) bool {
	s.t.Helper()
	noFollow := &http.Client{Jar: b.Jar, Timeout: b.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	resp, body := s.get(noFollow, "/shop/basket")
	return resp.StatusCode == http.StatusOK && strings.HasPrefix(body, "app: /shop/basket")
}

// TestGateClientsCannotBeRunFromOutside is the attack that defeated
// max_active: an admitted visitor runs the gate's own client, redeems the
// code at the public token endpoint, and ends the session with the ID
// token (OIDC RP-Initiated Logout), which freed the slot while the gate
// cookie kept working. The gate's clients are confidential now (RFC 6749
// §2.1) with a secret only the process knows, so the public token
// endpoint refuses their codes with invalid_client (RFC 6749 §3.2.1,
// §5.2); the slot stays taken and the origin stays limited, however often
// it is tried.
func TestGateClientsCannotBeRunFromOutside(t *testing.T) {
	s := startGateSite(t, func(c *config.Config) {
		one := 1
		c.Rooms[0].Admission.MaxActive = &one
	})
	a := s.browser()
	s.enter(a)
	b := s.browser()
	waitB := s.queueThrough(b, "/shop")

	gateClient, callback := oidc.GateClientID(roomID), s.base+"/_anteroom/gate/callback"
	for attempt := range 3 {
		verifier := oauth2.GenerateVerifier()
		code := s.codeFrom(a, gateClient, callback, verifier)
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {callback},
			"client_id": {gateClient}, "code_verifier": {verifier}}
		status, body := s.redeem(form)
		if status != http.StatusUnauthorized || body["error"] != "invalid_client" || body["id_token"] != nil {
			t.Fatalf("attempt %d: the public token endpoint redeemed a gate code: %d %v", attempt, status, body)
		}
		form.Set("client_secret", "guessed")
		if status, body := s.redeem(form); status != http.StatusUnauthorized || body["id_token"] != nil {
			t.Fatalf("attempt %d: a guessed secret: %d %v", attempt, status, body)
		}
		// Without an ID token there is nothing to name the session with.
		if resp, err := http.Get(s.base + "/_anteroom/end_session?client_id=" + gateClient); err == nil {
			resp.Body.Close()
		}
		if active := s.roomStatus(roomID); active != 1 {
			t.Fatalf("attempt %d: active sessions %d, want the first visitor's 1", attempt, active)
		}
		if !s.passes(a) {
			t.Fatalf("attempt %d: the first visitor lost their own session", attempt)
		}
		// The room is full: the second visitor's turn comes, but no slot.
		if resp, _ := s.admit(b, roomID, waitB); !strings.Contains(resp.Request.URL.Path, "/_anteroom/wait/") || s.passes(b) {
			t.Fatalf("attempt %d: a second visitor got in to a room of max_active 1: at %s", attempt, resp.Request.URL)
		}
	}
}

// TestEndingASessionEndsTheGateSessionWithinTheBound: a visitor who
// passed the gate and also logged in at a relying party of the same room
// logs out there (OIDC RP-Initiated Logout 1.0 §2), which ends the ticket's
// session and frees its max_active slot. The gate cookie, signed to last
// until admitted_at + session_ttl, stops passing within
// gate.SessionRecheck, so the next visitor let into the freed slot is the
// only one through.
func TestEndingASessionEndsTheGateSessionWithinTheBound(t *testing.T) {
	s := startGateSite(t, func(c *config.Config) {
		one := 1
		c.Rooms[0].Admission.MaxActive = &one
	})
	a := s.browser()
	s.enter(a)
	verifier := oauth2.GenerateVerifier()
	code := s.codeFrom(a, publicAppID, publicRP, verifier)
	status, tok := s.redeem(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {publicRP},
		"client_id": {publicAppID}, "code_verifier": {verifier}})
	idToken, _ := tok["id_token"].(string)
	if status != http.StatusOK || idToken == "" {
		t.Fatalf("the relying party's code: %d %v", status, tok)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(s.base + "/_anteroom/end_session?client_id=" + publicAppID + "&id_token_hint=" + url.QueryEscape(idToken))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || s.roomStatus(roomID) != 0 {
		t.Fatalf("end_session: %d, active %d", resp.StatusCode, s.roomStatus(roomID))
	}

	// Within the bound the cookie may still pass (it was checked at its
	// first sight, no time ago)...
	if !s.passes(a) {
		t.Fatal("test is void: the session was refused before its recheck was due")
	}
	// ...never after it.
	s.clock.Advance(gate.SessionRecheck)
	if s.passes(a) {
		t.Fatalf("the gate session outlived its ended session by more than %v", gate.SessionRecheck)
	}
	// The freed slot goes to the next visitor (at once: nobody waits, and
	// a slot is free), the only one through now.
	c := s.browser()
	s.enter(c)
	if !s.passes(c) || s.passes(a) {
		t.Fatal("after the bound, only the next visitor passes")
	}
	if s.roomStatus(roomID) != 1 {
		t.Fatalf("active %d, want 1", s.roomStatus(roomID))
	}
}
