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

// The catalog: rooms and clients an operator created at run time through
// the admin API (package catalog), and the audit log of every change. A
// room's definition lives in the room's own slot (RoomDefinition), so
// that each room is one hash slot on a Cluster; the index and the clients
// are small and live in one slot each.
const (
	// CatalogRooms is the set of the ids of the rooms created at run time.
	CatalogRooms = Prefix + ":catalog:rooms"
	// CatalogClients is the hash of the clients created at run time, by id.
	CatalogClients = Prefix + ":catalog:clients"
	// CatalogVersion is incremented after every change of the catalog:
	// each instance polls it, as a safety net under CatalogChanged.
	CatalogVersion = Prefix + ":catalog:version"
	// CatalogChanged is the pub/sub channel on which a change is announced
	// to every instance.
	CatalogChanged = Prefix + ":catalog:changed"
	// Audit is the bounded list of the admin changes, newest first.
	Audit = Prefix + ":audit"
)

// RoomDefinition is the key of a room's definition when it was created at
// run time: one of the room's own keys, in its slot.
func RoomDefinition(room string) string { return Room(Prefix, room) + "def" }
