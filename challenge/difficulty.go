package challenge

import (
	"fmt"
	"math"
)

// Mode says when a room challenges a visitor who has no ticket for it.
type Mode string

// The modes of rooms[].challenge.mode.
const (
	// Off never challenges: a place costs one request.
	Off Mode = "off"
	// Always challenges every new visitor at Policy.MaxNumber.
	Always Mode = "always"
	// UnderLoad challenges only while the room's arrivals reach
	// Policy.JoinsPerSecond, harder the more they exceed it.
	UnderLoad Mode = "under_load"
)

// Valid reports whether m is one of the modes.
func (m Mode) Valid() bool { return m == Off || m == Always || m == UnderLoad }

// MaxLoadFactor caps how far under_load raises the difficulty above
// max_number: at eight times the room's joins_per_second a person's phone
// spends eight times as long (about 10 s at the default), and no more, so
// that a flood cannot lock people out altogether.
const MaxLoadFactor = 8

// Policy is a room's challenge configuration (rooms[].challenge).
type Policy struct {
	Mode Mode
	// MaxNumber is ALTCHA's maxnumber: the expected work is half of it in
	// SHA-256 hashes.
	MaxNumber int64
	// JoinsPerSecond is under_load's threshold: arrivals per second (all
	// instances) from which visitors are challenged.
	JoinsPerSecond float64
}

// Validate checks p's fields, naming them as the configuration does.
func (p Policy) Validate() error {
	switch {
	case !p.Mode.Valid():
		return fmt.Errorf("mode: must be off, always or under_load, got %q", p.Mode)
	case p.MaxNumber < 1:
		return fmt.Errorf("max_number: must be >= 1, got %d", p.MaxNumber)
	case !(p.JoinsPerSecond > 0):
		return fmt.Errorf("joins_per_second: must be > 0")
	}
	return nil
}

// Difficulty is the maxnumber to challenge a new visitor with, given the
// room's arrivals per second (all instances); 0 means no challenge.
// under_load challenges from the threshold on, at max_number, and raises
// the difficulty in proportion to how far arrivals exceed the threshold,
// up to MaxLoadFactor times; it falls again as they drop, and below the
// threshold a visitor joins with no challenge (a quiet room stays one
// redirect).
func (p Policy) Difficulty(arrivalsPerSecond float64) int64 {
	switch p.Mode {
	case Always:
		return p.MaxNumber
	case UnderLoad:
		if p.JoinsPerSecond <= 0 || arrivalsPerSecond < p.JoinsPerSecond {
			return 0
		}
		f := min(arrivalsPerSecond/p.JoinsPerSecond, MaxLoadFactor)
		return int64(math.Round(float64(p.MaxNumber) * f))
	default:
		return 0
	}
}
