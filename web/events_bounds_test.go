package web

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// boundedStreamSite is streamSite behind a trusted proxy (127.0.0.1), with
// the hub bounded to total streams and perClient per address.
func boundedStreamSite(t *testing.T, total, perClient int) (*Server, string, string) {
	t.Helper()
	s, _, srv := streamSite(t)
	s.clientIPs = ClientIPs{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	s.streams.mu.Lock()
	s.streams.maxTotal, s.streams.maxPerClient = total, perClient
	s.streams.mu.Unlock()
	return s, srv.URL, srv.Listener.Addr().String()
}

// streamFrom opens a new ticket's event stream as client (through the
// trusted proxy) and reads up to its first event.
func streamFrom(t *testing.T, base, addr, client string) (*bufio.Reader, net.Conn) {
	t.Helper()
	path, cookie := joinedTicket(t, base)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET %s/events HTTP/1.1\r\nHost: x\r\nCookie: %s\r\nX-Forwarded-For: %s\r\n\r\n", path, cookie, client)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	if head := readHead(t, r); head[0] != "HTTP/1.1 200 OK" {
		t.Fatalf("events: %q", head)
	}
	if data := nextData(t, r); !strings.Contains(data, `"state":"waiting"`) {
		t.Fatalf("first event %q, want the status", data)
	}
	return r, conn
}

// waitHeld waits until the hub holds n streams (it takes a stream over
// just after the first event).
func waitHeld(t *testing.T, s *Server, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); s.streams.Len() != n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("hub holds %d streams, want %d", s.streams.Len(), n)
		}
	}
}

// stillOpen checks that a held stream was left alone.
func stillOpen(t *testing.T, r *bufio.Reader, conn net.Conn) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := io.Copy(io.Discard, r); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("held stream: %v, want it still open", err)
	}
}

// One address holds at most the per-address bound of streams, whatever
// tickets it has: a stream beyond gets its first event and ends, the
// answer the page follows by reconnecting after its retry delay (polling),
// as beyond the per-ticket bound. Other addresses are not affected.
func TestStreamsPerAddressAreBounded(t *testing.T) {
	s, base, addr := boundedStreamSite(t, 100, 2)
	var held [][2]any
	for i := range 2 {
		r, c := streamFrom(t, base, addr, "198.51.100.7")
		waitHeld(t, s, i+1)
		held = append(held, [2]any{r, c})
	}
	r, _ := streamFrom(t, base, addr, "198.51.100.7")
	ended(t, r)
	// An IPv6 address counts by its /64, as the join limit does.
	streamFrom(t, base, addr, "2001:db8:1:2::1")
	streamFrom(t, base, addr, "2001:db8:1:2::2")
	waitHeld(t, s, 4)
	r6, _ := streamFrom(t, base, addr, "2001:db8:1:2::3")
	ended(t, r6)
	other, otherConn := streamFrom(t, base, addr, "203.0.113.9")
	waitHeld(t, s, 5)
	stillOpen(t, other, otherConn)
	for _, h := range held {
		stillOpen(t, h[0].(*bufio.Reader), h[1].(net.Conn))
	}
	if n := testutil.ToFloat64(s.metrics.streamsRefused.WithLabelValues("address")); n != 2 {
		t.Errorf("anteroom_event_streams_refused_total{bound=address} = %v, want 2", n)
	}
	// A stream that ends frees its address's place.
	held[0][1].(net.Conn).Close()
	// A write to the closed connection fails (the first may still be
	// accepted by the socket, the peer's reset comes after it).
	for deadline := time.Now().Add(10 * time.Second); s.streams.Len() != 4; s.streams.broadcast(true) {
		if time.Now().After(deadline) {
			t.Fatal("the closed stream was not dropped")
		}
	}
	streamFrom(t, base, addr, "198.51.100.7")
	waitHeld(t, s, 5)
}

// The instance holds at most its bound of streams, which stays below the
// descriptor limit: a stream beyond it gets the polling answer, and the
// instance still accepts connections, so its health check answers while
// the bound is reached (about 20,000 streams once exhausted an instance's
// descriptors and refused every connection, health checks included).
func TestStreamsPerInstanceAreBoundedAndHealthAnswers(t *testing.T) {
	s, base, addr := boundedStreamSite(t, 3, 100)
	for i := range 3 {
		streamFrom(t, base, addr, fmt.Sprintf("198.51.100.%d", i+1))
		waitHeld(t, s, i+1)
	}
	r, _ := streamFrom(t, base, addr, "198.51.100.99")
	ended(t, r)
	if n := s.streams.Len(); n != 3 {
		t.Fatalf("hub holds %d streams, want 3", n)
	}
	if n := testutil.ToFloat64(s.metrics.streamsRefused.WithLabelValues("instance")); n != 1 {
		t.Errorf("anteroom_event_streams_refused_total{bound=instance} = %v, want 1", n)
	}
	// The instance still answers (its health check is package operator's,
	// on the same listener; any route shows the connection is accepted).
	resp, err := http.Get(base + "/api/v1/rooms/launch")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("a request with the bound reached: %v %v", resp, err)
	}
	resp.Body.Close()
}
