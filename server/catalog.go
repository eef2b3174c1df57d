package server

import (
	"context"
	"errors"
	"log/slog"

	"github.com/anteroom/anteroom/catalog"
	"github.com/anteroom/anteroom/config"
	"github.com/anteroom/anteroom/oidc"
	"github.com/anteroom/anteroom/operator"
	"github.com/anteroom/anteroom/waitingroom"
)

// The rooms and clients an operator creates at run time (package catalog)
// are served beside the file's: applyCatalog makes the store's rooms and
// the provider's clients the file's plus the catalog's. The file wins: a
// runtime definition with an id of the file is left out (the admin API
// refuses to create one; this covers a file changed afterwards).

// roomOf converts a room of the file (or of the catalog) for the queue.
func roomOf(r config.Room) waitingroom.Room {
	var p waitingroom.Policy
	if r.Admission.RatePerMinute != nil {
		p.RatePerMinute = *r.Admission.RatePerMinute
	}
	if r.Admission.MaxActive != nil {
		p.MaxActive = *r.Admission.MaxActive
	}
	opens, closes := r.Schedule()
	var lanes []waitingroom.Lane
	for _, l := range r.Lanes {
		lanes = append(lanes, waitingroom.Lane{ID: l.ID, Weight: l.Weight})
	}
	return waitingroom.Room{Lanes: lanes,
		ID: r.ID, Name: r.Name, Message: r.Message, State: waitingroom.State(r.State),
		Policy: p, SessionTTL: r.SessionTTL.D(), MaxWait: r.MaxWait.D(),
		OpensAt: opens, ClosesAt: closes, AbandonAfter: r.Abandonment(), Method: waitingroom.Method(r.Queueing),
	}
}

// catalogApplier applies catalog snapshots to one instance.
type catalogApplier struct {
	cfg      *config.Config
	store    *waitingroom.Store
	cache    *waitingroom.Cache
	provider *oidc.Provider
}

func (a *catalogApplier) apply(ctx context.Context, snap catalog.Snapshot) error {
	all := rooms(a.cfg)
	for _, r := range snap.Rooms {
		if _, file := a.cfg.Room(r.ID); file {
			slog.Warn("runtime room left out: the configuration file defines its id, and the file wins", "room", r.ID)
			continue
		}
		all = append(all, roomOf(r.Room))
	}
	if err := a.store.SetRooms(ctx, all); err != nil {
		return err
	}
	var extra []oidc.RuntimeClient
	for _, c := range snap.Clients {
		if _, file := a.cfg.Client(c.ID); file {
			slog.Warn("runtime client left out: the configuration file defines its id, and the file wins", "client", c.ID)
			continue
		}
		extra = append(extra, oidc.RuntimeClient{Client: c.Client, SecretHash: c.SecretHash})
	}
	err := a.provider.SetClients(extra)
	// The new rooms' counters, at once rather than at the next refresh.
	if rerr := a.cache.Refresh(ctx); rerr != nil && !errors.Is(rerr, context.Canceled) {
		slog.Warn("refresh counters after a catalog change", "err", rerr)
	}
	return err
}

// fileClients are the file's clients without their secrets, for the
// admin API's listing.
func fileClients(cfg *config.Config) []config.Client {
	out := make([]config.Client, len(cfg.Clients))
	for i, c := range cfg.Clients {
		c.Secret = map[bool]string{true: "", false: "set"}[c.Public()]
		out[i] = c
	}
	return out
}

// fileRoomIDs are the ids of the file's rooms.
func fileRoomIDs(cfg *config.Config) []string {
	out := make([]string, len(cfg.Rooms))
	for i, r := range cfg.Rooms {
		out[i] = r.ID
	}
	return out
}

// adminTokens converts admin.tokens for the operator's side.
func adminTokens(cfg *config.Config) []operator.Token {
	out := make([]operator.Token, len(cfg.Admin.Tokens))
	for i, t := range cfg.Admin.Tokens {
		out[i] = operator.Token{Name: t.Name, Token: t.Token, Role: operator.Role(t.Role)}
	}
	return out
}
