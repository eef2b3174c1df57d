// Package operator serves the operator's side of an instance: the admin
// API, the dashboard with its sign-in, and liveness and readiness. It
// changes for other reasons than the visitor's side (package web) and
// answers another threat model: a bearer token or a signed-in browser that
// may change the rooms, not a crowd of anonymous visitors. It depends on
// the queue (waitingroom) and on small interfaces the wiring fills; no
// package but the command depends on it.
package operator

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/anteroom/anteroom/catalog"
	"github.com/anteroom/anteroom/config"
	"github.com/anteroom/anteroom/waitingroom"
)

//go:embed templates static
var assets embed.FS

// AbandonedCounts tells how many of a room's positions this instance's
// scheduler passed over since it started (a *web.Metrics).
type AbandonedCounts interface {
	AbandonedHere(room string) int64
}

// Options wires a Server.
type Options struct {
	// Issuer is the base of the public URLs: the dashboard's links and
	// cookie live under it unless SeparateOps.
	Issuer string
	Store  *waitingroom.Store
	Cache  *waitingroom.Cache
	// CookieSecrets sign the dashboard's session cookie: the first signs,
	// all verify.
	CookieSecrets [][]byte
	// AdminToken guards the admin API and the dashboard as an operator's
	// token named "admin" (config admin.token); with Tokens, both are
	// accepted. With neither, they are disabled (they answer 404).
	AdminToken string
	// Tokens are the named admin tokens (config admin.tokens), each a
	// viewer's or an operator's.
	Tokens []Token
	// Origins reports the rooms' origin health (nil: no room is probed).
	Origins OriginHealth
	// Abandoned counts abandoned positions for the rooms' status and
	// history (nil: 0).
	Abandoned AbandonedCounts
	// Keys are the signing keys the admin API lists and retires (nil:
	// those calls answer 404).
	Keys SigningKeys
	// ClientIP tells a request's client address through the trusted
	// proxies (a web.ClientIPs's Of), for the sign-in throttle (nil: the
	// peer's address).
	ClientIP func(*http.Request) netip.Addr
	// Redis holds the audit log (nil: changes are only logged).
	Redis redis.UniversalClient
	// Catalog keeps the rooms and clients created through the API (nil:
	// those routes answer 404).
	Catalog *catalog.Catalog
	// Apply makes this instance serve the catalog as it now is, at once
	// (the others follow by notification within a poll); nil: nothing.
	Apply func(context.Context) error
	// FileRooms and FileClients are the configuration file's: the API
	// lists them but refuses to change them, as the file wins.
	// FileClients carry no secrets.
	FileRooms   []string
	FileClients []config.Client
	// ReservedClientID tells a client id the API may not create (the
	// built-in gate's); nil: none.
	ReservedClientID func(id string) bool
	// MaxSessionTTL bounds a runtime room's session_ttl (0: no bound):
	// signing keys stay published for the longest session the instance
	// knew of when it started, so a longer one would outlive its key.
	MaxSessionTTL time.Duration
	// SeparateOps says the operator's routes are served on a listener of
	// their own (config ops.listen), not under the issuer: the dashboard
	// then links to them by root-relative paths, and its cookie is for
	// /admin/ of that listener, which is plain HTTP.
	SeparateOps bool
	// Challenges shows and switches the rooms' proof of work (nil: none).
	Challenges Challenges
}

// Server holds the operator's handlers.
type Server struct {
	store     *waitingroom.Store
	cache     *waitingroom.Cache
	pages     *template.Template
	static    fs.FS
	origins   OriginHealth
	abandoned AbandonedCounts
	admins    *adminSessions // nil when the admin API is disabled
	history   *history
	clientIP  func(*http.Request) netip.Addr
	keys      SigningKeys
	// opsBase prefixes the dashboard's links: the issuer, or "" when the
	// operator's routes have a listener of their own.
	opsBase string
	// signIns throttles failed dashboard sign-ins.
	signIns *signInThrottle
	// rdb holds the audit log; catalog the runtime rooms and clients
	// (catalogapi.go).
	rdb         redis.UniversalClient
	catalog     *catalog.Catalog
	apply       func(context.Context) error
	fileRooms   map[string]bool
	fileClients []config.Client
	reserved    func(string) bool
	maxSession  time.Duration
	// crossOrigin refuses cookie-authorised changes that another origin's
	// page made the browser send (see dashboard.go).
	crossOrigin *http.CrossOriginProtection
	// challenges is Options.Challenges.
	challenges Challenges
}

// New checks the options and parses the dashboard's templates.
func New(o Options) (*Server, error) {
	u, err := url.Parse(o.Issuer)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("issuer %q is not an absolute URL", o.Issuer)
	}
	pages, err := template.ParseFS(assets, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("parse the dashboard's templates: %w", err)
	}
	static, err := fs.Sub(assets, "static")
	if err != nil {
		return nil, err
	}
	s := &Server{store: o.Store, cache: o.Cache, pages: pages, static: static,
		origins: o.Origins, abandoned: o.Abandoned, history: newHistory(o.Store.Rooms()), clientIP: o.ClientIP,
		keys: o.Keys, opsBase: o.Issuer, signIns: newSignInThrottle(), crossOrigin: http.NewCrossOriginProtection(),
		challenges: o.Challenges}
	if s.clientIP == nil {
		s.clientIP = peerAddr
	}
	s.rdb, s.catalog, s.apply, s.fileClients, s.reserved = o.Redis, o.Catalog, o.Apply, o.FileClients, o.ReservedClientID
	s.maxSession = o.MaxSessionTTL
	s.fileRooms = map[string]bool{}
	for _, id := range o.FileRooms {
		s.fileRooms[id] = true
	}
	if s.reserved == nil {
		s.reserved = func(string) bool { return false }
	}
	tokens := o.Tokens
	if o.AdminToken != "" {
		tokens = append([]Token{{Name: "admin", Token: o.AdminToken, Role: RoleOperator}}, tokens...)
	}
	if len(tokens) > 0 {
		s.admins = newAdminSessionsFor(o.CookieSecrets, principals(tokens), u.Scheme == "https", strings.TrimSuffix(u.Path, "/")+"/admin/")
	}
	if o.SeparateOps {
		s.opsBase = ""
		if s.admins != nil {
			s.admins.secure, s.admins.path = false, "/admin/"
		}
	} else if err := s.crossOrigin.AddTrustedOrigin(u.Scheme + "://" + u.Host); err != nil {
		// A proxy in front may rewrite Host; the browser's Origin is then
		// the issuer's, which is ours.
		return nil, fmt.Errorf("issuer %q: %w", o.Issuer, err)
	}
	return s, nil
}

// Register adds the operator's routes to mux: the admin API, the
// dashboard and its files, liveness and readiness. Mounted beside the
// visitor's routes (web.Server.RegisterPublic), the dashboard's two files
// take precedence over /static/ by their longer patterns.
func (s *Server) Register(mux *http.ServeMux) {
	for _, rt := range s.apiRoutes() {
		mux.HandleFunc(rt.pattern, s.admin(rt.handler))
	}
	s.registerDashboard(mux)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.ready)
}

// apiRoute is one route of the admin API.
type apiRoute struct {
	pattern string
	handler http.HandlerFunc
}

// apiRoutes are the admin API's routes, each behind admin (a token, and
// an operator's for a change); openapi.json documents exactly these
// (TestOpenAPIMatchesTheRoutes).
func (s *Server) apiRoutes() []apiRoute {
	return []apiRoute{
		{"GET /admin/v1/rooms", s.adminRooms},
		{"POST /admin/v1/rooms", s.createRoom},
		{"GET /admin/v1/rooms/{room}", s.adminRoom},
		{"PUT /admin/v1/rooms/{room}", s.putRoom},
		{"PATCH /admin/v1/rooms/{room}", s.adminPatch},
		{"DELETE /admin/v1/rooms/{room}", s.deleteRoom},
		{"POST /admin/v1/rooms/{room}/advance", s.adminAdvance},
		{"GET /admin/v1/rooms/{room}/history", s.adminHistory},
		{"GET /admin/v1/clients", s.listClients},
		{"POST /admin/v1/clients", s.createClient},
		{"GET /admin/v1/clients/{client}", s.getClient},
		{"PUT /admin/v1/clients/{client}", s.putClient},
		{"PATCH /admin/v1/clients/{client}", s.patchClient},
		{"DELETE /admin/v1/clients/{client}", s.deleteClient},
		{"POST /admin/v1/rooms/{room}/codes", s.adminIssueCodes},
		{"GET /admin/v1/rooms/{room}/codes", s.adminCodeStats},
		{"GET /admin/v1/rooms/{room}/events", s.adminEvents},
		{"POST /admin/v1/rooms/{room}/events", s.adminCreateEvent},
		{"GET /admin/v1/rooms/{room}/events/{event}", s.adminEvent},
		{"PUT /admin/v1/rooms/{room}/events/{event}", s.adminPutEvent},
		{"PATCH /admin/v1/rooms/{room}/events/{event}", s.adminPutEvent},
		{"DELETE /admin/v1/rooms/{room}/events/{event}", s.adminDeleteEvent},
		{"GET /admin/v1/keys", s.adminKeys},
		{"POST /admin/v1/keys/{kid}/retire", s.adminRetireKey},
		{"GET /admin/v1/audit", s.adminAudit},
		{"GET /admin/v1/openapi.json", s.openAPI},
	}
}

// ready serves /readyz: ready while the store answers within a second.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		w.Header().Set("Retry-After", "5")
		http.Error(w, "redis unreachable", http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// abandonedHere is room's count of abandoned positions on this instance.
func (s *Server) abandonedHere(room string) int64 {
	if s.abandoned == nil {
		return 0
	}
	return s.abandoned.AbandonedHere(room)
}

// peerAddr is the address of r's peer, for a Server told of no proxies.
func peerAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func (s *Server) render(w http.ResponseWriter, status int, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := s.pages.ExecuteTemplate(w, name, data); err != nil {
		slog.Error("render page", "template", name, "err", err)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
