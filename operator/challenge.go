package operator

import (
	"context"
	"net/http"
)

// Challenges is the rooms' proof of work (a *web.Challenges): what the
// status shows and what PATCH challenge_mode switches.
type Challenges interface {
	// Challenge reports room's mode as it applies now and the difficulty
	// (ALTCHA maxnumber, 0: none) a new visitor gets; false for a room
	// without one.
	Challenge(room string) (mode string, difficulty int64, ok bool)
	// SetChallengeMode switches room's mode for every instance.
	SetChallengeMode(ctx context.Context, room, mode string) error
}

// challengeJSON is a room's challenge in its status.
type challengeJSON struct {
	Mode       string `json:"mode"`
	Difficulty int64  `json:"difficulty"`
}

func (s *Server) challengeDoc(room string) *challengeJSON {
	if s.challenges == nil {
		return nil
	}
	mode, d, ok := s.challenges.Challenge(room)
	if !ok {
		return nil
	}
	return &challengeJSON{Mode: mode, Difficulty: d}
}

// patchChallenge applies PATCH's challenge_mode; it reports false when it
// has answered with an error.
func (s *Server) patchChallenge(w http.ResponseWriter, r *http.Request, room string, mode *string) bool {
	if mode == nil {
		return true
	}
	if s.challenges == nil {
		writeJSON(w, http.StatusBadRequest, apiError{"invalid_request", "challenge_mode: this instance has no challenges"})
		return false
	}
	switch *mode {
	case "off", "always", "under_load":
	default:
		writeJSON(w, http.StatusBadRequest, apiError{"invalid_request", "challenge_mode: must be off, always or under_load"})
		return false
	}
	if err := s.challenges.SetChallengeMode(r.Context(), room, *mode); err != nil {
		s.apiStoreError(w, r, err)
		return false
	}
	return true
}
