package web

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/anteroom/anteroom/waitingroom"
)

// Fuzz targets for everything this package parses from a request itself:
// ticket cookies, the admin API's bodies and cookie, Accept-Language and
// X-Request-Id. Each checks a property, not only the absence of a panic.
// CI runs each for a few seconds (.ci/fuzz); the README gives the command
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

// fuzzSite is a Server over an in-process miniredis with the room
// "launch" (manual) and an admin token; one per fuzzing process.
func fuzzSite(f *testing.F) (http.Handler, *waitingroom.Store) {
	f.Helper()
	m := miniredis.NewMiniRedis()
	if err := m.Start(); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(m.Close)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	f.Cleanup(func() { rdb.Close() })
	store, err := waitingroom.NewStore(rdb, []waitingroom.Room{fuzzRoom})
	if err != nil {
		f.Fatal(err)
	}
	if err := store.Seed(context.Background()); err != nil {
		f.Fatal(err)
	}
	o := testOptions("")
	o.Store, o.Cache, o.AdminToken = store, waitingroom.NewCache(store, time.Second), fuzzAdminToken
	s, err := New(o)
	if err != nil {
		f.Fatal(err)
	}
	mux := http.NewServeMux()
	s.Register(mux)
	return SecurityHeaders(mux), store
}

const fuzzAdminToken = "admin-token-0123456789"

// FuzzAdminAPIBodies: the admin API answers a body it cannot take with 400
// and changes nothing, never 5xx; a body it takes is exactly one JSON
// object of known fields, and the room then says what the body said.
func FuzzAdminAPIBodies(f *testing.F) {
	h, store := fuzzSite(f)
	for _, s := range []string{
		`{"state":"paused"}`, `{"state":"open","rate_per_minute":30}`, `{"max_active":5}`, `{"rate_per_minute":0,"max_active":0}`,
		`{"count":3}`, `{"count":1000000}`, `{"count":1000001}`, `{"count":0}`, `{"count":1.5}`, `{"count":"2"}`,
		`{"state":"asleep"}`, `{"rate_per_minute":-1}`, `{"rate_per_minute":1e400}`, `{"colour":"red"}`,
		`{"state":"paused"} {"state":"open"}`, `{"state":"paused"}x`, `[]`, `null`, ``, `{"STATE":"closed"}`,
	} {
		f.Add(true, []byte(s))
		f.Add(false, []byte(s))
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, patch bool, body []byte) {
		before, err := store.Status(ctx, "launch")
		if err != nil {
			t.Fatal(err)
		}
		method, path := http.MethodPost, "/admin/v1/rooms/launch/advance"
		if patch {
			method, path = http.MethodPatch, "/admin/v1/rooms/launch"
		}
		r := httptest.NewRequest(method, path, bytes.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+fuzzAdminToken)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		after, err := store.Status(ctx, "launch")
		if err != nil {
			t.Fatal(err)
		}
		switch w.Code {
		case http.StatusBadRequest:
			if before.State != after.State || before.Policy != after.Policy || before.Serving != after.Serving {
				t.Fatalf("%s %q refused, but the room changed from %+v to %+v", method, body, before, after)
			}
			return
		case http.StatusOK:
		default:
			t.Fatalf("%s %q: %d %s", method, body, w.Code, w.Body)
		}
		if !json.Valid(body) {
			t.Fatalf("%s took %q, which is not one JSON value", method, body)
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
			t.Fatalf("%s took %q, which is not a JSON object", method, body)
		}
		if !patch {
			n, err := strconv.ParseInt(string(fields["count"]), 10, 64)
			if err != nil || n < 1 || n > 1_000_000 || len(fields) != 1 {
				t.Fatalf("advance took %q", body)
			}
			if after.Serving < before.Serving || after.Serving > after.Tail {
				t.Fatalf("advance %q moved serving from %d to %d (tail %d)", body, before.Serving, after.Serving, after.Tail)
			}
			return
		}
		for k, v := range fields {
			var want any
			switch k {
			case "state":
				var s *waitingroom.State
				_ = json.Unmarshal(v, &s)
				if s != nil && after.State != *s {
					t.Fatalf("patch %q left state %q", body, after.State)
				}
			case "rate_per_minute":
				var rate *float64
				_ = json.Unmarshal(v, &rate)
				if rate != nil && after.Policy.RatePerMinute != *rate {
					t.Fatalf("patch %q left rate %v", body, after.Policy.RatePerMinute)
				}
			case "max_active":
				var n *int
				_ = json.Unmarshal(v, &n)
				if n != nil && after.Policy.MaxActive != *n {
					t.Fatalf("patch %q left max_active %v", body, after.Policy.MaxActive)
				}
			default:
				t.Fatalf("patch took %q with the unknown field %q (%v)", body, k, want)
			}
		}
		// Put the room back, so the next input starts from the same place.
		if err := store.SetState(ctx, "launch", before.State); err != nil {
			t.Fatal(err)
		}
		if err := store.SetPolicy(ctx, "launch", before.Policy); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzAdminSessionCookie: the dashboard's cookie verifies only when it
// carries an expiry that Anteroom signed, and only before that expiry.
func FuzzAdminSessionCookie(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	a := newAdminSessions([][]byte{testSecret(1), testSecret(2)}, fuzzAdminToken, true, "/admin/")
	issued := map[string]bool{}
	for _, d := range []time.Duration{time.Hour, adminSessionTTL, -time.Hour} {
		v := a.value(now.Add(d))
		issued[v[:strings.LastIndexByte(v, '.')]] = true
		f.Add(v)
	}
	f.Add("v1.99999999999.")
	f.Add("v1.-1.AAAA")
	f.Fuzz(func(t *testing.T, v string) {
		if !a.valid(v, now) {
			return
		}
		payload := v[:strings.LastIndexByte(v, '.')]
		if !issued[payload] {
			t.Fatalf("%q verifies, but its payload %q was never signed", v, payload)
		}
		exp, _ := strconv.ParseInt(strings.TrimPrefix(payload, "v1."), 10, 64)
		if !now.Before(time.Unix(exp, 0)) {
			t.Fatalf("%q verifies after its expiry", v)
		}
	})
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
