package web

import (
	"testing"

	"github.com/anteroom/anteroom/waitingroom"
)

// A question's token answers that question only: its ticket and its
// request. A page shown before a cookie-secret rotation can still be
// answered after it, and none once the secret is retired.
func TestQuestionTokenIsBoundAndSurvivesRotation(t *testing.T) {
	old, next := testSecret(1), testSecret(2)
	ticket, other := waitingroom.NewTicketID(), waitingroom.NewTicketID()
	tok := newQuestionKeys([][]byte{old}).token(ticket, "req-1")
	for name, c := range map[string]struct {
		keys    questionKeys
		ticket  waitingroom.TicketID
		request string
		want    bool
	}{
		"as asked":                {newQuestionKeys([][]byte{old}), ticket, "req-1", true},
		"after rotation":          {newQuestionKeys([][]byte{next, old}), ticket, "req-1", true},
		"once the secret retired": {newQuestionKeys([][]byte{next}), ticket, "req-1", false},
		"for another ticket":      {newQuestionKeys([][]byte{old}), other, "req-1", false},
		"for another request":     {newQuestionKeys([][]byte{old}), ticket, "req-2", false},
	} {
		if got := c.keys.valid(tok, c.ticket, c.request); got != c.want {
			t.Errorf("%s: valid = %v, want %v", name, got, c.want)
		}
	}
	if newQuestionKeys([][]byte{old}).valid("", ticket, "req-1") {
		t.Error("an empty token is valid")
	}
}
