package web

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/anteroom/anteroom/internal/route"
	"github.com/anteroom/anteroom/keys"
	"github.com/anteroom/anteroom/upstream"
	"github.com/anteroom/anteroom/waitingroom"
)

// The browser's side of a room with an identity provider
// (rooms[].identity). A visitor without a ticket bound to a person in this
// browser is sent from /wait/{id} to the site's provider; its answer comes
// back to /upstream/callback, where the validated ID token and the room's
// require rules decide, and the person's place (waitingroom.JoinIdentity)
// is given to this browser as its ticket cookie, beside a person cookie
// that says whose ticket it is. From then on the waiting page works as for
// anyone, and the relying party's tokens name the person.
//
// Nothing is stored while a person signs in: the pending login (the auth
// request's id, the nonce and PKCE verifier, when it began and a digest of
// this browser's login cookie) is sealed into the state parameter, as
// pending auth requests are into their ids.

// Identity is a room's identity provider as the waiting page uses it.
type Identity struct {
	Provider *upstream.Provider
	// Claims are the provider's claims copied into Anteroom's tokens.
	Claims []string
	// Require are the room's rules (every one must match).
	Require []upstream.Rule
}

// PersonRequest is what an auth request of a room with an identity
// provider offers beyond AuthRequest.
type PersonRequest interface {
	// FinishAs answers the request for the admitted ticket t of the person
	// with Anteroom subject subject, whose allow-listed claims the tokens
	// carry.
	FinishAs(w http.ResponseWriter, r *http.Request, t waitingroom.Ticket, subject string, claims map[string]any) error
	// Refuse ends the request at the relying party with access_denied.
	Refuse(w http.ResponseWriter, r *http.Request, description string)
}

// loginMaxAge bounds a pending login: a person takes minutes at most to
// sign in; a state older than this is someone's old link.
const loginMaxAge = 15 * time.Minute

// loginCookie holds a random value per browser whose digest every pending
// login of the browser carries, so that a callback URL passed to another
// browser (login CSRF: someone else's identity in your queue) is refused.
const loginCookie = "anteroom_login"

var (
	msgSignIn       = message{http.StatusUnauthorized, "login_required", "msg.sign_in.title", "msg.sign_in.text"}
	msgUpstreamDown = message{http.StatusServiceUnavailable, "temporarily_unavailable", "msg.upstream_down.title", "msg.upstream_down.text"}
	msgNotInvited   = message{http.StatusForbidden, "access_denied", "msg.not_invited.title", "msg.not_invited.text"}
)

// upstreamState is a pending login, sealed into the state parameter.
type upstreamState struct {
	Request  string `json:"r"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Browser  string `json:"b"`
	Began    int64  `json:"t"`
}

// person is who a browser's ticket of a room belongs to: the person cookie.
type person struct {
	Ticket  string         `json:"t"`
	Subject string         `json:"s"`
	Claims  map[string]any `json:"c,omitempty"`
}

// upstreamKeys seal what the browser carries for a sign-in.
type upstreamKeys struct {
	state, person, refused *keys.Box
}

func newUpstreamKeys(secrets [][]byte) (upstreamKeys, error) {
	var k upstreamKeys
	var err error
	if k.state, err = keys.NewBox(secrets, "upstream login state"); err != nil {
		return k, err
	}
	if k.person, err = keys.NewBox(secrets, "person cookie"); err != nil {
		return k, err
	}
	k.refused, err = keys.NewBox(secrets, "refused by the room")
	return k, err
}

func personCookieName(room string) string { return "anteroom_p_" + room }

// personOf returns who the browser's ticket t of room belongs to, or nil
// when the browser holds no person cookie for that very ticket.
func (s *Server) personOf(r *http.Request, room string, t *waitingroom.Ticket) *person {
	if t == nil {
		return nil
	}
	c, err := r.Cookie(personCookieName(room))
	if err != nil {
		return nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		return nil
	}
	plain, err := s.upstreamKeys.person.Open(raw, []byte(c.Name))
	if err != nil {
		return nil
	}
	var p person
	if json.Unmarshal(plain, &p) != nil || p.Subject == "" ||
		subtle.ConstantTimeCompare([]byte(p.Ticket), []byte(t.ID.String())) != 1 {
		return nil
	}
	return &p
}

// upstreamWait is /wait/{id} for a room with an identity provider: a
// browser whose ticket belongs to a person goes on as anyone does (it
// reports false); any other is sent to sign in, or, for prompt=none, the
// relying party hears login_required (OIDC Core §3.1.2.6).
func (s *Server) upstreamWait(w http.ResponseWriter, r *http.Request, req AuthRequest, id Identity, have *waitingroom.Ticket, usable bool) bool {
	if usable && s.personOf(r, req.Room(), have) != nil {
		return false
	}
	if req.PromptNone() {
		req.LoginRequired(w, r)
		return true
	}
	if wantsJSON(r) {
		s.fail(w, r, msgSignIn, nil)
		return true
	}
	browser := s.browserLogin(w, r)
	l := upstream.NewLogin()
	st, _ := json.Marshal(upstreamState{Request: req.ID(), Nonce: l.Nonce, Verifier: l.Verifier,
		Browser: digestOf(browser), Began: s.store.Now().Unix()})
	state := base64.RawURLEncoding.EncodeToString(s.upstreamKeys.state.Seal(st, []byte("state")))
	to, err := id.Provider.AuthURL(r.Context(), state, l, "")
	if err != nil {
		slog.WarnContext(r.Context(), "identity provider unavailable", "room", req.Room(), "step", "discovery", "err", err)
		s.fail(w, r, msgUpstreamDown, nil)
		return true
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, to, http.StatusFound)
	return true
}

// browserLogin returns this browser's login cookie value, setting one if
// it has none.
func (s *Server) browserLogin(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(loginCookie); err == nil && len(c.Value) == 32 {
		return c.Value
	}
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	v := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: v, Path: s.cookies.path, MaxAge: int(loginMaxAge.Seconds()) * 8,
		HttpOnly: true, Secure: s.cookies.secure, SameSite: http.SameSiteLaxMode})
	return v
}

func digestOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// upstreamCallback serves /upstream/callback: the site's provider's answer
// (OIDC Core §3.1.2.5 and §3.1.2.6). Every refusal is logged with its
// reason (never the state, code or tokens).
func (s *Server) upstreamCallback(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	q := r.URL.Query()
	st, err := s.openState(q.Get("state"))
	if err != nil {
		slog.InfoContext(r.Context(), "upstream callback refused", "reason", "state not sealed here")
		s.fail(w, r, msgUnknown, nil)
		return
	}
	if !s.store.Now().Before(time.Unix(st.Began, 0).Add(loginMaxAge)) {
		slog.InfoContext(r.Context(), "upstream callback refused", "reason", "login too old")
		s.fail(w, r, msgExpired, nil)
		return
	}
	c, err := r.Cookie(loginCookie)
	if err != nil || subtle.ConstantTimeCompare([]byte(digestOf(c.Value)), []byte(st.Browser)) != 1 {
		// A callback URL passed on, or login CSRF: the person who signed
		// in is not this browser's.
		slog.WarnContext(r.Context(), "upstream callback refused", "reason", "login began in another browser")
		s.fail(w, r, msgClaimed, nil)
		return
	}
	req, err := s.flow.Open(st.Request)
	if err != nil {
		s.storeFailure(w, r, err)
		return
	}
	defer req.Close()
	room := req.Room()
	id, ok := s.identities[room]
	pr, isPerson := req.(PersonRequest)
	if !ok || !isPerson {
		s.fail(w, r, msgUnknown, nil)
		return
	}
	if e := q.Get("error"); e != "" {
		code := upstream.ErrorCode(e)
		switch e {
		case "temporarily_unavailable", "server_error":
			slog.WarnContext(r.Context(), "identity provider unavailable", "room", room, "step", "authorization", "error", code)
			s.fail(w, r, msgUpstreamDown, nil)
			return
		}
		slog.InfoContext(r.Context(), "upstream login refused", "room", room, "reason", "provider answered with an error", "error", code)
		pr.Refuse(w, r, "the identity provider did not sign the person in")
		return
	}
	who, err := id.Provider.Exchange(r.Context(), q.Get("code"), upstream.Login{Nonce: st.Nonce, Verifier: st.Verifier})
	var refused *upstream.RefusedError
	switch {
	case errors.As(err, &refused):
		slog.WarnContext(r.Context(), "upstream login refused", "room", room, "reason", refused.Reason)
		pr.Refuse(w, r, "the identity provider's answer was refused")
		return
	case err != nil:
		// The code was not redeemed: this page reloads in a few seconds
		// and tries again; nobody's place is touched.
		slog.WarnContext(r.Context(), "identity provider unavailable", "room", room, "step", "token", "err", err)
		s.fail(w, r, msgUpstreamDown, nil)
		return
	}
	if ok, claim := upstream.Admits(id.Require, who.Claims); !ok {
		slog.InfoContext(r.Context(), "upstream login refused", "room", room, "reason", "require rule not met", "claim", claim)
		p := s.visitorMessage(w, r, msgNotInvited)
		p.Actions = []pageAction{{URL: s.issuer + route.Refused(req.ID()) + "?t=" + s.refusedToken(req.ID()), Label: p.text("msg.not_invited.back")}}
		s.metrics.refused(msgNotInvited.Code)
		s.render(w, msgNotInvited.Status, "message.html", p)
		return
	}
	subject := who.Key()
	j, err := s.store.JoinIdentity(r.Context(), room, req.ID(), subject,
		waitingroom.JoinFrom(limitKey(s.clientIPs.Of(r))), waitingroom.RequestCreatedAt(req.Created()))
	if err != nil {
		s.storeFailure(w, r, err)
		return
	}
	wr, _ := s.store.Room(room)
	now := s.store.Now()
	if j.New {
		s.metrics.joined(room)
		s.cache.Observe(room, j.Serving, j.Ticket.Position)
	}
	if err := s.cookies.write(w, j.Ticket, wr, now); err != nil {
		s.fail(w, r, msgUnavailable, err)
		return
	}
	if err := s.writePerson(w, room, person{Ticket: j.Ticket.ID.String(), Subject: subject, Claims: who.Allowed(id.Claims)}, wr); err != nil {
		s.fail(w, r, msgUnavailable, err)
		return
	}
	http.Redirect(w, r, s.issuer+route.Wait(req.ID()), http.StatusSeeOther)
}

// maxPersonCookie keeps the person cookie, with the ticket cookie beside
// it, within what every browser stores for one cookie (4096 bytes).
const maxPersonCookie = 3800

func (s *Server) writePerson(w http.ResponseWriter, room string, p person, wr waitingroom.Room) error {
	plain, _ := json.Marshal(p)
	name := personCookieName(room)
	v := base64.RawURLEncoding.EncodeToString(s.upstreamKeys.person.Seal(plain, []byte(name)))
	if len(v) > maxPersonCookie {
		return errors.New("the allow-listed claims are too large for a cookie (rooms[].identity.claims)")
	}
	http.SetCookie(w, &http.Cookie{Name: name, Value: v, Path: s.cookies.path,
		MaxAge:   int((wr.MaxWait + wr.SessionTTL).Seconds()),
		HttpOnly: true, Secure: s.cookies.secure, SameSite: http.SameSiteLaxMode})
	return nil
}

func (s *Server) openState(v string) (upstreamState, error) {
	var st upstreamState
	raw, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return st, err
	}
	plain, err := s.upstreamKeys.state.Open(raw, []byte("state"))
	if err != nil {
		return st, err
	}
	err = json.Unmarshal(plain, &st)
	return st, err
}

// refusedToken proves that the room refused the person signing in for
// request id; the refusal page posts it.
func (s *Server) refusedToken(id string) string {
	at := strconv.FormatInt(s.store.Now().Unix(), 10)
	return base64.RawURLEncoding.EncodeToString(s.upstreamKeys.refused.Seal([]byte(at), []byte(id)))
}

// refusedBack serves POST /wait/{id}/refused: the refused person goes back
// to the relying party, which hears access_denied. No place was taken.
func (s *Server) refusedBack(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	raw, err := base64.RawURLEncoding.DecodeString(queryValue(r.URL.RawQuery, "t"))
	if err == nil {
		_, err = s.upstreamKeys.refused.Open(raw, []byte(id))
	}
	if err != nil || !sameOrigin(r) {
		s.fail(w, r, msgUnknown, nil)
		return
	}
	req, err := s.flow.Open(id)
	if err != nil {
		s.storeFailure(w, r, err)
		return
	}
	defer req.Close()
	pr, ok := req.(PersonRequest)
	if !ok {
		s.fail(w, r, msgUnknown, nil)
		return
	}
	pr.Refuse(w, r, "this queue is only for the people the site allows")
}

// finishFor answers req for admitted ticket t: as the person the browser's
// ticket belongs to in a room with an identity provider, else as Finish
// does. A browser of such a room without its person cookie is sent back to
// the waiting page, which has it sign in.
func (s *Server) finishFor(w http.ResponseWriter, r *http.Request, req AuthRequest, t waitingroom.Ticket) error {
	if _, ok := s.identities[t.Room]; !ok {
		return req.Finish(w, r, t)
	}
	p := s.personOf(r, t.Room, &t)
	pr, ok := req.(PersonRequest)
	if p == nil || !ok {
		http.Redirect(w, r, s.issuer+route.Wait(req.ID()), http.StatusSeeOther)
		return nil
	}
	if err := s.store.IdentityAdmitted(r.Context(), p.Subject, t); err != nil {
		return err
	}
	return pr.FinishAs(w, r, t, p.Subject, p.Claims)
}

// requeuePerson is requeue for a room with an identity provider: the
// person gives up their admission (for every browser of theirs) and takes
// a new place at the back. It reports false for other rooms.
func (s *Server) requeuePerson(w http.ResponseWriter, r *http.Request, req AuthRequest, room waitingroom.Room, have waitingroom.Ticket) bool {
	if _, ok := s.identities[room.ID]; !ok {
		return false
	}
	p := s.personOf(r, room.ID, &have)
	if p == nil {
		http.Redirect(w, r, s.issuer+route.Wait(req.ID()), http.StatusSeeOther)
		return true
	}
	if err := s.store.ForgetIdentity(r.Context(), room.ID, p.Subject, have.ID); err != nil {
		s.storeFailure(w, r, err)
		return true
	}
	j, err := s.store.JoinIdentity(r.Context(), room.ID, req.ID(), p.Subject,
		waitingroom.JoinFrom(limitKey(s.clientIPs.Of(r))), waitingroom.RequestCreatedAt(req.Created()))
	if err != nil {
		s.storeFailure(w, r, err)
		return true
	}
	if j.New {
		s.metrics.joined(room.ID)
		s.cache.Observe(room.ID, j.Serving, j.Ticket.Position)
	}
	p.Ticket = j.Ticket.ID.String()
	if err := s.cookies.write(w, j.Ticket, room, s.store.Now()); err != nil {
		s.fail(w, r, msgUnavailable, err)
		return true
	}
	if err := s.writePerson(w, room.ID, *p, room); err != nil {
		s.fail(w, r, msgUnavailable, err)
		return true
	}
	http.Redirect(w, r, s.issuer+route.Wait(req.ID()), http.StatusSeeOther)
	return true
}
