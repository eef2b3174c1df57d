package web

import (
	"errors"
	"html/template"
	"net/http"
	"time"

	"github.com/anteroom/anteroom/internal/route"
	"github.com/anteroom/anteroom/waitingroom"
)

// visitorJSON is the status document of DESIGN.md; continue_url appears
// only once the visitor is admitted.
type visitorJSON struct {
	waitingroom.VisitorStatus
	ContinueURL string `json:"continue_url,omitempty"`
}

// waitPage is what the waiting page template renders, in the visitor's
// language (the embedded locale: {{.T "key"}}, {{.Lang}}, {{.Strings}}).
type waitPage struct {
	locale
	Status      waitingroom.VisitorStatus
	RoomName    string
	Message     string
	StatusURL   string
	EventsURL   string
	ContinueURL string
	StaticURL   string
	ETA         string
	// KeptFor is how long the room keeps a place (its max wait), for the
	// notice shown while the queue is full.
	KeptFor string
	// OpensAt is set while the visitor is in the room's pre-queue.
	OpensAt *opening
	// Challenge is set while the page solves a proof of work before a
	// place (challenge.go).
	Challenge *pageChallenge
	// CodeURL is where the priority code form posts ("": the room has no
	// lanes); CodeError is the text key of a code that failed.
	CodeURL   string
	CodeError string
	// Event is the room's scheduled event the page names (nil: none).
	Event *eventNotice
}

// opening is a room's opening time as the page shows it.
type opening struct{ ISO, Text string }

// Element is the opening time as a <time> element, for
// {{$.HTML "wait.prequeue" "time" .Element}}.
func (o opening) Element() template.HTML {
	return template.HTML(`<time datetime="` + template.HTMLEscapeString(o.ISO) + `">` + template.HTMLEscapeString(o.Text) + `</time>`)
}

// wait serves /wait/{id}: the login step of every auth request. A first
// visit joins the queue (or reuses the browser's ticket) and binds the
// request to the ticket; an admitted visitor continues at once; a status
// poll from a ticket holder is answered from the cookie and the cached
// counter without touching Redis.
func (s *Server) wait(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	req, err := s.flow.Open(id)
	if err != nil {
		s.storeFailure(w, r, err)
		return
	}
	defer req.Close()
	roomID := req.Room()
	room, _ := s.store.Room(roomID)
	now := s.store.Now()
	have := s.cookies.read(r, roomID)
	// An expired ticket still goes to Join, which gives a new place and
	// moves this request over from it.
	usable := have != nil && !have.Expired(room, now)
	// The relying party may want a more recent admission than this
	// browser's (max_age, prompt=login).
	stale := usable && have.Admitted() && !req.Fresh(*have)
	if id, ok := s.identities[roomID]; ok && s.upstreamWait(w, r, req, id, have, usable) {
		return
	}
	if req.PromptNone() {
		if !usable || stale {
			have = nil
		}
		s.silent(w, r, req, room, have)
		return
	}
	if stale {
		s.askRequeue(w, r, id, *have)
		return
	}
	if usable && wantsJSON(r) {
		if c, ok := s.cache.Get(roomID); ok {
			s.beat(c.Resolve(*have))
			s.writeStatus(w, r, id, *have, room, c, now)
			return
		}
	}
	if !usable && s.challenged(w, r, req, room) {
		return
	}
	j, err := s.store.Join(r.Context(), roomID, id, have, waitingroom.JoinFrom(limitKey(s.clientIPs.Of(r))), waitingroom.RequestCreatedAt(req.Created()))
	if err != nil {
		s.storeFailure(w, r, err)
		return
	}
	t := j.Ticket
	if j.New {
		s.metrics.joined(roomID)
		if err := s.cookies.write(w, t, room, now); err != nil {
			s.fail(w, r, msgUnavailable, err)
			return
		}
		s.cache.Observe(roomID, j.Serving, t.Position)
	}
	c, _ := s.cache.Get(roomID)
	c.Serving = max(c.Serving, j.Serving)
	s.beat(c.Resolve(t))
	if (t.Admitted() || c.Reached(t) && !t.Skipped) && !wantsJSON(r) {
		// The safety net and returning visitors: no page, straight back
		// into the flow.
		s.admit(w, r, req, t, room)
		return
	}
	s.writeStatus(w, r, id, t, room, c, now)
}

// silent answers prompt=none: it succeeds only for a browser whose ticket
// is admitted with a live session, and never queues anyone.
func (s *Server) silent(w http.ResponseWriter, r *http.Request, req AuthRequest, room waitingroom.Room, have *waitingroom.Ticket) {
	if have == nil || !have.Admitted() {
		req.LoginRequired(w, r)
		return
	}
	if _, err := s.store.Join(r.Context(), room.ID, req.ID(), have, waitingroom.RequestCreatedAt(req.Created())); err != nil {
		if errors.Is(err, waitingroom.ErrClaimed) {
			req.LoginRequired(w, r)
			return
		}
		s.storeFailure(w, r, err)
		return
	}
	s.admit(w, r, req, *have, room)
}

// askRequeue asks an admitted visitor whether to pass the queue again for
// a request that wants a more recent admission than theirs. Any site can
// send a browser to /authorize with prompt=login, so a GET never gives up
// an admission: only the visitor's own answer does, a POST that carries the
// token of this question (see answered).
func (s *Server) askRequeue(w http.ResponseWriter, r *http.Request, id string, t waitingroom.Ticket) {
	base := s.issuer + route.Wait(id)
	q := "?t=" + s.questions.token(t.ID, id)
	if wantsJSON(r) {
		writeJSON(w, msgRequeue.Status, struct {
			Code       string `json:"error"`
			Text       string `json:"error_description"`
			RequeueURL string `json:"requeue_url"`
			DeclineURL string `json:"decline_url"`
		}{msgRequeue.Code, builtinEnglish()[msgRequeue.Text], base + "/requeue" + q, base + "/decline" + q})
		return
	}
	p := s.visitorMessage(w, r, msgRequeue)
	p.Actions = []pageAction{
		{URL: base + "/requeue" + q, Label: p.text("msg.requeue.yes")},
		{URL: base + "/decline" + q, Label: p.text("msg.requeue.no"), Secondary: true},
	}
	s.render(w, http.StatusOK, "message.html", p)
}

// answered resolves an answer to "queue again?" (POST /wait/{id}/requeue
// or /decline): the browser's ticket must be the one asked, admitted too
// long ago for the request, and the post must carry the question's token
// and come from Anteroom's own page. The ticket cookie alone is not enough:
// a form on another origin of the same site carries it (SameSite=Lax is
// about sites, not origins). When it reports false it has answered.
// The caller must Close the request when it is not nil.
func (s *Server) answered(w http.ResponseWriter, r *http.Request) (AuthRequest, waitingroom.Room, waitingroom.Ticket, bool) {
	req, room, have, ok := s.ticketFor(w, r)
	if !ok {
		return req, room, have, false
	}
	id := req.ID()
	if !sameOrigin(r) || !s.questions.valid(queryValue(r.URL.RawQuery, "t"), have.ID, id) {
		s.fail(w, r, msgNoTicket, nil)
		return req, room, have, false
	}
	if !have.Admitted() || req.Fresh(have) {
		// Nothing to give up (answered already, or in another tab):
		// the page shows where things stand.
		http.Redirect(w, r, s.issuer+route.Wait(id), http.StatusSeeOther)
		return req, room, have, false
	}
	return req, room, have, true
}

// requeue serves POST /wait/{id}/requeue: the visitor agreed to pass the
// queue again, and gets a new place at the back; their admission runs out
// by its session.
func (s *Server) requeue(w http.ResponseWriter, r *http.Request) {
	req, room, have, ok := s.answered(w, r)
	if req != nil {
		defer req.Close()
	}
	if !ok {
		return
	}
	id := req.ID()
	if s.requeuePerson(w, r, req, room, have) {
		return
	}
	j, err := s.store.Join(r.Context(), room.ID, id, nil, waitingroom.JoinFrom(limitKey(s.clientIPs.Of(r))), waitingroom.RequestCreatedAt(req.Created()))
	if err != nil {
		s.storeFailure(w, r, err)
		return
	}
	s.metrics.joined(room.ID)
	if err := s.cookies.write(w, j.Ticket, room, s.store.Now()); err != nil {
		s.fail(w, r, msgUnavailable, err)
		return
	}
	s.cache.Observe(room.ID, j.Serving, j.Ticket.Position)
	http.Redirect(w, r, s.issuer+route.Wait(id), http.StatusSeeOther)
}

// decline serves POST /wait/{id}/decline: the visitor keeps their
// admission, and the relying party hears access_denied.
func (s *Server) decline(w http.ResponseWriter, r *http.Request) {
	req, _, _, ok := s.answered(w, r)
	if req != nil {
		defer req.Close()
	}
	if !ok {
		return
	}
	req.Decline(w, r)
}

// continueFlow serves POST /wait/{id}/continue.
func (s *Server) continueFlow(w http.ResponseWriter, r *http.Request) {
	req, room, have, ok := s.ticketFor(w, r)
	if req != nil {
		defer req.Close()
	}
	if !ok {
		return
	}
	if have.Admitted() && !req.Fresh(have) {
		// Too old an admission for this request: the page asks whether
		// to queue anew.
		http.Redirect(w, r, s.issuer+route.Wait(req.ID()), http.StatusSeeOther)
		return
	}
	s.admit(w, r, req, have, room)
}

// ticketFor opens the request of /wait/{id}/… and resolves the browser's
// usable ticket for its room; when there is none it has answered already.
// The caller must Close the request when it is not nil.
func (s *Server) ticketFor(w http.ResponseWriter, r *http.Request) (AuthRequest, waitingroom.Room, waitingroom.Ticket, bool) {
	req, err := s.flow.Open(r.PathValue("id"))
	if err != nil {
		s.storeFailure(w, r, err)
		return nil, waitingroom.Room{}, waitingroom.Ticket{}, false
	}
	roomID := req.Room()
	room, _ := s.store.Room(roomID)
	have := s.cookies.read(r, roomID)
	if have == nil || have.Expired(room, s.store.Now()) {
		s.fail(w, r, msgNoTicket, nil)
		return req, waitingroom.Room{}, waitingroom.Ticket{}, false
	}
	return req, room, *have, true
}

// admit lets the ticket through for request req and continues the OIDC flow.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, req AuthRequest, t waitingroom.Ticket, room waitingroom.Room) {
	id := req.ID()
	admitted, err := s.store.Admit(r.Context(), t, id, waitingroom.RequestCreatedAt(req.Created()))
	switch {
	case errors.Is(err, waitingroom.ErrNotAdmitted), errors.Is(err, waitingroom.ErrSkipped):
		if errors.Is(err, waitingroom.ErrSkipped) {
			// Passed over while the page was silent, and now back: the
			// next tick lets the visitor in. The cookie remembers, so the
			// page says "you are next" rather than "admitted" until then.
			t.Skipped = true
			if err := s.cookies.write(w, t, room, s.store.Now()); err != nil {
				s.fail(w, r, msgUnavailable, err)
				return
			}
		}
		// Not yet: back to the page.
		if r.Method == http.MethodGet {
			c, _ := s.cache.Get(room.ID)
			s.writeStatus(w, r, id, t, room, c, s.store.Now())
			return
		}
		http.Redirect(w, r, s.issuer+route.Wait(id), http.StatusSeeOther)
		return
	case errors.Is(err, waitingroom.ErrSessionOver):
		// The session this ticket bought is over: back of the queue.
		s.cookies.clear(w, room.ID)
		http.Redirect(w, r, s.issuer+route.Wait(id), http.StatusSeeOther)
		return
	case errors.Is(err, waitingroom.ErrStale):
		// Redis lost the room and no instance remembered it: the page
		// joins again with this ticket, which moves the request to a new
		// place.
		http.Redirect(w, r, s.issuer+route.Wait(id), http.StatusSeeOther)
		return
	case err != nil:
		s.storeFailure(w, r, err)
		return
	}
	if !t.Admitted() {
		// The first admission of this ticket; a restarted login of an
		// admitted ticket is not counted again.
		s.metrics.admitted(admitted)
		if err := s.cookies.write(w, admitted, room, s.store.Now()); err != nil {
			s.fail(w, r, msgUnavailable, err)
			return
		}
	}
	err = s.finishFor(w, r, req, admitted)
	if errors.Is(err, waitingroom.ErrSessionOver) {
		// An admission too old for this request (max_age), which the
		// waiting page turns into a new place.
		http.Redirect(w, r, s.issuer+route.Wait(id), http.StatusSeeOther)
		return
	}
	if err != nil {
		s.storeFailure(w, r, err)
	}
}

func (s *Server) writeStatus(w http.ResponseWriter, r *http.Request, id string, t waitingroom.Ticket, room waitingroom.Room, c waitingroom.Counters, now time.Time) {
	st := s.statusOf(t, room, c, now)
	if wantsJSON(r) {
		doc := visitorJSON{VisitorStatus: st}
		if st.State == waitingroom.VisitorAdmitted {
			doc.ContinueURL = s.issuer + route.Continue(id)
		}
		writeStatusJSON(w, doc)
		return
	}
	continueURL := s.issuer + route.Continue(id)
	l := s.localeFor(w, r)
	var opens *opening
	if st.OpensAt != nil {
		at := time.Unix(*st.OpensAt, 0).UTC()
		opens = &opening{ISO: at.Format(time.RFC3339), Text: l.opening(at)}
	}
	event, message := s.eventFor(l, room, now)
	var codeURL string
	if room.Lanes != nil && st.State == waitingroom.VisitorWaiting && st.Lane == "" {
		codeURL = s.issuer + route.Code(id)
	}
	s.render(w, http.StatusOK, "wait.html", waitPage{
		CodeURL:     codeURL,
		CodeError:   codeErrorKey(queryValue(r.URL.RawQuery, "code_error")),
		Event:       event,
		locale:      l,
		OpensAt:     opens,
		Status:      st,
		RoomName:    room.Name,
		Message:     message,
		StatusURL:   s.issuer + route.StatusJSON(id),
		EventsURL:   s.issuer + route.Events(id),
		ContinueURL: continueURL,
		StaticURL:   s.issuer + "/static",
		ETA:         l.Duration(st.ETASeconds),
		KeptFor:     l.keptFor(room.MaxWait),
	})
}

// statusOf is waitingroom.StatusOf, except that a ticket passed over while
// its page was silent (or whose claim on a full room lapsed) shows as
// waiting, at the front, until continue succeeds: the page retries
// continue every few seconds, and only that touches Redis, never a poll.
func (s *Server) statusOf(t waitingroom.Ticket, room waitingroom.Room, c waitingroom.Counters, now time.Time) waitingroom.VisitorStatus {
	st := waitingroom.StatusOf(t, room, c, s.cache.Rate(room.ID), now)
	s.nameEvent(&st, room, now)
	if t.Skipped && !t.Admitted() && st.State == waitingroom.VisitorAdmitted {
		st.State = waitingroom.VisitorWaiting
		st.Ahead = 0
	}
	return st
}
