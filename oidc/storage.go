package oidc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/anteroom/anteroom/keys"
	"github.com/anteroom/anteroom/waitingroom"
)

// Anteroom's op.Storage is split by flow, one file each, with the storage
// contract of that flow documented at its top:
//
//	authrequest.go   the authorization request (sealed into its id, nothing stored while it waits)
//	code.go          the authorization code: answered once, looked up, spent once
//	token.go         access tokens: minted, read back, tied to the visitor's session
//	refresh.go       refresh tokens: rotated once, reuse revokes the grant
//	revocation.go    grants revoked (replay, RFC 7009) and sessions ended (logout)
//	introspection.go RFC 7662
//	userinfo.go      the claims every token and the userinfo endpoint carry
//	keys.go          signing and verification keys (keys.Manager, no Redis here)
//	client.go, clientauth.go  the configured clients and their secrets
//
// What holds for all of them: everything lives in Redis with a TTL, so any
// instance finishes a flow another one started. The keys of one flow hash to
// different Cluster slots, so a write of several keys is a pipeline of
// one-key commands, never a MULTI, and what must be atomic is one Lua script
// or one SET … GET on one key. go-redis sends a command again when its reply
// was lost (MaxRetries), so each write below says whether it may be
// repeated. A store failure is reported with down, never as an OAuth error
// (workarounds.go).

// storage is Anteroom's op.Storage. Everything it keeps is in Redis with a
// TTL, so any instance can finish a flow that another one started.
type storage struct {
	rdb     redis.UniversalClient
	rooms   *waitingroom.Store
	keys    *keys.Manager
	box     *keys.Box
	clients clientTable
	now     func() time.Time
	// onToken is Options.OnToken (nil: not reported).
	onToken func(kind string)
}

// digest is how secrets (codes, refresh tokens) and long ids are named in
// Redis: 128 bits of SHA-256, in hex.
func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}

// randomToken is a new opaque credential or id: 256 random bits.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Health implements op.Storage.
func (s *storage) Health(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }

// Interface guards.
var (
	_ op.Storage                        = (*storage)(nil)
	_ op.CanSetUserinfoFromRequest      = (*storage)(nil)
	_ op.CanGetPrivateClaimsFromRequest = (*storage)(nil)
	_ op.RefreshTokenRequest            = (*refreshRequest)(nil)
	_ op.AuthRequest                    = (*AuthRequest)(nil)
)
