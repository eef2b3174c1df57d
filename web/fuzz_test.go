package web

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/anteroom/anteroom/waitingroom"
)

// Fuzz targets for everything this package parses from a request itself:
// ticket cookies, Accept-Language and X-Request-Id (the admin API's are
// package operator's). Each checks a property, not only the absence of a panic.
// CI runs each for a few seconds (.ci/fuzz); docs/security.md gives the command
// for a long run. Their seeds, and every input that once failed, are in
// testdata/fuzz/<target>.

var fuzzRoom = waitingroom.Room{ID: "launch", Name: "Launch", State: waitingroom.StateOpen,
	SessionTTL: 30 * time.Minute, MaxWait: 6 * time.Hour}

// fuzzTickets are tickets as Anteroom issues them: waiting, admitted,
// pre-queue and skipped, in two rooms.
func fuzzTickets() []waitingroom.Ticket {
	joined := time.UnixMilli(1_750_000_000_123)
	return []waitingroom.Ticket{
		{ID: waitingroom.TicketID{1, 2, 3}, Room: "launch", Position: 42, JoinedAt: joined},
		{ID: waitingroom.TicketID{4, 5, 6}, Room: "launch", Position: 7, JoinedAt: joined, AdmittedAt: joined.Add(time.Minute)},
		{ID: waitingroom.TicketID{7, 8, 9}, Room: "launch", PreQueue: 3, JoinedAt: joined},
		{ID: waitingroom.TicketID{10}, Room: "launch", Position: 1 << 40, JoinedAt: joined, Skipped: true},
		{ID: waitingroom.TicketID{11}, Room: "vip", Position: 2, JoinedAt: joined},
	}
}

// issueCookie returns the Set-Cookie of t as tc writes it.
func issueCookie(t testing.TB, tc *ticketCookies, tk waitingroom.Ticket) *http.Cookie {
	t.Helper()
	w := httptest.NewRecorder()
	r := fuzzRoom
	r.ID = tk.Room
	if err := tc.write(w, tk, r, tk.JoinedAt); err != nil {
		t.Fatalf("write %+v: %v", tk, err)
	}
	cs := w.Result().Cookies()
	if len(cs) != 1 {
		t.Fatalf("write %+v set %d cookies", tk, len(cs))
	}
	return cs[0]
}

func sameTicket(a, b waitingroom.Ticket) bool {
	return a.ID == b.ID && a.Room == b.Room && a.Position == b.Position && a.PreQueue == b.PreQueue &&
		a.Skipped == b.Skipped && a.JoinedAt.Equal(b.JoinedAt) && a.Admitted() == b.Admitted() &&
		(!a.Admitted() || a.AdmittedAt.Equal(b.AdmittedAt))
}

// FuzzTicketCookie: a ticket cookie is read only if Anteroom wrote it, for
// the room whose cookie it is. Whatever the fuzzer makes of the cookie's
// value or name, read returns nil or one of the tickets issued, never a
// changed one and never one of another room (a cookie renamed to another
// room's name). The codecs rotate: the old secret still opens.
func FuzzTicketCookie(f *testing.F) {
	old, err := newTicketCookies([][]byte{testSecret(2)}, true, "/")
	if err != nil {
		f.Fatal(err)
	}
	tc, err := newTicketCookies([][]byte{testSecret(1), testSecret(2)}, true, "/")
	if err != nil {
		f.Fatal(err)
	}
	issued := fuzzTickets()
	for i, tk := range issued {
		codec := tc
		if i%2 == 1 {
			codec = old
		}
		c := issueCookie(f, codec, tk)
		f.Add(tk.Room, c.Value)
		f.Add("vip", c.Value) // moved to another room's cookie
	}
	f.Add("launch", "")
	f.Add("launch", "MTc1MDAwMDAwMHx8")
	f.Fuzz(func(t *testing.T, room, value string) {
		r := httptest.NewRequest(http.MethodGet, "/wait/x", nil)
		r.Header.Set("Cookie", cookieName(room)+"="+value)
		got := tc.read(r, room)
		if got == nil {
			return
		}
		if got.Room != room {
			t.Fatalf("the cookie of room %q read as a ticket of room %q", room, got.Room)
		}
		for _, tk := range issued {
			if sameTicket(*got, tk) {
				return
			}
		}
		t.Fatalf("read %+v from %q, which was never issued", *got, value)
	})
}

// FuzzTicketCookieRoundTrip: every ticket the queue can hand out comes
// back from its cookie unchanged.
func FuzzTicketCookieRoundTrip(f *testing.F) {
	tc, err := newTicketCookies([][]byte{testSecret(1)}, true, "/queue")
	if err != nil {
		f.Fatal(err)
	}
	for _, tk := range fuzzTickets() {
		f.Add(tk.ID[:], tk.Room, tk.Position, tk.PreQueue, tk.JoinedAt.UnixMilli(), tk.AdmittedAt.UnixMilli(), tk.Skipped)
	}
	f.Fuzz(func(t *testing.T, id []byte, room string, position, prequeue, joined, admitted int64, skipped bool) {
		tk := waitingroom.Ticket{Room: room, Position: position, PreQueue: prequeue, JoinedAt: time.UnixMilli(joined),
			Skipped: skipped}
		copy(tk.ID[:], id)
		if admitted != 0 {
			tk.AdmittedAt = time.UnixMilli(admitted)
		}
		// Only tickets the queue can hand out: a room id as config allows,
		// a position, or a pre-queue number before the draw.
		if !validRoomID(room) || position < 0 || prequeue < 0 || (position == 0 && prequeue == 0) {
			return
		}
		c := issueCookie(t, tc, tk)
		r := httptest.NewRequest(http.MethodGet, "/queue/wait/x", nil)
		r.AddCookie(c)
		got := tc.read(r, room)
		if got == nil || !sameTicket(*got, tk) {
			t.Fatalf("wrote %+v, read back %+v", tk, got)
		}
	})
}

// validRoomID is config's rule for room ids.
func validRoomID(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '_' || c == '-')
		if !ok {
			return false
		}
	}
	return true
}

// FuzzAcceptLanguage: any Accept-Language picks one of the languages the
// site has, and the page says which in <html lang>.
func FuzzAcceptLanguage(f *testing.F) {
	th, err := loadTheme("", pageFuncs())
	if err != nil {
		f.Fatal(err)
	}
	known := map[*lang]bool{}
	for _, l := range th.locales.langs {
		known[l] = true
	}
	for _, s := range []string{"de-DE,de;q=0.9,en;q=0.8", "*", "fr;q=0", "en-US", "x-klingon;q=1.0", ";q=", "de;q=0.5,de;q=0.6"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		if l := th.locales.pick(header); !known[l] {
			t.Fatalf("Accept-Language %q picked a language the site does not have: %+v", header, l)
		}
	})
}

// FuzzRequestID: a request id from the client is echoed only when it is a
// short token of safe characters (it goes into every log line); anything
// else gets a fresh id.
func FuzzRequestID(f *testing.F) {
	for _, s := range []string{"abc-123", "", "a b", "x\nlevel=ERROR", strings.Repeat("a", 65), "ok.id_1"} {
		f.Add(s)
	}
	h := RequestIDs(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(RequestID(r.Context())))
	}))
	f.Fuzz(func(t *testing.T, id string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header["X-Request-Id"] = []string{id}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		got := w.Header().Get("X-Request-Id")
		if got != w.Body.String() || !plausibleID(got) || url.PathEscape(got) != got {
			t.Fatalf("request id %q became %q (context %q)", id, got, w.Body.String())
		}
		if got != id && plausibleID(id) {
			t.Fatalf("plausible request id %q replaced by %q", id, got)
		}
	})
}
