package oidc

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/anteroom/anteroom/config"
	"github.com/anteroom/anteroom/internal/route"
	"github.com/anteroom/anteroom/keys"
	"github.com/anteroom/anteroom/waitingroom"
)

func TestGateClientIDsAreReserved(t *testing.T) {
	for _, id := range []string{"anteroom-gate", "anteroom-gate-launch", "anteroom-gate-x"} {
		_, err := NewProvider(Options{Issuer: "https://queue.example.com", Clients: []config.Client{{ID: id, Room: "launch"}}})
		if err == nil || !strings.Contains(err.Error(), "reserved for the built-in gate") {
			t.Fatalf("client %q: %v", id, err)
		}
	}
}

// A relying party's access token is a JWT a downstream API verifies with the
// JWKS alone; the gate's, which nobody ever sees, is opaque and costs no
// signature.
func TestOnlyTheGateGetsOpaqueAccessTokens(t *testing.T) {
	rooms, err := waitingroom.NewStore(nil, []waitingroom.Room{{ID: "launch", Name: "Launch", State: waitingroom.StateOpen,
		SessionTTL: 30 * time.Minute, MaxWait: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewProvider(Options{Issuer: "https://queue.example.com", Rooms: rooms, Box: testBox(t, 1), GateRooms: []string{"launch"},
		Clients: []config.Client{{ID: "shop", Secret: "shop-secret-0123456789", Room: "launch", RedirectURIs: []string{"https://shop.example.com/cb"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.storage.clients.must("shop").AccessTokenType(); got != op.AccessTokenTypeJWT {
		t.Errorf("relying party's access token type %v, want JWT", got)
	}
	if got := p.storage.clients.must(GateClientID("launch")).AccessTokenType(); got != op.AccessTokenTypeBearer {
		t.Errorf("gate's access token type %v, want opaque", got)
	}
}

// The gate's clients are confidential (RFC 6749 §2.1): the token endpoint
// authenticates them (§3.2.1) with a secret derived from the deployment's
// first cookie key, which only ExchangeCode presents; without it, or with
// a guess, a code of theirs buys nothing (TestGateClientsCannotBeRunFromOutside
// runs it at the public endpoint).
func TestGateClientsAreConfidentialWithADerivedSecret(t *testing.T) {
	rooms, err := waitingroom.NewStore(nil, []waitingroom.Room{{ID: "launch", Name: "Launch", State: waitingroom.StateOpen,
		SessionTTL: 30 * time.Minute, MaxWait: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	key := []byte(strings.Repeat("k", 32))
	provider := func(secret []byte) *Provider {
		p, err := NewProvider(Options{Issuer: "https://queue.example.com", Rooms: rooms, Box: testBox(t, 1), GateRooms: []string{"launch"}, GateSecret: secret})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := provider(key)
	c := p.storage.clients.must(GateClientID("launch"))
	if c.cfg.Public() || c.AuthMethod() == "none" || !c.cfg.RequirePKCE {
		t.Fatalf("gate client: public %v, auth method %v, PKCE required %v", c.cfg.Public(), c.AuthMethod(), c.cfg.RequirePKCE)
	}
	for _, guess := range []string{"", "guess", string(key)} {
		if err := p.storage.AuthorizeClientIDSecret(t.Context(), GateClientID("launch"), guess); err == nil {
			t.Fatalf("secret %q accepted", guess)
		}
	}
	if err := p.storage.AuthorizeClientIDSecret(t.Context(), GateClientID("launch"), c.cfg.Secret); err != nil {
		t.Fatalf("its own secret: %v", err)
	}
	if again := provider(key).storage.clients.must(GateClientID("launch")).cfg.Secret; again != c.cfg.Secret {
		t.Fatal("the secret is not derived from the key alone")
	}
	if other := provider(nil).storage.clients.must(GateClientID("launch")).cfg.Secret; other == c.cfg.Secret || len(other) < 32 {
		t.Fatalf("without a key: secret %q", other)
	}
}

// Discovery advertises each endpoint at the path package route names,
// which the provider routes on and web's metrics label: the library's
// defaults and route's constants cannot drift apart.
func TestDiscoveryAdvertisesTheRoutesPaths(t *testing.T) {
	rooms, err := waitingroom.NewStore(nil, []waitingroom.Room{{ID: "launch", Name: "Launch", State: waitingroom.StateOpen,
		SessionTTL: 30 * time.Minute, MaxWait: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	const issuer = "https://queue.example.com"
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { rdb.Close() })
	km, err := keys.NewManager(context.Background(), rdb, testBox(t, 1), keys.Options{Algorithm: "RS256"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewProvider(Options{Issuer: issuer, Rooms: rooms, Box: testBox(t, 1), Keys: km,
		Clients: []config.Client{{ID: "shop", Secret: "shop-secret-0123456789", Room: "launch", RedirectURIs: []string{"https://shop.example.com/cb"}}}})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	p.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, issuer+route.Discovery, nil))
	var d map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil {
		t.Fatalf("discovery: %d %s", w.Code, w.Body)
	}
	for field, path := range map[string]string{
		"authorization_endpoint": route.Authorize, "token_endpoint": route.Token, "introspection_endpoint": route.Introspect,
		"userinfo_endpoint": route.Userinfo, "revocation_endpoint": route.Revoke, "end_session_endpoint": route.EndSession,
		"jwks_uri": route.Keys,
	} {
		if d[field] != issuer+path {
			t.Errorf("%s = %v, want %s", field, d[field], issuer+path)
		}
	}
}
