package oidc

import (
	"context"
	"net/http"

	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/anteroom/anteroom/waitingroom"
)

// The provider's side of rooms with an identity provider (rooms[].identity;
// the browser's side is web/upstream.go, the relying party's package
// upstream). The tokens of such a room name the person, not the ticket:
// sub is the person's stable subject (upstream.Identity.Key), the
// allow-listed claims of the site's provider ride beside the queue claims,
// and sid names the ticket whose session the tokens live by.

// Person is who the site's provider vouched for, as Anteroom's tokens will
// name them.
type Person struct {
	// Subject is Anteroom's sub for the person (upstream.Identity.Key).
	Subject string
	// Claims are the provider's allow-listed claims.
	Claims map[string]any
}

// FinishAs is Finish for a room with an identity provider: the tokens name
// the person with subject (sub), and carry their allow-listed claims.
func (r *Pending) FinishAs(w http.ResponseWriter, req *http.Request, t waitingroom.Ticket, subject string, claims map[string]any) error {
	return r.finish(w, req, t, &Person{Subject: subject, Claims: claims})
}

// Refuse ends the request at the relying party with access_denied and
// description (OIDC Core §3.1.2.6): the site's provider denied the person,
// its answer failed validation, or the room's require rules refused them.
// The description is a fixed phrase, never the provider's text.
func (r *Pending) Refuse(w http.ResponseWriter, req *http.Request, description string) {
	r.refuse(w, req, zoidc.ErrAccessDenied().WithDescription("%s", description))
}

// terminatePerson ends the session of the person with subject in room
// (end_session with an ID token of a room with an identity provider) and
// forgets their place, so their next sign-in queues again.
func (s *storage) terminatePerson(ctx context.Context, room, subject string) error {
	t, ok, err := s.rooms.IdentityTicket(ctx, room, subject)
	if err != nil {
		return down(ctx, err)
	}
	if !ok {
		return nil
	}
	if _, err := s.rooms.EndSession(ctx, room, t.ID); err != nil {
		return down(ctx, err)
	}
	if err := s.rooms.ForgetIdentity(ctx, room, subject, t.ID); err != nil {
		return down(ctx, err)
	}
	return nil
}

// personClaims is claimsOf for a person's ticket.
func personClaims(t waitingroom.Ticket, r waitingroom.Room, p *Person) QueueClaims {
	q := claimsOf(t, r)
	if p != nil {
		q.Ticket, q.Subject, q.Identity = q.Subject, p.Subject, p.Claims
	}
	return q
}
