// Package rediskey owns the names of the keys Anteroom keeps in Redis.
//
// Every key starts with Prefix and a colon, so that an operator can give
// Anteroom's ACL user "~anteroom:*" and tell its data apart. The names are
// part of a deployment's data: a release that named a kind of key
// differently would not find what the instances before it wrote, and a
// rolling upgrade would lose every queue, token and signing key. So the
// prefix and the kinds are defined here once, for waitingroom, oidc and
// keys alike, and cmd/anteroom's TestRedisKeyNamesArePinned pins the full
// name of every kind a running instance writes.
package rediskey

// Prefix starts every key. waitingroom.WithPrefix replaces it for the
// rooms' keys only, so that tests and bench can share a Redis without
// meeting each other's (or a deployment's) rooms.
const Prefix = "anteroom"

// The keys outside a room: each kind is followed by its id, except
// SigningKeys, which is one key.
const (
	// AuthRequest is followed by a hash of an admitted auth request's id.
	AuthRequest = Prefix + ":ar:"
	// AccessToken is followed by an access token's id.
	AccessToken = Prefix + ":at:"
	// RefreshToken is followed by a digest of a refresh token.
	RefreshToken = Prefix + ":rt:"
	// RevokedGrant is followed by a revoked grant's id.
	RevokedGrant = Prefix + ":rg:"
	// SigningKeys is the signing key record every instance shares.
	SigningKeys = Prefix + ":keys"
)

// Room is the stem of a room's keys under prefix, "anteroom:{r:launch}:",
// which waitingroom follows with the kind ("tail", "t:<ticket>"…). The
// braces are a Redis Cluster hash tag: all of a room's keys live in one
// slot, so that one script may touch several.
func Room(prefix, room string) string { return prefix + ":{r:" + room + "}:" }
