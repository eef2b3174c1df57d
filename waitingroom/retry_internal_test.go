package waitingroom

import (
	"errors"
	"testing"
	"time"
)

// go-redis sends a command again when its reply timed out, and a join may
// have run by then: the second run finds the request bound to its own new
// ticket. That is no copied link: the visitor gets a place, not "start
// again".
func TestJoinRunAgainAfterALostReplyIsNoCopiedLink(t *testing.T) {
	clk := &clock{now: time.UnixMilli(1_750_000_000_000)}
	r := Room{ID: "launch", Name: "launch", State: StateOpen, SessionTTL: 10 * time.Minute, MaxWait: time.Hour}
	s := miniStore(t, clk, r)
	tk := Ticket{ID: NewTicketID(), Room: "launch", JoinedAt: clk.Now()}
	first, err := s.joinAs(t.Context(), r, tk, "request", "", joinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.joinAs(t.Context(), r, tk, "request", "", joinOptions{})
	if errors.Is(err, ErrClaimed) || err != nil {
		t.Fatalf("the same join run again: %v", err)
	}
	if again.Ticket.Position <= first.Ticket.Position {
		t.Fatalf("the join run again got position %d after %d", again.Ticket.Position, first.Ticket.Position)
	}
	// Another ticket still cannot take the request.
	other := Ticket{ID: NewTicketID(), Room: "launch", JoinedAt: clk.Now()}
	if _, err := s.joinAs(t.Context(), r, other, "request", "", joinOptions{}); !errors.Is(err, ErrClaimed) {
		t.Fatalf("another ticket joining for the request: %v, want ErrClaimed", err)
	}
}
