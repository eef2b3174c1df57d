package web

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/anteroom/anteroom/waitingroom"
)

func sampleTicket(room string) waitingroom.Ticket {
	return waitingroom.Ticket{ID: waitingroom.NewTicketID(), Room: room, Position: 42, JoinedAt: time.UnixMilli(1767225600123)}
}

// requestWith is a request carrying one cookie.
func requestWith(name, value string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(&http.Cookie{Name: name, Value: value})
	return r
}

func TestTicketCookieRoundTripsAndRefusesTampering(t *testing.T) {
	tc, err := newTicketCookies([][]byte{bytes.Repeat([]byte{1}, 32)}, true, "/")
	if err != nil {
		t.Fatal(err)
	}
	room := waitingroom.Room{ID: "launch", MaxWait: time.Hour, SessionTTL: time.Minute}
	ticket := sampleTicket("launch")
	w := httptest.NewRecorder()
	if err := tc.write(w, ticket, room, ticket.JoinedAt); err != nil {
		t.Fatal(err)
	}
	c := w.Result().Cookies()[0]
	if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.MaxAge != 3600 {
		t.Fatalf("cookie attributes: %+v", c)
	}
	got := tc.read(requestWith(c.Name, c.Value), "launch")
	if got == nil || got.ID != ticket.ID || got.Position != 42 || !got.JoinedAt.Equal(ticket.JoinedAt) {
		t.Fatalf("read %+v, want %+v", got, ticket)
	}
	// The same value under another room's name is not that room's ticket.
	if got := tc.read(requestWith(cookieName("vip"), c.Value), "vip"); got != nil {
		t.Fatalf("a cookie moved to room vip was read: %+v", got)
	}
	sealed := strings.TrimPrefix(c.Value, cookieFormat)
	for i := range sealed {
		flipped := []byte(sealed)
		flipped[i] ^= 1
		if got := tc.read(requestWith(c.Name, cookieFormat+string(flipped)), "launch"); got != nil {
			t.Fatalf("character %d changed, still read as %+v", i, got)
		}
	}
	for _, v := range []string{"", cookieFormat, "2.!!", "garbage", c.Value[:len(c.Value)-4]} {
		if got := tc.read(requestWith(c.Name, v), "launch"); got != nil {
			t.Fatalf("%q read as %+v", v, got)
		}
	}
}

func TestTicketCookiesSurviveSecretRotationAndTheFormatUpgrade(t *testing.T) {
	old, next := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	before, _ := newTicketCookies([][]byte{old}, true, "/")
	after, _ := newTicketCookies([][]byte{next, old}, true, "/")
	retired, _ := newTicketCookies([][]byte{next}, true, "/")
	ticket := sampleTicket("launch")
	sealed, _ := before.value(ticket)
	// A cookie of the earlier securecookie format, written before an upgrade.
	legacy, err := securecookie.EncodeMulti(cookieName("launch"), ticket, before.legacy...)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{sealed, legacy} {
		if got := after.read(requestWith(cookieName("launch"), v), "launch"); got == nil || got.ID != ticket.ID {
			t.Fatalf("after rotation, %q read as %+v", v, got)
		}
		if got := retired.read(requestWith(cookieName("launch"), v), "launch"); got != nil {
			t.Fatalf("with the old secret gone, %q still read as %+v", v, got)
		}
	}
	// New cookies are sealed with the first secret: readable without the old one.
	fresh, _ := after.value(ticket)
	if got := retired.read(requestWith(cookieName("launch"), fresh), "launch"); got == nil {
		t.Fatal("a cookie written after rotation needs the old secret")
	}
}
