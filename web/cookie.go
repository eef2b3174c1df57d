package web

import (
	"encoding"
	"errors"
	"net/http"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/anteroom/anteroom/keys"
	"github.com/anteroom/anteroom/waitingroom"
)

// ticketCookies encodes tickets into encrypted, authenticated cookies, one
// per room. The first secret encodes, every secret decodes, so secrets
// rotate without sending anyone to the back of the queue.
type ticketCookies struct {
	codecs []securecookie.Codec
	secure bool
	path   string
}

func newTicketCookies(secrets [][]byte, secure bool, path string) (*ticketCookies, error) {
	if len(secrets) == 0 {
		return nil, errors.New("no cookie secrets")
	}
	tc := &ticketCookies{secure: secure, path: path}
	for _, s := range secrets {
		if len(s) < 32 {
			return nil, errors.New("cookie secret shorter than 32 bytes")
		}
		c := securecookie.New(keys.DeriveKey(s, "ticket cookie mac", 64), keys.DeriveKey(s, "ticket cookie aes", 32))
		// Expiry is the ticket's own business (max wait, session TTL);
		// the codec's timestamp check would only add a second, different clock.
		c.MaxAge(0)
		c.SetSerializer(binarySerializer{})
		tc.codecs = append(tc.codecs, c)
	}
	return tc, nil
}

// binarySerializer lets securecookie carry a Ticket in its compact binary
// form instead of gob, which is larger and slower.
type binarySerializer struct{}

func (binarySerializer) Serialize(src any) ([]byte, error) {
	m, ok := src.(encoding.BinaryMarshaler)
	if !ok {
		return nil, errors.New("value is not a binary marshaler")
	}
	return m.MarshalBinary()
}

func (binarySerializer) Deserialize(src []byte, dst any) error {
	u, ok := dst.(encoding.BinaryUnmarshaler)
	if !ok {
		return errors.New("value is not a binary unmarshaler")
	}
	return u.UnmarshalBinary(src)
}

func cookieName(room string) string { return "anteroom_" + room }

// read returns the room's ticket from the request, or nil when there is
// none or it does not decode (tampered, or sealed with a retired secret).
func (tc *ticketCookies) read(r *http.Request, room string) *waitingroom.Ticket {
	c, err := r.Cookie(cookieName(room))
	if err != nil {
		return nil
	}
	var t waitingroom.Ticket
	if err := securecookie.DecodeMulti(c.Name, c.Value, &t, tc.codecs...); err != nil || t.Room != room {
		return nil
	}
	return &t
}

// write sets the ticket's cookie; it lives as long as the ticket can be used.
func (tc *ticketCookies) write(w http.ResponseWriter, t waitingroom.Ticket, r waitingroom.Room, now time.Time) error {
	value, err := securecookie.EncodeMulti(cookieName(t.Room), t, tc.codecs...)
	if err != nil {
		return err
	}
	until := t.ExpiresAt(r)
	http.SetCookie(w, &http.Cookie{
		Name:     cookieName(t.Room),
		Value:    value,
		Path:     tc.path,
		MaxAge:   max(1, int(until.Sub(now).Seconds())),
		HttpOnly: true,
		Secure:   tc.secure,
		SameSite: http.SameSiteLaxMode,
	})
	return nil
}

// clear removes the room's ticket cookie.
func (tc *ticketCookies) clear(w http.ResponseWriter, room string) {
	http.SetCookie(w, &http.Cookie{Name: cookieName(room), Value: "", Path: tc.path, MaxAge: -1,
		HttpOnly: true, Secure: tc.secure, SameSite: http.SameSiteLaxMode})
}
