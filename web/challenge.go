package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/anteroom/anteroom/challenge"
	"github.com/anteroom/anteroom/internal/route"
	"github.com/anteroom/anteroom/waitingroom"
)

// A room may ask a browser without a ticket for a proof of work before it
// is given a place (rooms[].challenge; package challenge speaks ALTCHA's
// protocol). /wait/{id} then answers with the challenge instead of a
// place: the page solves it in a Web Worker (static/solve.js) and posts
// the proof to /wait/{id}/proof, which joins. Nothing is stored for a
// challenge; what stops a proof from buying two places is the request's
// binding to the ticket the first one bought, which the queue writes in
// the same script that hands out the place (a second join for the request
// without that ticket is refused as claimed, on every instance).

// Challenges is the rooms' proof of work, as the server wires it.
type Challenges struct {
	// Issuer signs and verifies the challenges.
	Issuer *challenge.Issuer
	// Policies are the rooms' configured challenges (a room absent here
	// is never challenged).
	Policies map[string]challenge.Policy
	// Load tells the room's arrival rate and the operator's live mode.
	Load ChallengeLoad
	// Store keeps the operator's live mode (SetChallengeMode).
	Store *waitingroom.Store
}

// ChallengeLoad is what the difficulty follows (a *waitingroom.Arrivals).
type ChallengeLoad interface {
	// Arrive counts a visitor asking room for a place.
	Arrive(room string)
	// Rate is room's arrivals per second across instances.
	Rate(room string) float64
	// Mode is the operator's live mode for room, if one applies over the
	// configured one.
	Mode(room, configured string) (string, bool)
	// Sync shares this instance's counts and reads the others'.
	Sync(ctx context.Context) error
}

// challengeJSON is the answer to a JSON client that must solve a
// challenge before it gets a place.
type challengeJSON struct {
	State     string              `json:"state"`
	Challenge challenge.Challenge `json:"challenge"`
	ProofURL  string              `json:"proof_url"`
}

// Refusals of a proof: 400, with the reason's code.
var (
	msgProofInvalid      = message{http.StatusBadRequest, "proof_invalid", "msg.proof.title", "msg.proof.invalid"}
	msgProofExpired      = message{http.StatusBadRequest, "proof_expired", "msg.proof.title", "msg.proof.expired"}
	msgProofOtherRoom    = message{http.StatusBadRequest, "proof_other_room", "msg.proof.title", "msg.proof.other"}
	msgProofOtherRequest = message{http.StatusBadRequest, "proof_other_request", "msg.proof.title", "msg.proof.other"}
	msgProofReplayed     = message{http.StatusBadRequest, "proof_replayed", "msg.proof.title", "msg.proof.replayed"}
)

// Policy is room's challenge as it applies now: the configured one, in
// the mode an operator switched it to, if any.
func (c *Challenges) Policy(room string) (challenge.Policy, bool) {
	if c == nil || c.Issuer == nil {
		return challenge.Policy{}, false
	}
	p, ok := c.Policies[room]
	if !ok {
		return p, false
	}
	if c.Load != nil {
		if m, ok := c.Load.Mode(room, string(p.Mode)); ok && challenge.Mode(m).Valid() {
			p.Mode = challenge.Mode(m)
		}
	}
	return p, true
}

// Difficulty is the maxnumber a new visitor of room is challenged with
// now; 0: none.
func (c *Challenges) Difficulty(room string) int64 {
	p, ok := c.Policy(room)
	if !ok {
		return 0
	}
	var rate float64
	if c.Load != nil {
		rate = c.Load.Rate(room)
	}
	return p.Difficulty(rate)
}

// challenged counts a visitor without a ticket for room and, when the
// room challenges now, answers with a challenge; it reports whether it
// answered.
func (s *Server) challenged(w http.ResponseWriter, r *http.Request, req AuthRequest, room waitingroom.Room) bool {
	c := s.challenges
	if c == nil || c.Issuer == nil {
		return false
	}
	if c.Load != nil {
		c.Load.Arrive(room.ID)
	}
	if cc, ok := s.cache.Get(room.ID); ok && cc.State == waitingroom.StateClosed {
		// No place to buy: the join says the room is closed, and a
		// visitor should not compute for that page.
		return false
	}
	d := c.Difficulty(room.ID)
	if d <= 0 {
		return false
	}
	id := req.ID()
	ch := c.Issuer.Issue(room.ID, id, d)
	s.metrics.challengeIssued(room.ID)
	proofURL := s.issuer + route.Proof(id)
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, challengeJSON{State: "challenge", Challenge: ch, ProofURL: proofURL})
		return true
	}
	l := s.localeFor(w, r)
	s.render(w, http.StatusOK, "wait.html", waitPage{
		locale:    l,
		Status:    waitingroom.VisitorStatus{Room: room.ID, State: "challenge"},
		RoomName:  room.Name,
		Message:   room.Message,
		StatusURL: s.issuer + route.StatusJSON(id),
		StaticURL: s.issuer + "/static",
		Challenge: &pageChallenge{Data: ch, ProofURL: proofURL},
		KeptFor:   l.keptFor(room.MaxWait),
	})
	return true
}

// pageChallenge is the challenge as the waiting page carries it.
type pageChallenge struct {
	// Data is the challenge for the worker (a JSON data block).
	Data challenge.Challenge
	// ProofURL is where the page posts the proof, as a form: the answer
	// is the waiting page with the place, or a refusal page.
	ProofURL string
}

// maxProofBody bounds a proof's body: a payload is about 400 bytes.
const maxProofBody = 8 << 10

// proof serves POST /wait/{id}/proof: a solved challenge buys a place.
// The body is JSON {"payload": …} or a form with payload (or altcha, the
// field ALTCHA's widget fills). The answer is what /wait/{id} answers a
// ticket holder: the status JSON with the ticket cookie, or for a form
// post a redirect to the page.
func (s *Server) proof(w http.ResponseWriter, r *http.Request) {
	req, err := s.flow.Open(r.PathValue("id"))
	if err != nil {
		s.storeFailure(w, r, err)
		return
	}
	defer req.Close()
	id, roomID := req.ID(), req.Room()
	room, _ := s.store.Room(roomID)
	now := s.store.Now()
	have := s.cookies.read(r, roomID)
	if have != nil && !have.Expired(room, now) {
		// A ticket holder is never challenged: a proof adds nothing, and
		// takes nothing away.
		if !wantsJSON(r) {
			http.Redirect(w, r, s.issuer+route.Wait(id), http.StatusSeeOther)
			return
		}
		c, _ := s.cache.Get(roomID)
		s.writeStatus(w, r, id, *have, room, c, now)
		return
	}
	if s.challenges == nil || s.challenges.Issuer == nil {
		s.fail(w, r, msgProofInvalid, nil)
		return
	}
	if !sameOrigin(r) {
		// A form another site makes a browser post arrives without the
		// browser's ticket (SameSite=Lax), and its answer would replace
		// that ticket's cookie with a place for the other site's request.
		s.refuseProof(w, r, roomID, msgProofInvalid)
		return
	}
	payload, err := proofPayload(w, r)
	if err != nil {
		s.refuseProof(w, r, roomID, msgProofInvalid)
		return
	}
	p, err := s.challenges.Issuer.Verify(payload, roomID, id)
	if err != nil {
		m := msgProofInvalid
		switch {
		case errors.Is(err, challenge.ErrExpired):
			m = msgProofExpired
		case errors.Is(err, challenge.ErrOtherRoom):
			m = msgProofOtherRoom
		case errors.Is(err, challenge.ErrOtherRequest):
			m = msgProofOtherRequest
		}
		s.refuseProof(w, r, roomID, m)
		return
	}
	j, err := s.store.Join(r.Context(), roomID, id, have, waitingroom.JoinFrom(limitKey(s.clientIPs.Of(r))), waitingroom.RequestCreatedAt(req.Created()))
	if errors.Is(err, waitingroom.ErrClaimed) {
		// The request already bought a place, with this proof or another
		// one: the ticket it is bound to is somewhere else.
		s.refuseProof(w, r, roomID, msgProofReplayed)
		return
	}
	if err != nil {
		s.storeFailure(w, r, err)
		return
	}
	s.metrics.challengeSolved(roomID, s.store.Now().Sub(p.Issued))
	t := j.Ticket
	s.metrics.joined(roomID)
	if err := s.cookies.write(w, t, room, now); err != nil {
		s.fail(w, r, msgUnavailable, err)
		return
	}
	s.cache.Observe(roomID, j.Serving, t.Position)
	if !wantsJSON(r) {
		http.Redirect(w, r, s.issuer+route.Wait(id), http.StatusSeeOther)
		return
	}
	c, _ := s.cache.Get(roomID)
	c.Serving = max(c.Serving, j.Serving)
	s.beat(c.Resolve(t))
	s.writeStatus(w, r, id, t, room, c, now)
}

// refuseProof answers a refused proof with m, counted by its code. The
// code is the reason; a forged or stale payload is not worth a log line.
func (s *Server) refuseProof(w http.ResponseWriter, r *http.Request, room string, m message) {
	s.metrics.challengeRefused(room, m.Code)
	s.fail(w, r, m, nil)
}

// proofPayload reads the payload from a JSON or form body.
func proofPayload(w http.ResponseWriter, r *http.Request) (string, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxProofBody)
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		var body struct {
			Payload string `json:"payload"`
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return "", err
		}
		if err := json.Unmarshal(b, &body); err != nil {
			return "", err
		}
		return body.Payload, nil
	}
	if err := r.ParseForm(); err != nil {
		return "", err
	}
	if v := r.PostForm.Get("payload"); v != "" {
		return strings.TrimSpace(v), nil
	}
	return strings.TrimSpace(r.PostForm.Get("altcha")), nil
}

// Challenge reports room's challenge mode as it applies now and the
// difficulty a new visitor gets (the admin API and the dashboard show
// them); false for a room without one.
func (c *Challenges) Challenge(room string) (mode string, difficulty int64, ok bool) {
	p, ok := c.Policy(room)
	if !ok {
		return "", 0, false
	}
	return string(p.Mode), c.Difficulty(room), true
}

// SetChallengeMode switches room's mode for every instance (the admin
// API): this one at once, the others at their next sync of the arrivals.
func (c *Challenges) SetChallengeMode(ctx context.Context, room, mode string) error {
	p, ok := c.Policies[room]
	if !ok || c.Store == nil {
		return fmt.Errorf("%w %q", waitingroom.ErrUnknownRoom, room)
	}
	if !challenge.Mode(mode).Valid() {
		return fmt.Errorf("challenge mode must be off, always or under_load, got %q", mode)
	}
	if err := c.Store.SetChallengeMode(ctx, room, mode, string(p.Mode)); err != nil {
		return err
	}
	if c.Load != nil {
		return c.Load.Sync(ctx)
	}
	return nil
}
