package config

import "github.com/anteroom/anteroom/challenge"

// Defaults of rooms[].challenge, chosen by measurement (README, "A place
// costs a bot real work"): Chromium at 4× CPU throttling, as a mid-range
// phone, solves DefaultChallengeMaxNumber in about 1–2 s.
const (
	DefaultChallengeMaxNumber      = 200_000
	DefaultChallengeJoinsPerSecond = 50
	maxChallengeMaxNumber          = 100_000_000
)

// Challenge makes a room ask a browser without a ticket for a proof of
// work (ALTCHA's protocol) before it is given a place, so that a bot pays
// for every place in computing time while a person waits a second or two
// on the waiting page, with nothing to click.
type Challenge struct {
	// Mode is off (the default: a place costs one request), always (every
	// new visitor is challenged at max_number) or under_load (only while
	// the room's arrivals reach joins_per_second, harder as they exceed
	// it, up to 8× max_number). The admin API and the dashboard switch it
	// at run time for every instance.
	Mode string `yaml:"mode"`
	// MaxNumber is ALTCHA's maxnumber, the difficulty: a solver needs
	// max_number/2 SHA-256 hashes on average. The default is 200000.
	MaxNumber int64 `yaml:"max_number"`
	// JoinsPerSecond is under_load's threshold: new visitors per second,
	// counted across all instances. The default is 50.
	JoinsPerSecond float64 `yaml:"joins_per_second"`
}

func (c *Challenge) applyDefaults() {
	if c.Mode == "" {
		c.Mode = string(challenge.Off)
	}
	if c.MaxNumber == 0 {
		c.MaxNumber = DefaultChallengeMaxNumber
	}
	if c.JoinsPerSecond == 0 {
		c.JoinsPerSecond = DefaultChallengeJoinsPerSecond
	}
}

// Policy is the challenge as package challenge takes it.
func (c Challenge) Policy() challenge.Policy {
	return challenge.Policy{Mode: challenge.Mode(c.Mode), MaxNumber: c.MaxNumber, JoinsPerSecond: c.JoinsPerSecond}
}

// challenges checks every room's challenge.
func (v *validator) challenges(rooms []Room) {
	for i, r := range rooms {
		p := indexPath("rooms", i) + ".challenge"
		c := r.Challenge
		if !challenge.Mode(c.Mode).Valid() {
			v.add(p+".mode", "must be off, always or under_load, got %q", c.Mode)
		}
		if c.MaxNumber < 1 || c.MaxNumber > maxChallengeMaxNumber {
			v.add(p+".max_number", "must be between 1 and %d, got %d", maxChallengeMaxNumber, c.MaxNumber)
		}
		if !(c.JoinsPerSecond > 0) {
			v.add(p+".joins_per_second", "must be > 0")
		}
	}
}
