package server

import (
	"slices"
	"strings"
	"time"

	"github.com/anteroom/anteroom/config"
	"github.com/anteroom/anteroom/internal/route"
	"github.com/anteroom/anteroom/upstream"
	"github.com/anteroom/anteroom/web"
)

// identities builds the rooms' identity providers (rooms[].identity). Rooms
// that name the same provider with the same registration share one
// upstream.Provider, and so its cached discovery and keys.
func identities(cfg *config.Config, now func() time.Time) (map[string]web.Identity, error) {
	out := map[string]web.Identity{}
	shared := map[string]*upstream.Provider{}
	for _, r := range cfg.Rooms {
		id := r.Identity
		if id == nil {
			continue
		}
		key := strings.Join(append([]string{id.Issuer, id.ClientID, id.ClientSecret}, id.Scopes...), "\x00")
		p, ok := shared[key]
		if !ok {
			var err error
			p, err = upstream.New(upstream.Config{Issuer: id.Issuer, ClientID: id.ClientID, ClientSecret: id.ClientSecret,
				Scopes: id.Scopes, RedirectURL: cfg.Issuer + route.UpstreamCallback, Now: now})
			if err != nil {
				return nil, err
			}
			shared[key] = p
		}
		rules := make([]upstream.Rule, len(id.Require))
		for i, rule := range id.Require {
			rules[i] = upstream.Rule{Claim: rule.Claim, Values: slices.Clone(rule.Values)}
		}
		out[r.ID] = web.Identity{Provider: p, Claims: slices.Clone(id.Claims), Require: rules}
	}
	return out, nil
}
