package oidc

import (
	"strings"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/anteroom/anteroom/config"
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
	if got := p.storage.clients["shop"].AccessTokenType(); got != op.AccessTokenTypeJWT {
		t.Errorf("relying party's access token type %v, want JWT", got)
	}
	if got := p.storage.clients[GateClientID("launch")].AccessTokenType(); got != op.AccessTokenTypeBearer {
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
	c := p.storage.clients[GateClientID("launch")]
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
	if again := provider(key).storage.clients[GateClientID("launch")].cfg.Secret; again != c.cfg.Secret {
		t.Fatal("the secret is not derived from the key alone")
	}
	if other := provider(nil).storage.clients[GateClientID("launch")].cfg.Secret; other == c.cfg.Secret || len(other) < 32 {
		t.Fatalf("without a key: secret %q", other)
	}
}
