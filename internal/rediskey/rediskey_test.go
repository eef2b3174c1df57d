package rediskey

import "testing"

// The names are a deployment's data: a change here strands every key the
// instances before it wrote (see cmd/anteroom's TestRedisKeyNamesArePinned
// for the names a running instance writes).
func TestNamesArePinned(t *testing.T) {
	for got, want := range map[string]string{
		Prefix:                   "anteroom",
		AuthRequest + "x":        "anteroom:ar:x",
		AccessToken + "x":        "anteroom:at:x",
		RefreshToken + "x":       "anteroom:rt:x",
		RevokedGrant + "x":       "anteroom:rg:x",
		SigningKeys:              "anteroom:keys",
		Room(Prefix, "launch"):   "anteroom:{r:launch}:",
		CatalogRooms:             "anteroom:catalog:rooms",
		CatalogClients:           "anteroom:catalog:clients",
		CatalogVersion:           "anteroom:catalog:version",
		CatalogChanged:           "anteroom:catalog:changed",
		Audit:                    "anteroom:audit",
		RoomDefinition("launch"): "anteroom:{r:launch}:def",
	} {
		if got != want {
			t.Errorf("%q, want %q", got, want)
		}
	}
}
