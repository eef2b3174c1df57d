package server

import (
	"time"

	"github.com/anteroom/anteroom/challenge"
	"github.com/anteroom/anteroom/config"
	"github.com/anteroom/anteroom/waitingroom"
	"github.com/anteroom/anteroom/web"
)

// arrivalsSync is how often an instance shares its rooms' arrival counts
// and reads everyone's: under_load's difficulty follows a flood within
// about a second, and costs Redis a pipeline per room per sync.
const arrivalsSync = 500 * time.Millisecond

// newChallenges converts the rooms' challenge configuration for the
// waiting page: one issuer under the cookie secrets, with the instance's
// clock.
func newChallenges(cfg *config.Config, secrets [][]byte, now func() time.Time, store *waitingroom.Store, arrivals *waitingroom.Arrivals) (*web.Challenges, error) {
	issuer, err := challenge.New(secrets, challenge.WithClock(now))
	if err != nil {
		return nil, err
	}
	policies := make(map[string]challenge.Policy, len(cfg.Rooms))
	for _, r := range cfg.Rooms {
		policies[r.ID] = r.Challenge.Policy()
	}
	return &web.Challenges{Issuer: issuer, Policies: policies, Load: arrivals, Store: store}, nil
}
