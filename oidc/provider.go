// Package oidc is Anteroom's OpenID Connect provider: zitadel/oidc's op
// package with a storage whose login step is the waiting room. An auth
// request becomes done only when the ticket bound to it is admitted, so no
// code, and no token, is issued before the visitor's turn.
package oidc

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/cors"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/anteroom/anteroom/config"
	"github.com/anteroom/anteroom/internal/route"
	"github.com/anteroom/anteroom/keys"
	"github.com/anteroom/anteroom/waitingroom"
)

// Options wires a Provider.
type Options struct {
	// Issuer is the exact issuer URL, possibly with a path; every URL
	// Anteroom hands out is built from it.
	Issuer  string
	Clients []config.Client
	Rooms   *waitingroom.Store
	Redis   redis.UniversalClient
	Keys    *keys.Manager
	// Box seals pending auth requests into their ids and authorization codes.
	Box *keys.Box
	// Now is the clock (default time.Now).
	Now func() time.Time
	// GateRooms are the rooms the built-in gate protects; each gets a
	// client of its own (GateClientID).
	GateRooms []string
	// GateSecret is what the gate's clients' secret is derived from (the
	// first of secrets.cookie_keys); nil: a secret drawn for the process.
	GateSecret []byte
	// OnToken, when set, is called each time a credential is issued, with
	// its kind: IssuedCode, IssuedAccessToken or IssuedRefreshToken.
	OnToken func(kind string)
}

// Provider is the OpenID provider and the bridge the waiting page uses to
// continue a flow.
type Provider struct {
	op         *op.Provider
	storage    *storage
	issuer     string
	handler    http.Handler
	keysMaxAge time.Duration
	// errorPage shows a person an authorization request that cannot be
	// answered at the relying party (see SetErrorPage).
	errorPage func(w http.ResponseWriter, r *http.Request)
	// cors is the library's CORS policy, for the endpoints answered
	// without its router.
	cors *cors.Cors
	// fixed are the clients of the file and the gate (runtimeclients.go).
	fixed *fixedClients
}

// SetErrorPage sets what a person sees for an authorization request that
// cannot be sent back to its relying party (unknown client, unregistered
// redirect_uri: redirecting there would make Anteroom an open redirector).
// The library writes its reason as plain text; the page replaces it, in
// the waiting room's style, and the reason goes to the log. Call it before
// serving.
func (p *Provider) SetErrorPage(page func(w http.ResponseWriter, r *http.Request)) {
	p.errorPage = page
}

// NewProvider builds the provider.
func NewProvider(o Options) (*Provider, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &storage{rdb: o.Redis, rooms: o.Rooms, keys: o.Keys, box: o.Box, now: o.Now,
		onToken: o.OnToken}
	for _, c := range o.Clients {
		if ReservedClientID(c.ID) {
			return nil, fmt.Errorf("client %q: ids starting with %q are reserved for the built-in gate", c.ID, gateClientPrefix)
		}
	}
	fixed := &fixedClients{list: append(o.Clients[:len(o.Clients):len(o.Clients)], gateClients(o.Issuer, gateClientSecret(o.GateSecret), o.GateRooms)...),
		login: loginURLFor(o.Issuer)}
	for _, c := range fixed.list {
		if _, ok := o.Rooms.Room(c.Room); !ok {
			return nil, fmt.Errorf("client %q: unknown room %q", c.ID, c.Room)
		}
	}
	corsOptions := cors.Options{
		AllowedOrigins: []string{"*"},
		AllowedMethods: []string{http.MethodGet, http.MethodPost},
		AllowedHeaders: []string{"Authorization", "Content-Type"},
	}
	cfg := &op.Config{
		// Without a registered post_logout_redirect_uri, end_session
		// lands on the waiting room's own "you are logged out" page.
		DefaultLogoutRedirectURI: o.Issuer + "/logged-out",
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		SupportedScopes:          []string{zoidc.ScopeOpenID, zoidc.ScopeOfflineAccess},
		SupportedClaims: []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce",
			"room", "queue_position", "queued_at", "admitted_at"},
	}
	opts := []op.Option{
		op.WithCrypto(boxCrypto{o.Box}),
		// The library's default CORS reflects any Origin with credentials.
		// Token, userinfo, discovery and keys need CORS for browser apps,
		// never with credentials; the browser-facing endpoints get none
		// (Handler strips Origin there).
		op.WithCORSOptions(&corsOptions),
	}
	if strings.HasPrefix(o.Issuer, "http://") {
		opts = append(opts, op.WithAllowInsecure())
	}
	p, err := op.NewProvider(cfg, s, op.StaticIssuer(o.Issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("create provider: %w", err)
	}
	prov := &Provider{op: p, storage: s, issuer: o.Issuer, cors: cors.New(corsOptions), fixed: fixed}
	if err := prov.SetClients(nil); err != nil {
		return nil, err
	}
	if o.Keys != nil {
		prov.keysMaxAge = o.Keys.CacheMaxAge()
	}
	prov.handler = http.HandlerFunc(prov.serve)
	return prov, nil
}

// Handler serves the provider's endpoints at root paths (a proxy strips the
// issuer's path prefix).
func (p *Provider) Handler() http.Handler { return p.handler }

func (p *Provider) serve(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case route.Discovery, route.Token, route.Introspect, route.Revoke, route.Userinfo:
		// Browser apps call these across origins. Their answers (or some
		// of them) are written here, not by the library's router, so its
		// CORS policy is applied here, and the router, seeing no Origin,
		// adds nothing twice.
		if r.Header.Get("Origin") != "" {
			p.cors.HandlerFunc(w, r)
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				return
			}
			r.Header.Del("Origin")
		}
	}
	switch r.URL.Path {
	case zoidc.DiscoveryEndpoint:
		p.discovery(w, r)
		return
	case route.Authorize:
		r.Header.Del("Origin")
		p.authorize(w, r)
		return
	case route.AuthorizeCallback:
		// The waiting page answers the relying party itself (Finish); the
		// library's callback is left for old links and only ever refuses,
		// to the relying party with iss added (RFC 9207).
		r.Header.Del("Origin")
		if !parseForm(w, r) {
			return
		}
		buf := &bufferedWriter{header: w.Header()}
		guardOutage(buf, r, p.op)
		if loc := w.Header().Get("Location"); loc != "" && !strings.HasPrefix(loc, p.issuer+"/") {
			w.Header().Set("Location", withIss(loc, p.issuer))
		}
		buf.flushTo(w)
		return
	case route.EndSession:
		r.Header.Del("Origin")
		if !parseForm(w, r) {
			return
		}
		guardOutage(w, r, p.op)
		return
	case route.Token:
		// RFC 6749 §5.1: token responses must not be cached.
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Pragma", "no-cache")
		if !parseForm(w, r) || !p.authenticateClient(w, r, publicAllowed) || !checkGrantType(w, r) {
			return
		}
		guardOutage(w, r, p.op)
		return
	case route.Introspect:
		if !parseForm(w, r) || !p.authenticateClient(w, r, secretRequired) {
			return
		}
		guardOutage(w, r, p.op)
		return
	case route.Revoke:
		if !parseForm(w, r) || !p.authenticateClient(w, r, publicAllowed) {
			return
		}
		guardOutage(w, r, p.op)
		return
	case route.Userinfo:
		guardOutage(w, r, http.HandlerFunc(p.userinfo))
		return
	case "/device_authorization":
		// The library routes it whatever the storage offers; Anteroom
		// offers no device flow (and discovery does not name it).
		http.NotFound(w, r)
		return
	case route.Keys:
		// The library sends no Cache-Control, and caches then guess. A
		// key is published ahead of signing for at least twice this
		// long, so every cache that honours it has the key before the key
		// signs anything.
		w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(p.keysMaxAge.Seconds())))
	}
	p.op.ServeHTTP(w, r)
}
