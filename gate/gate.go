package gate

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/oauth2"

	"github.com/anteroom/anteroom/config"
	"github.com/anteroom/anteroom/internal/route"
	"github.com/anteroom/anteroom/keys"
	"github.com/anteroom/anteroom/waitingroom"
)

// Exchanger redeems an authorization code of the gate's own clients
// in-process: through the provider's token endpoint handler, never through
// the public URL, which would loop back through nginx.
type Exchanger interface {
	ExchangeCode(ctx context.Context, clientID, code, verifier, redirectURI string) (idToken string, err error)
}

// Health reports whether the queue's store answers; a process-local view
// (the counter cache's last refresh), so asking costs no round trip.
type Health interface {
	Err() error
}

// Tickets reads the waiting room's ticket cookie of a request: the callback
// accepts a login only in the browser that holds the ticket it admitted.
type Tickets interface {
	// TicketID returns the id of the request's ticket for room, from its
	// cookie alone (no Redis), and false when it carries none.
	TicketID(r *http.Request, room string) (string, bool)
}

// Sessions tells how an admitted ticket's session stands in the store,
// which ending it early (end_session of any client) changes.
type Sessions interface {
	// SessionEnd returns when the ticket's session ends or ended, and
	// false when the store holds no admission for it.
	SessionEnd(ctx context.Context, room string, id waitingroom.TicketID) (time.Time, bool, error)
}

// SessionRecheck is how often, at most, /gate/auth asks the store whether
// a session it has verified is still live, per session and instance: a
// session ended early (end_session, which frees its max_active slot) stops
// passing within this long, and every other check is answered from memory.
const SessionRecheck = 10 * time.Second

// sessionCheckTimeout bounds a session's recheck in the store.
const sessionCheckTimeout = 500 * time.Millisecond

// Room is what the gate needs to know of a room: the queue's room, whose
// session TTL, max wait and opening bound a gate login and its session.
type Room struct {
	waitingroom.Room
	// FailOpen lets visitors without a session through while the store is
	// unreachable, instead of sending them to a queue that cannot work.
	FailOpen bool
}

// waitUntil is when a login started at t stops being allowed to wait.
func (r Room) waitUntil(t time.Time) time.Time { return r.WaitStart(t).Add(r.MaxWait) }

// Options wires a Gate.
type Options struct {
	// Issuer is Anteroom's issuer, under the protected site's own host
	// (https://shop.example.com/_anteroom) so the cookies are first-party.
	Issuer    string
	Config    *config.Gate
	Rooms     map[string]Room
	Keys      *keys.Manager
	Box       *keys.Box
	Exchanger Exchanger
	Health    Health
	// Tickets binds a login to the browser that waited for it (nil: the
	// callback refuses every login).
	Tickets Tickets
	// Sessions is asked, every SessionRecheck at most, whether a
	// verified session is still live (nil: sessions last until their exp).
	Sessions Sessions
	// ClientID names the gate's built-in OIDC client for a room.
	ClientID func(room string) string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Registerer receives the gate's metrics: the instance's registry
	// (nil: a registry of their own, which nothing serves).
	Registerer prometheus.Registerer
}

// Gate is the built-in relying party behind nginx's auth_request.
type Gate struct {
	o        Options
	rules    *Rules
	cookie   config.GateCookie
	secure   bool
	sessions *sessionCache
	failOpen *prometheus.CounterVec
	decided  *prometheus.CounterVec
	checks   *prometheus.CounterVec
	refused  *prometheus.CounterVec
	// outcome holds decided's series, resolved once: resolving label
	// values hashes them, on every request of the hottest path.
	outcome struct{ bypass, block, session, failOpen, queue prometheus.Counter }
	// cookieNames is CookieName of every room, built once.
	cookieNames map[string]string
}

// New compiles the rules and checks the options.
func New(o Options) (*Gate, error) {
	if o.Config == nil {
		return nil, errors.New("gate: no configuration")
	}
	rules, err := Compile(o.Config)
	if err != nil {
		return nil, err
	}
	for _, r := range o.Config.Rules {
		if r.Room != "" {
			if _, ok := o.Rooms[r.Room]; !ok {
				return nil, fmt.Errorf("gate: unknown room %q", r.Room)
			}
		}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	if _, err := url.Parse(o.Issuer); err != nil {
		return nil, fmt.Errorf("gate: issuer: %w", err)
	}
	g := &Gate{
		o: o, rules: rules, cookie: o.Config.Cookie, secure: o.Config.Cookie.Secure == nil || *o.Config.Cookie.Secure,
		sessions: newSessionCache(100_000),
		failOpen: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "anteroom_gate_fail_open_total",
			Help: "Protected requests let through without a session because the store was unreachable (rooms with on_error: fail_open).",
		}, []string{"room"}),
		decided: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "anteroom_gate_requests_total",
			Help: "Requests answered by /gate/auth, by outcome.",
		}, []string{"outcome"}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "anteroom_gate_session_checks_total",
			Help: "Verified gate sessions rechecked in the store (at most once per session and instance every 10 s), by outcome: live, ended, unknown (no admission record) or error.",
		}, []string{"outcome"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "anteroom_gate_callbacks_refused_total",
			Help: "Gate logins refused at /gate/callback, by reason.",
		}, []string{"reason"}),
	}
	for _, c := range []prometheus.Collector{g.failOpen, g.decided, g.checks, g.refused} {
		if err := o.Registerer.Register(c); err != nil {
			return nil, fmt.Errorf("gate: register metrics: %w", err)
		}
	}
	g.outcome.bypass = g.decided.WithLabelValues("bypass")
	g.outcome.block = g.decided.WithLabelValues("block")
	g.outcome.session = g.decided.WithLabelValues("session")
	g.outcome.failOpen = g.decided.WithLabelValues("fail_open")
	g.outcome.queue = g.decided.WithLabelValues("queue")
	g.cookieNames = make(map[string]string, len(o.Rooms))
	for id := range o.Rooms {
		g.cookieNames[id] = g.cookie.Name + "_" + id
	}
	return g, nil
}

// Register adds the gate's routes to mux.
func (g *Gate) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+route.GateAuth, g.auth)
	mux.HandleFunc("GET "+route.GateStart, g.start)
	mux.HandleFunc("GET "+route.GateCallback, g.callback)
}

// CookieName is the session cookie of a room: one per room, so a visitor
// who passed two rooms of one site keeps both sessions.
func (g *Gate) CookieName(room string) string {
	if name, ok := g.cookieNames[room]; ok {
		return name
	}
	return g.cookie.Name + "_" + room
}

// requestOf builds the rule matcher's view of the request nginx asks about.
func requestOf(r *http.Request, target string) Request {
	method := r.Header.Get("X-Original-Method")
	if method == "" {
		method = http.MethodGet
	}
	return Request{
		Host: r.Host, Method: method, Path: target, UserAgent: r.UserAgent(),
		Header: r.Header.Get,
		Cookie: func(name string) (string, bool) {
			c, err := r.Cookie(name)
			if err != nil {
				return "", false
			}
			return c.Value, true
		},
	}
}

// auth answers nginx's auth_request: 204 to let the request through, 401 to
// send it to the queue, 403 to refuse it. Its hot path reads no Redis: the
// session is a signed cookie, verified once and then remembered until it
// expires; only when an instance first sees a session, and then at most
// once per SessionRecheck, does it ask the store whether the session was
// ended early.
func (g *Gate) auth(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Original-URI")
	if target == "" {
		target = r.URL.Query().Get("uri")
	}
	d := g.rules.Decide(requestOf(r, target))
	switch d.Action {
	case ActionBypass:
		g.outcome.bypass.Inc()
		w.WriteHeader(http.StatusNoContent)
		return
	case ActionBlock:
		g.outcome.block.Inc()
		w.WriteHeader(http.StatusForbidden)
		return
	}
	if s, ok := g.session(r, d.Room); ok {
		g.outcome.session.Inc()
		// Assigned, not Set: the values are the session's, shared (see
		// session.headers).
		h := w.Header()
		h["X-Anteroom-Sub"] = s.headers[0]
		h["X-Anteroom-Room"] = s.headers[1]
		h["X-Anteroom-Position"] = s.headers[2]
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if g.o.Rooms[d.Room].FailOpen && g.o.Health != nil && g.o.Health.Err() != nil {
		g.failOpen.WithLabelValues(d.Room).Inc()
		g.outcome.failOpen.Inc()
		slog.WarnContext(r.Context(), "gate failing open: store unreachable", "room", d.Room)
		w.Header().Set("X-Anteroom-Fail-Open", "1")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	g.outcome.queue.Inc()
	w.WriteHeader(http.StatusUnauthorized)
}

// session returns the request's valid session for room. A session found
// in the cache is answered from memory, except once every SessionRecheck,
// when the store says whether it was ended early; a session verified
// afresh is checked in the store before it is remembered.
func (g *Gate) session(r *http.Request, room string) (session, bool) {
	c, err := r.Cookie(g.CookieName(room))
	if err != nil || c.Value == "" {
		return session{}, false
	}
	now := g.o.Now()
	k := sessionKey(c.Value)
	if s, ok := g.sessions.get(k, now); ok && g.o.Keys.Published(s.kid) {
		if s.room != room || s.ended {
			return session{}, false
		}
		// The read lock's copy says whether a check may be due; only
		// then is the write lock taken to claim it (claimCheck looks
		// again), so the answers in between share the cache.
		if now.Sub(s.checked) >= SessionRecheck && g.sessions.claimCheck(k, now, SessionRecheck) && !g.live(r.Context(), s, now) {
			g.sessions.end(k)
			return session{}, false
		}
		return s, true
	}
	var claims sessionClaims
	kid, err := verifyJWT(c.Value, g.o.Keys.Verification(), &claims)
	if err != nil {
		return session{}, false
	}
	// A minute of leeway for iat and nbf (instances' clocks differ), none
	// for exp: a session never outlives the visitor's.
	err = claims.ValidateWithLeeway(jwt.Expected{Issuer: g.o.Issuer, AnyAudience: jwt.Audience{Audience}, Time: now}, time.Minute)
	if err != nil || claims.Expiry == nil || !now.Before(claims.Expiry.Time()) || claims.Room != room || claims.Subject == "" {
		return session{}, false
	}
	s := session{sub: claims.Subject, room: claims.Room, position: claims.Position, exp: claims.Expiry.Time(), kid: kid, checked: now}
	s.headers = sessionHeaders(s)
	// Remembered ended too, so that an ended session costs no signature
	// check and no store read until its entry goes.
	s.ended = !g.live(r.Context(), s, now)
	g.sessions.put(k, s, now)
	return s, !s.ended
}

// live asks the store whether session s is still live. Anything but a
// definite "ended" keeps it: a session whose record the store lost (it
// restarted empty) holds no slot there either, and while the store is
// unreachable a signed session stands until its exp, as the queue's own
// cookies do.
func (g *Gate) live(ctx context.Context, s session, now time.Time) bool {
	if g.o.Sessions == nil {
		return true
	}
	id, err := waitingroom.ParseTicketID(s.sub)
	if err != nil {
		// Signed by Anteroom, so never in practice; nothing to look up.
		g.checks.WithLabelValues("unknown").Inc()
		return true
	}
	// A check holds one request of the session; a slow store must not
	// hold it long (a failed check keeps the session, see above).
	cctx, cancel := context.WithTimeout(ctx, sessionCheckTimeout)
	defer cancel()
	ends, ok, err := g.o.Sessions.SessionEnd(cctx, s.room, id)
	switch {
	case err != nil:
		g.checks.WithLabelValues("error").Inc()
		return true
	case !ok:
		g.checks.WithLabelValues("unknown").Inc()
		return true
	case !now.Before(ends):
		g.checks.WithLabelValues("ended").Inc()
		slog.InfoContext(ctx, "gate session ended early: sent back to the queue", "room", s.room)
		return false
	}
	g.checks.WithLabelValues("live").Inc()
	return true
}

// flowState is what the gate remembers of a login in flight. It rides,
// sealed, in the OIDC state parameter, so it survives the room's whole max
// wait with nothing stored, and any number of them can be in flight from
// one browser at once (a page, its favicon, a second tab, a reload).
//
// It is tied to the browser by the waiting room's ticket, not by a cookie
// of its own: the callback accepts a login only where the browser's ticket
// cookie names the ticket the ID token was issued for (RFC 6749 §10.12,
// OIDC Core 3.1.2.7: the response must belong to this user agent). A
// cookie of the gate's own, written by every start, could not serve: nginx
// runs /gate/start inside the request for whatever URL was refused
// (/favicon.ico, another page), to which a browser sends no cookie scoped
// to the gate's path, so each start replaced the one before and spoilt
// the login of the tab that was waiting.
type flowState struct {
	Room     string `json:"r"`
	Target   string `json:"t"`
	Verifier string `json:"v"`
	Nonce    string `json:"n"`
	Created  int64  `json:"c"`
}

var flowAD = []byte("anteroom gate flow")

// sameSiteTarget accepts only a path on this site: a return address that
// could point elsewhere would make the gate an open redirect.
func sameSiteTarget(rd string) (string, bool) {
	if rd == "" || rd[0] != '/' || strings.HasPrefix(rd, "//") || strings.HasPrefix(rd, "/\\") || len(rd) > 4096 {
		return "", false
	}
	for i := 0; i < len(rd); i++ {
		if rd[i] < 0x20 || rd[i] == 0x7f || rd[i] == '\\' {
			return "", false
		}
	}
	return rd, true
}

// wantsJSON tells a script's request (XHR, fetch) or a subresource (the
// browser's own /favicon.ico, an image) from a navigation: neither can
// follow a redirect through a queue, so they get 401 and the URL to send
// the page to, and no login is started for them. Fetch Metadata's
// Sec-Fetch-Mode, where the browser sends it, says which it is; without
// it, the Accept and X-Requested-With headers do. Before, every favicon
// request of a waiting browser started a login of its own, spending the
// ticket's limits.logins_per_ticket.
func wantsJSON(r *http.Request) bool {
	if r.Header.Get("X-Requested-With") != "" {
		return true
	}
	if mode := r.Header.Get("Sec-Fetch-Mode"); mode != "" {
		return mode != "navigate"
	}
	accept := r.Header.Get("Accept")
	return strings.Contains(accept, "json") && !strings.Contains(accept, "text/html")
}

// start begins a login through the room that protects the original URL.
func (g *Gate) start(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	rd := r.Header.Get("X-Original-URI")
	if rd == "" {
		rd = r.URL.Query().Get("rd")
	}
	target, ok := sameSiteTarget(rd)
	if !ok {
		g.page(w, http.StatusBadRequest, "This link does not work", "The address to return to is not on this site.")
		return
	}
	d := g.rules.Decide(requestOf(r, target))
	switch d.Action {
	case ActionBypass:
		http.Redirect(w, r, target, http.StatusFound)
		return
	case ActionBlock:
		g.page(w, http.StatusForbidden, "Not available", "This page is not available.")
		return
	}
	if wantsJSON(r) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]string{
			"error":     "queue",
			"start_url": g.o.Issuer + route.GateStart + "?rd=" + url.QueryEscape(target),
		})
		return
	}
	f := flowState{Room: d.Room, Target: target, Verifier: oauth2.GenerateVerifier(), Nonce: rand.Text(),
		Created: g.o.Now().Unix()}
	raw, _ := json.Marshal(f)
	state := base64.RawURLEncoding.EncodeToString(g.o.Box.Seal(raw, flowAD))
	q := url.Values{
		"client_id":             {g.o.ClientID(d.Room)},
		"redirect_uri":          {g.o.Issuer + route.GateCallback},
		"response_type":         {"code"},
		"scope":                 {"openid"},
		"state":                 {state},
		"nonce":                 {f.Nonce},
		"code_challenge":        {oauth2.S256ChallengeFromVerifier(f.Verifier)},
		"code_challenge_method": {"S256"},
	}
	http.Redirect(w, r, g.o.Issuer+route.Authorize+"?"+q.Encode(), http.StatusFound)
}

// idClaims is what the gate reads from its own ID token.
type idClaims struct {
	jwt.Claims
	Nonce      string `json:"nonce"`
	Room       string `json:"room"`
	Position   int64  `json:"queue_position"`
	AdmittedAt int64  `json:"admitted_at"`
	// SessionID is the ticket when sub names a person (a room with an
	// identity provider); empty when sub is the ticket.
	SessionID string `json:"sid"`
}

// ticket is the id of the ticket the login admitted.
func (c idClaims) ticket() string {
	if c.SessionID != "" {
		return c.SessionID
	}
	return c.Subject
}

// callback finishes a login: it redeems the code in-process, verifies the
// ID token, checks that this browser holds the ticket it was issued for,
// sets the room's session cookie and returns to the original URL. Every
// refusal is logged with its reason (never the state, code or tokens).
func (g *Gate) callback(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	q := r.URL.Query()
	f, err := g.openFlow(q.Get("state"))
	if err != nil {
		g.refuse(r, "", reasonOf(err), slog.LevelInfo)
		g.page(w, http.StatusBadRequest, "Please start again", "This link has expired or is not valid. Go back to the site and try again.")
		return
	}
	if e := q.Get("error"); e != "" {
		g.refuse(r, f.Room, "provider answered with an error", slog.LevelInfo, "error", errorCode(e))
		g.page(w, http.StatusForbidden, "You could not be let in", "The waiting room did not let this visit through. Go back to the site and try again.")
		return
	}
	// A browser without a ticket for the room never waited for this
	// login: refused before its code is redeemed.
	ticket, ok := "", false
	if g.o.Tickets != nil {
		ticket, ok = g.o.Tickets.TicketID(r, f.Room)
	}
	if !ok {
		g.refuse(r, f.Room, "no ticket for the room in this browser", slog.LevelInfo)
		g.page(w, http.StatusBadRequest, "Please start again", "This link belongs to another browser. Go back to the site and try again.")
		return
	}
	clientID := g.o.ClientID(f.Room)
	idToken, err := g.o.Exchanger.ExchangeCode(r.Context(), clientID, q.Get("code"), f.Verifier, g.o.Issuer+route.GateCallback)
	if err != nil {
		if errors.Is(err, ErrUnavailable) {
			g.refuse(r, f.Room, "store unavailable for the code exchange", slog.LevelWarn)
			w.Header().Set("Retry-After", "5")
			g.page(w, http.StatusServiceUnavailable, "We are having trouble right now", "Your place in the queue is safe. Reload this page in a few seconds.")
			return
		}
		g.refuse(r, f.Room, "code exchange failed", slog.LevelWarn, "err", err)
		g.page(w, http.StatusBadRequest, "Please start again", "This visit could not be completed. Go back to the site and try again.")
		return
	}
	var c idClaims
	now := g.o.Now()
	if _, err := verifyJWT(idToken, g.o.Keys.Verification(), &c); err != nil ||
		c.ValidateWithLeeway(jwt.Expected{Issuer: g.o.Issuer, AnyAudience: jwt.Audience{clientID}, Time: now}, time.Minute) != nil ||
		c.Nonce != f.Nonce || c.Room != f.Room || c.Subject == "" {
		g.refuse(r, f.Room, "ID token rejected", slog.LevelWarn)
		g.page(w, http.StatusBadRequest, "Please start again", "This visit could not be completed. Go back to the site and try again.")
		return
	}
	if c.ticket() != ticket {
		// Another browser's login (a callback URL passed on, or login
		// CSRF): its code is spent, and nobody gets its session here.
		g.refuse(r, f.Room, "login admitted another browser's ticket", slog.LevelWarn)
		g.page(w, http.StatusBadRequest, "Please start again", "This link belongs to another browser. Go back to the site and try again.")
		return
	}
	room := g.o.Rooms[f.Room]
	// The session ends when the visitor's queue session ends: tokens,
	// downstream checks and this cookie all agree.
	exp := time.Unix(c.AdmittedAt, 0).Add(room.SessionTTL)
	if !exp.After(now) {
		g.refuse(r, f.Room, "session over", slog.LevelInfo)
		g.page(w, http.StatusForbidden, "Your visit has ended", "Go back to the site to queue again.")
		return
	}
	token, err := signedWith(g.o.Keys.Signing(), sessionClaims{
		Claims: jwt.Claims{Issuer: g.o.Issuer, Subject: c.ticket(), Audience: jwt.Audience{Audience},
			Expiry: jwt.NewNumericDate(exp), IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now.Add(-time.Minute))},
		Room: f.Room, Position: c.Position,
	})
	if err != nil {
		slog.ErrorContext(r.Context(), "sign gate session", "err", err)
		g.page(w, http.StatusInternalServerError, "Something went wrong", "Go back to the site and try again.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: g.CookieName(f.Room), Value: token, Path: g.cookie.Path, Domain: g.cookie.Domain,
		Expires: exp, MaxAge: int(exp.Sub(now).Seconds()), HttpOnly: true, Secure: g.secure, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, f.Target, http.StatusFound)
}

// refuse logs and counts a refused callback. reason is one of a few fixed
// phrases (it labels a metric); args never carry the state, code or tokens.
func (g *Gate) refuse(r *http.Request, room, reason string, level slog.Level, args ...any) {
	g.refused.WithLabelValues(reason).Inc()
	slog.Log(r.Context(), level, "gate callback refused", append([]any{"reason", reason, "room", room}, args...)...)
}

// errorCode keeps an error parameter fit for the log: the provider's codes
// are short lowercase words; anything else is someone's crafted URL.
func errorCode(e string) string {
	if len(e) > 40 || strings.IndexFunc(e, func(c rune) bool { return (c < 'a' || c > 'z') && c != '_' }) >= 0 {
		return "an unknown error"
	}
	return e
}

// ErrUnavailable is what an Exchanger's error wraps when the store is
// unreachable (the visitor should retry, not start again).
var ErrUnavailable = errors.New("temporarily unavailable")

// Reasons openFlow refuses a state for.
var (
	errStateSeal   = errors.New("state not sealed by this deployment")
	errStateRoom   = errors.New("state names an unknown room")
	errStateOld    = errors.New("login older than the room's max wait")
	errStateTarget = errors.New("return address not on this site")
)

func reasonOf(err error) string { return err.Error() }

// openFlow opens a state the gate sealed. It reads no cookie: a state is
// good in any browser, and the ticket decides whose login it is.
func (g *Gate) openFlow(state string) (flowState, error) {
	var f flowState
	raw, err := base64.RawURLEncoding.DecodeString(state)
	if err != nil {
		return f, errStateSeal
	}
	b, err := g.o.Box.Open(raw, flowAD)
	if err != nil || json.Unmarshal(b, &f) != nil {
		return f, errStateSeal
	}
	room, ok := g.o.Rooms[f.Room]
	if !ok {
		return f, errStateRoom
	}
	if !g.o.Now().Before(room.waitUntil(time.Unix(f.Created, 0))) {
		return f, errStateOld
	}
	if _, ok := sameSiteTarget(f.Target); !ok {
		return f, errStateTarget
	}
	return f, nil
}

var pageTemplate = template.Must(template.New("gate").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title><link rel="stylesheet" href="{{.Static}}/style.css"></head>
<body><main class="card" role="alert"><p class="eyebrow">Waiting room</p><h1>{{.Title}}</h1><p>{{.Text}}</p><p class="back"><a href="/">Back to the site</a></p></main></body></html>`))

func (g *Gate) page(w http.ResponseWriter, status int, title, text string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = pageTemplate.Execute(w, map[string]string{"Title": title, "Text": text, "Static": g.o.Issuer + "/static"})
}
