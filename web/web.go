// Package web serves what visitors and relying parties see: the waiting
// page, its JSON and event streams, the continue step back into the OIDC
// flow, the public room status, and the middleware every listener shares
// (request ids, security headers, client addresses, request metrics). The
// operator's side (admin API, dashboard, health) is package operator, which
// web knows nothing of.
package web

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/anteroom/anteroom/internal/route"
	"github.com/anteroom/anteroom/waitingroom"
)

//go:embed templates static
var assets embed.FS

// AuthFlow is the OIDC side of the waiting page.
type AuthFlow interface {
	// Open opens auth request id, once per HTTP request: the handle answers
	// everything else the page asks of it. Errors wrap
	// waitingroom.ErrUnknownRequest or waitingroom.ErrExpired.
	Open(id string) (AuthRequest, error)
}

// AuthRequest is an auth request opened for one HTTP request of its
// waiting page.
type AuthRequest interface {
	// ID is the request's id, as opened.
	ID() string
	// Room is the room the request queues for.
	Room() string
	// Created is when the relying party sent the request: the queue
	// files the request's binding by it, without opening it again.
	Created() time.Time
	// PromptNone reports whether the request asked for no interaction.
	PromptNone() bool
	// Fresh reports whether an admitted ticket's admission may answer the
	// request: false when the relying party asked for a more recent one
	// (max_age, prompt=login), which means queueing again.
	Fresh(t waitingroom.Ticket) bool
	// Finish answers the request for an admitted ticket: it sends the
	// browser back to the relying party with the request's code. It writes
	// nothing when it returns an error; errors wrap
	// waitingroom.ErrUnknownRequest, ErrExpired, ErrAnswered or
	// ErrSessionOver, or are the store's.
	Finish(w http.ResponseWriter, r *http.Request, t waitingroom.Ticket) error
	// LoginRequired answers a prompt=none request that would have to queue.
	LoginRequired(w http.ResponseWriter, r *http.Request)
	// Decline ends the request at the relying party with access_denied:
	// the visitor would rather keep their admission than queue again.
	Decline(w http.ResponseWriter, r *http.Request)
	// Close releases the handle (the provider reuses it, so that a status
	// poll allocates nothing); it must not be used after.
	Close()
}

// Options wires a Server.
type Options struct {
	// Issuer is the base of every URL handed out (it may carry a path).
	Issuer string
	Store  *waitingroom.Store
	Cache  *waitingroom.Cache
	Flow   AuthFlow
	// CookieSecrets encode ticket cookies: the first encodes, all decode.
	CookieSecrets [][]byte
	// Heartbeats collects waiting pages' signs of life for abandonment
	// (nil: none are recorded).
	Heartbeats *waitingroom.Heartbeats
	// Origins reports the rooms' origin health for the metrics (nil: no
	// room is probed).
	Origins OriginHealth
	// Metrics counts joins and admissions (nil: not counted).
	Metrics *Metrics
	// WebDir, when not empty, is a directory whose templates, static files
	// and locales replace or add to the embedded ones (config web.dir).
	WebDir string
	// ClientIPs tells a visitor's address, for the store's join limit
	// (zero: the peer's address).
	ClientIPs ClientIPs
	// EventStreams and EventStreamsPerIP bound the event streams the
	// instance holds, in all and per client address (config
	// limits.event_streams…); 0: no bound.
	EventStreams, EventStreamsPerIP int
	// SiteURL is where the error pages' "back to the site" link goes
	// (config web.site_url; empty: see Server.siteFor).
	SiteURL string
	// Challenges asks new visitors for a proof of work (nil: never).
	Challenges *Challenges
	// Identities are the rooms with an identity provider
	// (rooms[].identity), by room id; see upstream.go.
	Identities map[string]Identity
}

// Server holds the handlers.
type Server struct {
	issuer    string
	store     *waitingroom.Store
	cache     *waitingroom.Cache
	flow      AuthFlow
	cookies   *ticketCookies
	questions questionKeys
	pages     *template.Template
	static    fs.FS      // the override directory's files over the embedded ones
	locales   *catalogue // the visitor's pages' texts, by language
	streams   *streamHub
	closeOnce sync.Once
	beats     *waitingroom.Heartbeats
	origins   OriginHealth
	metrics   *Metrics
	clientIPs ClientIPs
	// siteURL is where error pages link back to (Options.SiteURL).
	siteURL string
	// challenges is Options.Challenges.
	challenges *Challenges
	// identities and upstreamKeys serve rooms with an identity provider
	// (upstream.go).
	identities   map[string]Identity
	upstreamKeys upstreamKeys
}

// New checks the options, parses the templates and reads the texts (those
// of o.WebDir over the embedded ones); a missing or broken template fails
// here, at start-up, not on a visitor's request.
func New(o Options) (*Server, error) {
	u, err := url.Parse(o.Issuer)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("issuer %q is not an absolute URL", o.Issuer)
	}
	path := u.Path
	if path == "" {
		path = "/"
	}
	// Plain http only reaches here for a loopback issuer (config rejects
	// others), where browsers would drop a Secure cookie.
	cookies, err := newTicketCookies(o.CookieSecrets, u.Scheme == "https", path)
	if err != nil {
		return nil, err
	}
	th, err := loadTheme(o.WebDir, pageFuncs())
	if err != nil {
		return nil, err
	}
	pages := th.pages
	for _, name := range []string{"wait.html", "message.html"} {
		if pages.Lookup(name) == nil {
			return nil, fmt.Errorf("template %s is missing", name)
		}
	}
	s := &Server{issuer: o.Issuer, store: o.Store, cache: o.Cache, flow: o.Flow,
		cookies: cookies, questions: newQuestionKeys(o.CookieSecrets), pages: pages, static: th.static, locales: th.locales, beats: o.Heartbeats,
		origins: o.Origins, metrics: o.Metrics, clientIPs: o.ClientIPs, siteURL: o.SiteURL, challenges: o.Challenges}
	if s.upstreamKeys, err = newUpstreamKeys(o.CookieSecrets); err != nil {
		return nil, err
	}
	s.identities = o.Identities
	s.streams = newStreamHub(s)
	s.streams.maxTotal, s.streams.maxPerClient = o.EventStreams, o.EventStreamsPerIP
	go s.streams.run()
	return s, nil
}

// pageFuncs are the functions the page templates may call.
func pageFuncs() template.FuncMap {
	return template.FuncMap{
		// percent is the bar of the waiting page: progress since the
		// visitor's own join.
		"percent": func(st waitingroom.VisitorStatus) int { return st.Progress },
	}
}

// RegisterPublic adds the routes visitors and relying parties use: the
// waiting page, its stream and answers, the public room status, static
// files.
func (s *Server) RegisterPublic(mux *http.ServeMux) {
	mux.HandleFunc("GET "+route.WaitPattern, s.wait)
	mux.HandleFunc(eventsPattern, s.events)
	mux.HandleFunc("POST "+route.ContinuePattern, s.continueFlow)
	mux.HandleFunc("POST "+route.RequeuePattern, s.requeue)
	mux.HandleFunc("POST "+route.DeclinePattern, s.decline)
	mux.HandleFunc("POST "+route.ProofPattern, s.proof)
	mux.HandleFunc("POST "+route.CodePattern, s.redeemCode)
	mux.HandleFunc("POST "+route.RefusedPattern, s.refusedBack)
	mux.HandleFunc("GET "+route.UpstreamCallback, s.upstreamCallback)
	mux.HandleFunc("GET /api/v1/rooms/{room}", s.publicRoom)
	mux.HandleFunc("GET /logged-out", func(w http.ResponseWriter, r *http.Request) {
		s.render(w, http.StatusOK, "message.html", s.visitorMessage(w, r, msgLoggedOut))
	})
	mux.Handle("GET /static/", s.staticFiles())
}

func (s *Server) staticFiles() http.Handler {
	return http.StripPrefix("/static/", cacheFor(time.Hour, http.FileServerFS(s.static)))
}

func cacheFor(d time.Duration, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(d.Seconds())))
		h.ServeHTTP(w, r)
	})
}

// SecurityHeaders adds the headers every response of Anteroom carries: no
// framing (a waiting page in a frame invites clickjacking of the continue
// button), no referrer (URLs carry request ids), no sniffing.
func SecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Assigned, not Set: the values are shared and never written to
		// (Set and Add replace or copy them), which saves four
		// allocations on every response.
		h := w.Header()
		h["X-Frame-Options"] = frameDeny
		h["Content-Security-Policy"] = contentPolicy
		h["Referrer-Policy"] = noReferrer
		h["X-Content-Type-Options"] = noSniff
		next.ServeHTTP(w, r)
	})
}

var (
	frameDeny     = []string{"DENY"}
	contentPolicy = []string{"default-src 'self'; frame-ancestors 'none'; form-action 'self' https: http:; base-uri 'none'"}
	noReferrer    = []string{"no-referrer"}
	noSniff       = []string{"nosniff"}
)

// wantsJSON reports whether the client asked for JSON rather than a page.
func wantsJSON(r *http.Request) bool {
	if queryValue(r.URL.RawQuery, "format") == "json" {
		return true
	}
	accept := r.Header.Get("Accept")
	return strings.Contains(accept, "application/json") && !strings.Contains(accept, "text/html")
}

// queryValue is url.ParseQuery(raw).Get(key) without building the map: a
// status poll asks for one parameter, several times, on the hottest path.
func queryValue(raw, key string) string {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if strings.Contains(pair, ";") {
			continue // ParseQuery rejects such pairs
		}
		k, v, _ := strings.Cut(pair, "=")
		if strings.ContainsAny(k, "%+") {
			var err error
			if k, err = url.QueryUnescape(k); err != nil {
				continue
			}
		}
		if k != key {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			var err error
			if v, err = url.QueryUnescape(v); err != nil {
				continue
			}
		}
		return v
	}
	return ""
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// message is a page (or JSON) telling a person what happened and what to do.
// Title and Text are message keys of the catalogue (i18n.go), shown in the
// visitor's language on a page and in English in JSON (MarshalJSON); a
// text that is no key is shown as it is.
type message struct {
	Status int    `json:"-"`
	Code   string `json:"error"`
	Title  string `json:"-"`
	Text   string `json:"error_description"`
}

var (
	msgUnknown     = message{http.StatusBadRequest, "invalid_request", "msg.unknown.title", "msg.unknown.text"}
	msgExpired     = message{http.StatusGone, "expired", "msg.expired.title", "msg.expired.text"}
	msgClaimed     = message{http.StatusConflict, "start_again", "msg.claimed.title", "msg.claimed.text"}
	msgRequeue     = message{http.StatusConflict, "requeue_required", "msg.requeue.title", "msg.requeue.text"}
	msgAnswered    = message{http.StatusConflict, "start_again", "msg.answered.title", "msg.answered.text"}
	msgClosed      = message{http.StatusForbidden, "closed", "msg.closed.title", "msg.closed.text"}
	msgNoTicket    = message{http.StatusForbidden, "start_again", "msg.no_ticket.title", "msg.no_ticket.text"}
	msgLoggedOut   = message{http.StatusOK, "", "msg.logged_out.title", "msg.logged_out.text"}
	msgUnavailable = message{http.StatusServiceUnavailable, "temporarily_unavailable", "msg.unavailable.title", "msg.unavailable.text"}
	// msgRateLimited: too many new places from one address (limits.joins_per_ip_per_minute).
	msgRateLimited = message{http.StatusTooManyRequests, "rate_limited", "msg.rate_limited.title", "msg.rate_limited.text"}
	// msgTooManyLogins: one ticket started too many logins (limits.logins_per_ticket).
	msgTooManyLogins = message{http.StatusTooManyRequests, "too_many_logins", "msg.too_many_logins.title", "msg.too_many_logins.text"}
)

// fail writes m as a page or as JSON, and logs err (not shown to people).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, m message, err error) {
	s.metrics.refused(m.Code)
	if err != nil {
		slog.WarnContext(r.Context(), "request failed", "route", r.Pattern, "status", m.Status, "err", err)
	}
	if m.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	if wantsJSON(r) {
		writeJSON(w, m.Status, m)
		return
	}
	s.render(w, m.Status, "message.html", s.visitorMessage(w, r, m))
}

// messagePage is what the message template renders, its title and text
// in the page's language.
type messagePage struct {
	locale
	message
	StaticURL string
	// Actions are the choices the page offers, each a button posting to
	// its URL.
	Actions []pageAction
	// SiteURL is where the page's "back to the site" link goes ("": no
	// link); see Server.siteFor.
	SiteURL string
	// RequestID is the request's id (RequestIDs), for the visitor to quote
	// to support, who find the request's log lines by it.
	RequestID string
}

// pageAction is a button of a message page.
type pageAction struct {
	URL, Label string
	// Secondary is the choice that is not the page's main one.
	Secondary bool
}

// visitorMessage renders m in the language r asks for, with a way back to
// the site and the request's id.
func (s *Server) visitorMessage(w http.ResponseWriter, r *http.Request, m message) messagePage {
	p := newMessagePage(m, s.localeFor(w, r), s.issuer+"/static")
	p.SiteURL, p.RequestID = s.siteFor(r), RequestID(r.Context())
	return p
}

// siteFor is where a message page's "back to the site" link goes: the
// configured web.site_url, else the origin of the page the visitor came
// from when their browser sent it (Referer) and it is another site than
// the waiting room's, else nowhere. Only an origin, never the whole
// Referer: it is a link back, not a replay of what the visitor was doing.
func (s *Server) siteFor(r *http.Request) string {
	if s.siteURL != "" {
		return s.siteURL
	}
	ref, err := url.Parse(r.Referer())
	if err != nil || (ref.Scheme != "https" && ref.Scheme != "http") || ref.Host == "" || ref.User != nil {
		return ""
	}
	if own, err := url.Parse(s.issuer); err == nil && strings.EqualFold(own.Host, ref.Host) {
		return ""
	}
	return ref.Scheme + "://" + ref.Host + "/"
}

func (s *Server) render(w http.ResponseWriter, status int, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := s.pages.ExecuteTemplate(w, name, data); err != nil {
		slog.Error("render page", "template", name, "err", err)
	}
}

// RequestError shows a person an authorization request that cannot be sent
// back to its relying party (oidc.Provider.SetErrorPage): a short page in
// the visitor's language; the reason is in the log.
func (s *Server) RequestError(w http.ResponseWriter, r *http.Request) { s.fail(w, r, msgUnknown, nil) }

// storeFailure maps an error from the queue to what a person sees.
func (s *Server) storeFailure(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, waitingroom.ErrClaimed):
		s.fail(w, r, msgClaimed, nil)
	case errors.Is(err, waitingroom.ErrClosed), errors.Is(err, waitingroom.ErrUnknownRoom):
		// A room an operator deleted while visitors waited is closed to
		// them (issue 16), not an outage.
		s.fail(w, r, msgClosed, nil)
	case errors.Is(err, waitingroom.ErrUnknownRequest):
		s.fail(w, r, msgUnknown, nil)
	case errors.Is(err, waitingroom.ErrExpired):
		s.fail(w, r, msgExpired, nil)
	case errors.Is(err, waitingroom.ErrRateLimited):
		retry := 1
		if rl := (*waitingroom.RateLimitedError)(nil); errors.As(err, &rl) {
			retry = max(1, int(math.Ceil(rl.RetryAfter.Seconds())))
		}
		w.Header().Set("Retry-After", strconv.Itoa(retry))
		s.fail(w, r, msgRateLimited, nil)
	case errors.Is(err, waitingroom.ErrTooManyLogins):
		s.fail(w, r, msgTooManyLogins, nil)
	case errors.Is(err, waitingroom.ErrAnswered):
		s.fail(w, r, msgAnswered, nil)
	default:
		s.fail(w, r, msgUnavailable, err)
	}
}

// beat records a waiting page's sign of life (batched; no Redis here).
func (s *Server) beat(t waitingroom.Ticket) {
	if s.beats != nil && !t.Admitted() {
		s.beats.Beat(t.Room, t.Position)
	}
}
