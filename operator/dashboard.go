package operator

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/anteroom/anteroom/keys"
)

// The operator dashboard at /admin/ is a page of static HTML, CSS and
// JavaScript that calls the admin API with fetch. Signing in with the admin
// token sets a cookie that the admin API accepts beside the bearer token.
//
// Cross-site request forgery: the cookie is SameSite=Strict, so another
// site's page cannot make the browser send it at all; a page of another
// origin of the same site can. So every change the cookie authorises (and
// signing in and out) must pass net/http's CrossOriginProtection: the
// browser's Sec-Fetch-Site must say same-origin (or none: typed by the
// user), or, from a browser that sends no Sec-Fetch-Site, its Origin must
// be the request's host (or the issuer's, through a proxy that rewrites
// Host). A request with neither header is no browser's cross-origin
// request: the check lets it through, and SameSite keeps the cookie from
// the oldest browsers' cross-site ones. Reads need no check: another
// origin can make the browser send them but not read the answer.

const (
	// adminCookieName is the dashboard's session cookie. A ticket cookie
	// of a room called "admin" has the same name but Path=/: both reach
	// /admin/, so every cookie of this name is tried.
	adminCookieName = "anteroom_admin"
	// adminSessionTTL is how long a dashboard sign-in lasts.
	adminSessionTTL = 12 * time.Hour
)

// adminSessions issues and checks the dashboard's cookie. Its value names
// the admin token signed in with, an expiry and an HMAC-SHA256 over both,
// keyed by a key derived from the cookie secrets and bound to that token's
// digest: the token itself never leaves the login form, a stolen cookie
// does not help guess the token offline, and changing a token (or
// retiring every secret) signs its dashboards out. The first secret
// signs, all verify, as with tickets.
type adminSessions struct {
	keys   [][]byte
	tokens []*principal
	secure bool
	path   string
}

// newAdminSessions is the sessions of the one operator token token (tests
// and admin.token alone).
func newAdminSessions(secrets [][]byte, token string, secure bool, path string) *adminSessions {
	return newAdminSessionsFor(secrets, principals([]Token{{Name: "admin", Token: token, Role: RoleOperator}}), secure, path)
}

func newAdminSessionsFor(secrets [][]byte, tokens []*principal, secure bool, path string) *adminSessions {
	a := &adminSessions{tokens: tokens, secure: secure, path: path}
	for _, s := range secrets {
		a.keys = append(a.keys, keys.DeriveKey(s, "admin session cookie", 32))
	}
	return a
}

// tokenMatches compares a submitted token with the admin tokens in
// constant time (of the digests, so the length leaks nothing either).
func (a *adminSessions) tokenMatches(token string) bool { return matchToken(a.tokens, token) != nil }

func (a *adminSessions) mac(key []byte, p *principal, payload string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(p.digest[:])
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// value returns a cookie value for p valid until expires.
func (a *adminSessions) value(p *principal, expires time.Time) string {
	payload := "v2." + strconv.FormatInt(expires.Unix(), 10) + "." + p.name
	return payload + "." + base64.RawURLEncoding.EncodeToString(a.mac(a.keys[0], p, payload))
}

// valid returns the principal of v, a value of ours that has not expired
// at now; nil otherwise.
func (a *adminSessions) valid(v string, now time.Time) *principal {
	i := strings.LastIndexByte(v, '.')
	if i < 0 {
		return nil
	}
	payload, tag := v[:i], v[i+1:]
	sum, err := base64.RawURLEncoding.DecodeString(tag)
	if err != nil {
		return nil
	}
	rest, found := strings.CutPrefix(payload, "v2.")
	if !found {
		return nil
	}
	exp, name, found := strings.Cut(rest, ".")
	if !found {
		return nil
	}
	var p *principal
	for _, t := range a.tokens {
		if t.name == name {
			p = t
		}
	}
	if p == nil {
		return nil
	}
	ok := false
	for _, k := range a.keys {
		ok = hmac.Equal(sum, a.mac(k, p, payload)) || ok
	}
	if !ok {
		return nil
	}
	unix, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || !now.Before(time.Unix(unix, 0)) {
		return nil
	}
	return p
}

// signedIn returns the principal of r's session cookie at now, nil when
// it carries no valid one.
func (a *adminSessions) signedIn(r *http.Request, now time.Time) *principal {
	for _, c := range r.CookiesNamed(adminCookieName) {
		if p := a.valid(c.Value, now); p != nil {
			return p
		}
	}
	return nil
}

// present reports whether r carries a cookie of the session's name at all.
func (a *adminSessions) present(r *http.Request) bool {
	return len(r.CookiesNamed(adminCookieName)) > 0
}

func (a *adminSessions) set(w http.ResponseWriter, p *principal, now time.Time) {
	http.SetCookie(w, &http.Cookie{Name: adminCookieName, Value: a.value(p, now.Add(adminSessionTTL)), Path: a.path,
		MaxAge: int(adminSessionTTL.Seconds()), HttpOnly: true, Secure: a.secure, SameSite: http.SameSiteStrictMode})
}

func (a *adminSessions) clear(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: adminCookieName, Value: "", Path: a.path, MaxAge: -1,
		HttpOnly: true, Secure: a.secure, SameSite: http.SameSiteStrictMode})
}

// registerDashboard adds the dashboard's pages and its history API.
func (s *Server) registerDashboard(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin/{$}", s.dashboard)
	mux.HandleFunc("GET /admin", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, s.opsBase+"/admin/", http.StatusMovedPermanently)
	})
	mux.HandleFunc("POST /admin/login", s.adminLogin)
	mux.HandleFunc("POST /admin/logout", s.adminLogout)
	// Two files by name, not /static/: beside the visitor's routes those
	// are web's (and web.dir's), which cannot replace the dashboard's.
	files := cacheFor(time.Hour, http.FileServerFS(s.static))
	for _, name := range []string{"dashboard.css", "dashboard.js"} {
		mux.Handle("GET /static/"+name, http.StripPrefix("/static/", files))
	}
}

func cacheFor(d time.Duration, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(d.Seconds())))
		h.ServeHTTP(w, r)
	})
}

// dashboardPage is what dashboard.html and login.html render.
type dashboardPage struct {
	StaticURL string
	APIURL    string
	LoginURL  string
	LogoutURL string
	Error     string
	// Who is the name of the token signed in with; CanChange is false for
	// a viewer, whose page offers no changes.
	Who       string
	CanChange bool
}

func (s *Server) dashboardPage(errText string) dashboardPage {
	return dashboardPage{StaticURL: s.opsBase + "/static", APIURL: s.opsBase + "/admin/v1",
		LoginURL: s.opsBase + "/admin/login", LogoutURL: s.opsBase + "/admin/logout", Error: errText}
}

// dashboard serves GET /admin/: the dashboard with a valid session cookie,
// else the sign-in form.
func (s *Server) dashboard(w http.ResponseWriter, r *http.Request) {
	if s.admins == nil {
		s.render(w, http.StatusNotFound, "disabled.html", s.dashboardPage(""))
		return
	}
	if p := s.admins.signedIn(r, s.store.Now()); p != nil {
		page := s.dashboardPage("")
		page.Who, page.CanChange = p.name, p.role == RoleOperator
		s.render(w, http.StatusOK, "dashboard.html", page)
		return
	}
	text := ""
	if s.admins.present(r) {
		text = "Your session has ended. Sign in again."
	}
	s.render(w, http.StatusOK, "login.html", s.dashboardPage(text))
}

// adminLogin serves POST /admin/login: the right token sets the session
// cookie and goes to the dashboard; a wrong one shows the form again.
func (s *Server) adminLogin(w http.ResponseWriter, r *http.Request) {
	if s.admins == nil {
		s.render(w, http.StatusNotFound, "disabled.html", s.dashboardPage(""))
		return
	}
	if s.crossOrigin.Check(r) != nil {
		s.render(w, http.StatusForbidden, "login.html", s.dashboardPage("Sign in from this site's own page."))
		return
	}
	// Throttled before the token is read: a guess beyond the bucket is not
	// even compared (see signInThrottle).
	now := s.store.Now()
	client := maskClient(s.clientIP(r))
	if retry := s.signIns.take(client, now); retry > 0 {
		secs := max(1, int(math.Ceil(retry.Seconds())))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		s.render(w, http.StatusTooManyRequests, "login.html",
			s.dashboardPage(fmt.Sprintf("Too many failed sign-ins. Try again in %d seconds.", secs)))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	var p *principal
	if err := r.ParseForm(); err == nil {
		p = matchToken(s.admins.tokens, r.PostForm.Get("token"))
	}
	if p == nil {
		slog.WarnContext(r.Context(), "dashboard sign-in refused", "remote", r.RemoteAddr, "client", client)
		s.render(w, http.StatusUnauthorized, "login.html", s.dashboardPage("That is not the admin token."))
		return
	}
	s.signIns.giveBack(client, now)
	s.admins.set(w, p, now)
	http.Redirect(w, r, s.opsBase+"/admin/", http.StatusSeeOther)
}

// adminLogout serves POST /admin/logout. The cookie carries no server-side
// state, so this signs out this browser; changing admin.token signs out all.
func (s *Server) adminLogout(w http.ResponseWriter, r *http.Request) {
	if s.admins == nil {
		s.render(w, http.StatusNotFound, "disabled.html", s.dashboardPage(""))
		return
	}
	if s.crossOrigin.Check(r) != nil {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	s.admins.clear(w)
	http.Redirect(w, r, s.opsBase+"/admin/", http.StatusSeeOther)
}

// History of the rooms' counters for the dashboard's chart: one sample per
// room every historyStep of the store's clock, for historyLen steps (an
// hour), kept in this process and taken from the cache (no Redis).
const (
	historyStep = 10 * time.Second
	historyLen  = 360
	historyPoll = 500 * time.Millisecond
)

// historySample is one point of a room's history.
type historySample struct {
	// T is when the sample was taken (unix seconds, store clock).
	T       int64 `json:"t"`
	Waiting int64 `json:"waiting"`
	Serving int64 `json:"serving"`
	Tail    int64 `json:"tail"`
	// Admitted is how far serving moved since the previous sample: the
	// positions admitted, including those passed over as abandoned; null
	// for the first sample.
	Admitted *int64 `json:"admitted"`
	// Abandoned is how many positions this instance's scheduler passed
	// over since the previous sample (0 on an instance that did not lead
	// the room).
	Abandoned int64 `json:"abandoned"`
}

// roomHistory is one room's ring of samples, oldest first from start.
type roomHistory struct {
	ring      [historyLen]historySample
	start, n  int
	lastSlot  int64
	abandoned int64 // the instance's running count at the last sample
}

type history struct {
	mu    sync.Mutex
	rooms map[string]*roomHistory
}

func newHistory(rooms []string) *history {
	h := &history{rooms: make(map[string]*roomHistory, len(rooms))}
	for _, id := range rooms {
		h.rooms[id] = &roomHistory{}
	}
	return h
}

// keep makes the history's rooms ids: a room created at run time starts
// an empty history, a deleted one's is dropped.
func (h *history) keep(ids []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(ids) == len(h.rooms) {
		same := true
		for _, id := range ids {
			if _, ok := h.rooms[id]; !ok {
				same = false
				break
			}
		}
		if same {
			return
		}
	}
	next := make(map[string]*roomHistory, len(ids))
	for _, id := range ids {
		if rh, ok := h.rooms[id]; ok {
			next[id] = rh
		} else {
			next[id] = &roomHistory{}
		}
	}
	h.rooms = next
}

// record adds a sample of room at now unless one was taken in the same
// step already (or the clock went back). abandoned is the instance's
// running count of the room's abandoned positions.
func (h *history) record(now time.Time, room string, waiting, serving, tail, abandoned int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	rh, ok := h.rooms[room]
	if !ok {
		return
	}
	slot := now.Unix() / int64(historyStep/time.Second)
	if rh.n > 0 && slot <= rh.lastSlot {
		return
	}
	s := historySample{T: now.Unix(), Waiting: waiting, Serving: serving, Tail: tail}
	if rh.n > 0 {
		prev := rh.ring[(rh.start+rh.n-1)%historyLen]
		moved := max(0, serving-prev.Serving)
		s.Admitted = &moved
		s.Abandoned = max(0, abandoned-rh.abandoned)
	}
	if rh.n < historyLen {
		rh.ring[(rh.start+rh.n)%historyLen] = s
		rh.n++
	} else {
		rh.ring[rh.start] = s
		rh.start = (rh.start + 1) % historyLen
	}
	rh.lastSlot, rh.abandoned = slot, abandoned
}

// since returns room's samples of the hour before now, oldest first.
func (h *history) since(room string, now time.Time) []historySample {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := []historySample{}
	rh, ok := h.rooms[room]
	if !ok {
		return out
	}
	from := now.Add(-historyLen * historyStep).Unix()
	for i := range rh.n {
		if s := rh.ring[(rh.start+i)%historyLen]; s.T > from && s.T <= now.Unix() {
			out = append(out, s)
		}
	}
	return out
}

// RunHistory samples every room's cached counters for the dashboard's
// chart until ctx is done.
func (s *Server) RunHistory(ctx context.Context) {
	t := time.NewTicker(historyPoll)
	defer t.Stop()
	for {
		s.sampleHistory()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sampleHistory records each room's cached counters at the store's clock.
// While the cache cannot refresh it records nothing: the chart shows a gap
// rather than a flat line through an outage.
func (s *Server) sampleHistory() {
	if s.cache.Err() != nil {
		return
	}
	now := s.store.Now()
	ids := s.store.Rooms()
	s.history.keep(ids)
	for _, id := range ids {
		if c, ok := s.cache.Get(id); ok {
			s.history.record(now, id, c.Waiting(), c.Serving, c.Tail, s.abandonedHere(id))
		}
	}
}

// historyJSON is the body of GET /admin/v1/rooms/{room}/history.
type historyJSON struct {
	Room string `json:"room"`
	// Now is the store's clock (unix seconds), so the chart's hour ends
	// at the server's time, not the browser's.
	Now             int64           `json:"now"`
	IntervalSeconds int64           `json:"interval_seconds"`
	Samples         []historySample `json:"samples"`
}

func (s *Server) adminHistory(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("room")
	if _, ok := s.store.Room(id); !ok {
		writeJSON(w, http.StatusNotFound, apiError{"not_found", "no such room"})
		return
	}
	now := s.store.Now()
	writeJSON(w, http.StatusOK, historyJSON{Room: id, Now: now.Unix(),
		IntervalSeconds: int64(historyStep / time.Second), Samples: s.history.since(id, now)})
}
