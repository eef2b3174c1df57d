package web

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/anteroom/anteroom/waitingroom"
)

// BenchmarkTicketCookieCodecs reads a ticket cookie as a status poll does,
// in the current format and in securecookie's, which it replaced.
func BenchmarkTicketCookieCodecs(b *testing.B) {
	tc, err := newTicketCookies([][]byte{bytes.Repeat([]byte{7}, 32)}, true, "/")
	if err != nil {
		b.Fatal(err)
	}
	t := waitingroom.Ticket{ID: waitingroom.NewTicketID(), Room: "launch", Position: 123456, JoinedAt: time.UnixMilli(1767225600123)}
	legacy, err := securecookie.EncodeMulti(cookieName("launch"), t, tc.legacy...)
	if err != nil {
		b.Fatal(err)
	}
	current, err := tc.value(t)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, value string }{{"securecookie", legacy}, {"box", current}} {
		req, _ := http.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Cookie", cookieName("launch")+"="+c.value)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.ReportMetric(float64(len(c.value)), "cookie-bytes")
			for b.Loop() {
				if tc.read(req, "launch") == nil {
					b.Fatal("no ticket")
				}
			}
		})
	}
}
