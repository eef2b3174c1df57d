package gate

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/oauth2"

	"github.com/anteroom/anteroom/config"
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
	// ClientID names the gate's built-in OIDC client for a room.
	ClientID func(room string) string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Registerer receives the gate's metrics (default: the Prometheus
	// default registerer).
	Registerer prometheus.Registerer
}

// Gate is the built-in relying party behind nginx's auth_request.
type Gate struct {
	o        Options
	rules    *Rules
	cookie   config.GateCookie
	secure   bool
	sessions *sessionCache
	flowPath string
	failOpen *prometheus.CounterVec
	decided  *prometheus.CounterVec
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
		o.Registerer = prometheus.DefaultRegisterer
	}
	u, err := url.Parse(o.Issuer)
	if err != nil {
		return nil, fmt.Errorf("gate: issuer: %w", err)
	}
	g := &Gate{
		o: o, rules: rules, cookie: o.Config.Cookie, secure: o.Config.Cookie.Secure == nil || *o.Config.Cookie.Secure,
		sessions: newSessionCache(100_000),
		flowPath: strings.TrimSuffix(u.Path, "/") + "/gate/",
		failOpen: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "anteroom_gate_fail_open_total",
			Help: "Protected requests let through without a session because the store was unreachable (rooms with on_error: fail_open).",
		}, []string{"room"}),
		decided: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "anteroom_gate_requests_total",
			Help: "Requests answered by /gate/auth, by outcome.",
		}, []string{"outcome"}),
	}
	g.failOpen = register(o.Registerer, g.failOpen)
	g.decided = register(o.Registerer, g.decided)
	return g, nil
}

// register registers c, or returns the collector already registered under
// its name (two gates in one process, as in tests, share the series).
func register(r prometheus.Registerer, c *prometheus.CounterVec) *prometheus.CounterVec {
	if err := r.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing
			}
		}
	}
	return c
}

// Register adds the gate's routes to mux.
func (g *Gate) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /gate/auth", g.auth)
	mux.HandleFunc("GET /gate/start", g.start)
	mux.HandleFunc("GET /gate/callback", g.callback)
}

// CookieName is the session cookie of a room: one per room, so a visitor
// who passed two rooms of one site keeps both sessions.
func (g *Gate) CookieName(room string) string { return g.cookie.Name + "_" + room }

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
// send it to the queue, 403 to refuse it. It reads no Redis: the session is
// a signed cookie, verified once and then remembered until it expires.
func (g *Gate) auth(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Original-URI")
	if target == "" {
		target = r.URL.Query().Get("uri")
	}
	d := g.rules.Decide(requestOf(r, target))
	switch d.Action {
	case ActionBypass:
		g.decided.WithLabelValues("bypass").Inc()
		w.WriteHeader(http.StatusNoContent)
		return
	case ActionBlock:
		g.decided.WithLabelValues("block").Inc()
		w.WriteHeader(http.StatusForbidden)
		return
	}
	if s, ok := g.session(r, d.Room); ok {
		g.decided.WithLabelValues("session").Inc()
		h := w.Header()
		h.Set("X-Anteroom-Sub", s.sub)
		h.Set("X-Anteroom-Room", s.room)
		h.Set("X-Anteroom-Position", strconv.FormatInt(s.position, 10))
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if g.o.Rooms[d.Room].FailOpen && g.o.Health != nil && g.o.Health.Err() != nil {
		g.failOpen.WithLabelValues(d.Room).Inc()
		g.decided.WithLabelValues("fail_open").Inc()
		slog.WarnContext(r.Context(), "gate failing open: store unreachable", "room", d.Room)
		w.Header().Set("X-Anteroom-Fail-Open", "1")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	g.decided.WithLabelValues("queue").Inc()
	w.WriteHeader(http.StatusUnauthorized)
}

// session returns the request's valid session for room.
func (g *Gate) session(r *http.Request, room string) (session, bool) {
	c, err := r.Cookie(g.CookieName(room))
	if err != nil || c.Value == "" {
		return session{}, false
	}
	now := g.o.Now()
	if s, ok := g.sessions.get(c.Value, now); ok && g.o.Keys.Published(s.kid) {
		return s, s.room == room
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
	s := session{sub: claims.Subject, room: claims.Room, position: claims.Position, exp: claims.Expiry.Time(), kid: kid}
	g.sessions.put(c.Value, s, now)
	return s, true
}

// flowState is what the gate remembers of a login in flight. It rides,
// sealed, in the OIDC state parameter, so it survives the room's whole max
// wait with nothing stored; binding ties it to the browser that started it.
type flowState struct {
	Room     string `json:"r"`
	Target   string `json:"t"`
	Verifier string `json:"v"`
	Nonce    string `json:"n"`
	Binding  string `json:"b"`
	Created  int64  `json:"c"`
}

var flowAD = []byte("anteroom gate flow")

const flowCookie = "anteroom_gate_flow"

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

// wantsJSON tells a script's request (XHR, fetch) from a navigation: a
// script cannot follow a redirect through a queue, so it gets 401 and the
// URL to send the page to.
func wantsJSON(r *http.Request) bool {
	if r.Header.Get("X-Requested-With") != "" {
		return true
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
			"start_url": g.o.Issuer + "/gate/start?rd=" + url.QueryEscape(target),
		})
		return
	}
	binding := rand.Text()
	if c, err := r.Cookie(flowCookie); err == nil && len(c.Value) >= 22 {
		binding = c.Value
	}
	// Set on every start: the cookie must outlive this login's whole wait,
	// which may be longer than the one it was first set for.
	room := g.o.Rooms[d.Room]
	now := g.o.Now()
	http.SetCookie(w, &http.Cookie{Name: flowCookie, Value: binding, Path: g.flowPath,
		MaxAge: int(room.waitUntil(now).Sub(now).Seconds()), HttpOnly: true, Secure: g.secure, SameSite: http.SameSiteLaxMode})
	f := flowState{Room: d.Room, Target: target, Verifier: oauth2.GenerateVerifier(), Nonce: rand.Text(),
		Binding: digest(binding), Created: g.o.Now().Unix()}
	raw, _ := json.Marshal(f)
	state := base64.RawURLEncoding.EncodeToString(g.o.Box.Seal(raw, flowAD))
	q := url.Values{
		"client_id":             {g.o.ClientID(d.Room)},
		"redirect_uri":          {g.o.Issuer + "/gate/callback"},
		"response_type":         {"code"},
		"scope":                 {"openid"},
		"state":                 {state},
		"nonce":                 {f.Nonce},
		"code_challenge":        {oauth2.S256ChallengeFromVerifier(f.Verifier)},
		"code_challenge_method": {"S256"},
	}
	http.Redirect(w, r, g.o.Issuer+"/authorize?"+q.Encode(), http.StatusFound)
}

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// idClaims is what the gate reads from its own ID token.
type idClaims struct {
	jwt.Claims
	Nonce      string `json:"nonce"`
	Room       string `json:"room"`
	Position   int64  `json:"queue_position"`
	AdmittedAt int64  `json:"admitted_at"`
}

// callback finishes a login: it redeems the code in-process, verifies the
// ID token, sets the room's session cookie and returns to the original URL.
func (g *Gate) callback(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	q := r.URL.Query()
	f, err := g.openFlow(r, q.Get("state"))
	if err != nil {
		g.page(w, http.StatusBadRequest, "Please start again", "This link has expired or belongs to another browser. Go back to the site and try again.")
		return
	}
	if e := q.Get("error"); e != "" {
		slog.InfoContext(r.Context(), "gate login refused", "room", f.Room, "error", e)
		g.page(w, http.StatusForbidden, "You could not be let in", "The waiting room did not let this visit through. Go back to the site and try again.")
		return
	}
	clientID := g.o.ClientID(f.Room)
	idToken, err := g.o.Exchanger.ExchangeCode(r.Context(), clientID, q.Get("code"), f.Verifier, g.o.Issuer+"/gate/callback")
	if err != nil {
		slog.WarnContext(r.Context(), "gate code exchange failed", "room", f.Room, "err", err)
		if errors.Is(err, ErrUnavailable) {
			w.Header().Set("Retry-After", "5")
			g.page(w, http.StatusServiceUnavailable, "We are having trouble right now", "Your place in the queue is safe. Reload this page in a few seconds.")
			return
		}
		g.page(w, http.StatusBadRequest, "Please start again", "This visit could not be completed. Go back to the site and try again.")
		return
	}
	var c idClaims
	now := g.o.Now()
	if _, err := verifyJWT(idToken, g.o.Keys.Verification(), &c); err != nil ||
		c.ValidateWithLeeway(jwt.Expected{Issuer: g.o.Issuer, AnyAudience: jwt.Audience{clientID}, Time: now}, time.Minute) != nil ||
		c.Nonce != f.Nonce || c.Room != f.Room || c.Subject == "" {
		slog.WarnContext(r.Context(), "gate ID token rejected", "room", f.Room)
		g.page(w, http.StatusBadRequest, "Please start again", "This visit could not be completed. Go back to the site and try again.")
		return
	}
	room := g.o.Rooms[f.Room]
	// The session ends when the visitor's queue session ends: tokens,
	// downstream checks and this cookie all agree.
	exp := time.Unix(c.AdmittedAt, 0).Add(room.SessionTTL)
	if !exp.After(now) {
		g.page(w, http.StatusForbidden, "Your visit has ended", "Go back to the site to queue again.")
		return
	}
	token, err := signedWith(g.o.Keys.Signing(), sessionClaims{
		Claims: jwt.Claims{Issuer: g.o.Issuer, Subject: c.Subject, Audience: jwt.Audience{Audience},
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

// ErrUnavailable is what an Exchanger's error wraps when the store is
// unreachable (the visitor should retry, not start again).
var ErrUnavailable = errors.New("temporarily unavailable")

func (g *Gate) openFlow(r *http.Request, state string) (flowState, error) {
	var f flowState
	raw, err := base64.RawURLEncoding.DecodeString(state)
	if err != nil {
		return f, errToken
	}
	b, err := g.o.Box.Open(raw, flowAD)
	if err != nil || json.Unmarshal(b, &f) != nil {
		return f, errToken
	}
	c, err := r.Cookie(flowCookie)
	if err != nil || digest(c.Value) != f.Binding {
		return f, errToken
	}
	room, ok := g.o.Rooms[f.Room]
	if !ok || !g.o.Now().Before(room.waitUntil(time.Unix(f.Created, 0))) {
		return f, errToken
	}
	if _, ok := sameSiteTarget(f.Target); !ok {
		return f, errToken
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
