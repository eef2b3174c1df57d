package web

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/anteroom/anteroom/keys"
	"github.com/anteroom/anteroom/waitingroom"
)

// ticketCookies seals tickets into cookies, one per room: AES-256-GCM (a
// keys.Box) under keys derived from secrets.cookie_keys, the cookie's name
// as additional data, so a ticket cannot be moved to another room's cookie.
// The first secret seals, every secret opens, so secrets rotate without
// sending anyone to the back of the queue.
//
// Earlier versions sealed tickets with gorilla/securecookie (HMAC-SHA256
// over AES-CTR, base64 twice); those cookies are still read, so nobody
// loses their place across an upgrade, but no longer written: reading one
// cost three times as much on the status poll, the hottest path there is
// (BenchmarkTicketCookieCodecs).
type ticketCookies struct {
	box    *keys.Box
	legacy []securecookie.Codec
	secure bool
	path   string
}

// cookieFormat starts every value this version writes; a securecookie value
// is base64 and never contains a dot.
const cookieFormat = "2."

func newTicketCookies(secrets [][]byte, secure bool, path string) (*ticketCookies, error) {
	if len(secrets) == 0 {
		return nil, errors.New("no cookie secrets")
	}
	box, err := keys.NewBox(secrets, "ticket cookie")
	if err != nil {
		return nil, err
	}
	tc := &ticketCookies{box: box, secure: secure, path: path}
	for _, s := range secrets {
		c := securecookie.New(keys.DeriveKey(s, "ticket cookie mac", 64), keys.DeriveKey(s, "ticket cookie aes", 32))
		c.MaxAge(0)
		c.SetSerializer(binarySerializer{})
		tc.legacy = append(tc.legacy, c)
	}
	return tc, nil
}

// binarySerializer let securecookie carry a Ticket in its compact binary
// form; it remains for reading cookies of the earlier format.
type binarySerializer struct{}

func (binarySerializer) Serialize(src any) ([]byte, error) {
	t, ok := src.(waitingroom.Ticket)
	if !ok {
		return nil, errors.New("value is not a ticket")
	}
	return t.MarshalBinary()
}

func (binarySerializer) Deserialize(src []byte, dst any) error {
	t, ok := dst.(*waitingroom.Ticket)
	if !ok {
		return errors.New("value is not a ticket")
	}
	return t.UnmarshalBinary(src)
}

func cookieName(room string) string { return "anteroom_" + room }

// cookieBuffers are scratch space for decoding a cookie: every status poll
// reads one.
var cookieBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// read returns the room's ticket from the request, or nil when there is
// none or it does not open (tampered, another room's, or sealed with a
// retired secret).
func (tc *ticketCookies) read(r *http.Request, room string) *waitingroom.Ticket {
	c, err := r.Cookie(cookieName(room))
	if err != nil {
		return nil
	}
	var t waitingroom.Ticket
	if sealed, ok := strings.CutPrefix(c.Value, cookieFormat); ok {
		err = tc.open(c.Name, sealed, &t)
	} else {
		err = securecookie.DecodeMulti(c.Name, c.Value, &t, tc.legacy...)
	}
	if err != nil || t.Room != room {
		return nil
	}
	return &t
}

func (tc *ticketCookies) open(name, value string, t *waitingroom.Ticket) error {
	bp := cookieBuffers.Get().(*[]byte)
	defer cookieBuffers.Put(bp)
	src := append((*bp)[:0], value...)
	raw, err := base64.RawURLEncoding.AppendDecode(src[len(src):], src)
	if err != nil {
		return err
	}
	plain, err := tc.box.AppendOpen(raw[len(raw):], raw, []byte(name))
	if err != nil {
		return err
	}
	return t.UnmarshalBinary(plain)
}

// value seals a ticket into a cookie value.
func (tc *ticketCookies) value(t waitingroom.Ticket) (string, error) {
	raw, err := t.MarshalBinary()
	if err != nil {
		return "", err
	}
	return cookieFormat + base64.RawURLEncoding.EncodeToString(tc.box.Seal(raw, []byte(cookieName(t.Room)))), nil
}

// write sets the ticket's cookie; it lives as long as the ticket can be used.
func (tc *ticketCookies) write(w http.ResponseWriter, t waitingroom.Ticket, r waitingroom.Room, now time.Time) error {
	value, err := tc.value(t)
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

// TicketID returns the id of the ticket in the request's cookie for room,
// opened but not looked up (no Redis): the built-in gate finishes a login
// only in the browser that holds the ticket it admitted.
func (s *Server) TicketID(r *http.Request, room string) (string, bool) {
	t := s.cookies.read(r, room)
	if t == nil {
		return "", false
	}
	return t.ID.String(), true
}

// clear removes the room's ticket cookie.
func (tc *ticketCookies) clear(w http.ResponseWriter, room string) {
	http.SetCookie(w, &http.Cookie{Name: cookieName(room), Value: "", Path: tc.path, MaxAge: -1,
		HttpOnly: true, Secure: tc.secure, SameSite: http.SameSiteLaxMode})
}
