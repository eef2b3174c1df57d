package web

import (
	"bufio"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// joinedTicket joins a new request and returns its path and the cookie
// header that carries its ticket.
func joinedTicket(t *testing.T, base string) (path, cookie string) {
	t.Helper()
	path = newRequestPath()
	resp, err := http.Get(base + path + "?format=json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var parts []string
	for _, c := range resp.Cookies() {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return path, strings.Join(parts, "; ")
}

// rawEvents sends a hand-written request for path's event stream and
// returns the connection, whose receive buffer is set to rcvbuf bytes when
// rcvbuf > 0.
func rawEvents(t *testing.T, addr, method, proto, path, cookie string, rcvbuf int) net.Conn {
	t.Helper()
	d := net.Dialer{}
	if rcvbuf > 0 {
		d.Control = func(_, _ string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf) })
		}
	}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "%s %s/events %s\r\nHost: x\r\nCookie: %s\r\n\r\n", method, path, proto, cookie)
	return conn
}

// readHead reads a response head and returns its lines.
func readHead(t *testing.T, r *bufio.Reader) []string {
	t.Helper()
	var head []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("response head: %v (so far %q)", err, head)
		}
		if line == "\r\n" {
			return head
		}
		head = append(head, strings.TrimSpace(line))
	}
}

func hasLine(head []string, want string) bool {
	for _, h := range head {
		if strings.EqualFold(h, want) {
			return true
		}
	}
	return false
}

// A held stream is written to by the hub, not by net/http: its head says
// the body ends with the connection, so no proxy reuses that connection
// for another request.
func TestHeldStreamClosesItsConnection(t *testing.T) {
	_, _, srv := streamSite(t)
	path, cookie := joinedTicket(t, srv.URL)
	conn := rawEvents(t, srv.Listener.Addr().String(), "GET", "HTTP/1.1", path, cookie, 0)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	head := readHead(t, bufio.NewReader(conn))
	if !hasLine(head, "Connection: close") || !hasLine(head, "Transfer-Encoding: chunked") {
		t.Errorf("held stream's head %q lacks Connection: close or chunked encoding", head)
	}
}

// A HEAD has no body (RFC 9110 §9.3.2): a proxy keeping the connection
// alive would read one as the next response.
func TestEventsHeadHasNoBody(t *testing.T) {
	_, _, srv := streamSite(t)
	path, cookie := joinedTicket(t, srv.URL)
	conn := rawEvents(t, srv.Listener.Addr().String(), "HEAD", "HTTP/1.1", path, cookie, 0)
	r := bufio.NewReader(conn)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	head := readHead(t, r)
	if head[0] != "HTTP/1.1 200 OK" || !hasLine(head, "Content-Type: text/event-stream") {
		t.Fatalf("HEAD events: %q", head)
	}
	// The connection stays open for the next request; anything readable
	// before the deadline is a body that must not be there.
	_ = conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if b, _ := io.ReadAll(r); len(b) != 0 {
		t.Errorf("HEAD response carries a body: %q", b)
	}
}

// HTTP/1.0 has no chunked encoding (RFC 9112 §6.1): such a client gets
// the current status as a whole body and polls again after retry.
func TestEventsHTTP10GetsAPlainBody(t *testing.T) {
	_, _, srv := streamSite(t)
	path, cookie := joinedTicket(t, srv.URL)
	conn := rawEvents(t, srv.Listener.Addr().String(), "GET", "HTTP/1.0", path, cookie, 0)
	r := bufio.NewReader(conn)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	head := readHead(t, r)
	if hasLine(head, "Transfer-Encoding: chunked") {
		t.Errorf("HTTP/1.0 request answered with chunked encoding: %q", head)
	}
	body, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), "retry: ") || !strings.Contains(string(body), `data: {"`) {
		t.Errorf("HTTP/1.0 body: %q", body)
	}
}

// A script that opens stream after stream for one ticket holds at most
// maxStreamsPerTicket of them: each one beyond gets its first event and
// ends (that page polls), and the streams held are left alone, so a
// visitor with a tab too many does not have their streams end one another
// in turn.
func TestStreamsPerTicketAreBounded(t *testing.T) {
	s, _, srv := streamSite(t)
	path, cookie := joinedTicket(t, srv.URL)
	addr := srv.Listener.Addr().String()
	var conns []net.Conn
	var readers []*bufio.Reader
	for i := range maxStreamsPerTicket + 2 {
		conn := rawEvents(t, addr, "GET", "HTTP/1.1", path, cookie, 0)
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(conn)
		readHead(t, r)
		conns, readers = append(conns, conn), append(readers, r)
		// The hub takes a stream over after its head is written: wait for
		// it, so the streams beyond the bound are the last ones.
		for deadline := time.Now().Add(10 * time.Second); i < maxStreamsPerTicket && s.streams.Len() < i+1; {
			if time.Now().After(deadline) {
				t.Fatalf("the hub took %d streams, want %d", s.streams.Len(), i+1)
			}
			time.Sleep(time.Millisecond)
		}
	}
	for _, r := range readers[maxStreamsPerTicket:] {
		if data := nextData(t, r); !strings.Contains(data, `"state":"waiting"`) {
			t.Errorf("a stream beyond the bound got %q, want the status", data)
		}
		ended(t, r)
	}
	if n := s.streams.Len(); n != maxStreamsPerTicket {
		t.Errorf("hub holds %d streams of one ticket, want %d", n, maxStreamsPerTicket)
	}
	for i, r := range readers[:maxStreamsPerTicket] {
		nextData(t, r)
		_ = conns[i].SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := io.Copy(io.Discard, r); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("held stream %d: %v, want it still open", i, err)
		}
	}
	// Another ticket is not affected.
	other, body := openStream(t, srv)
	defer body.Close()
	nextData(t, other)
	for deadline := time.Now().Add(10 * time.Second); s.streams.Len() != maxStreamsPerTicket+1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("hub holds %d streams, want %d", s.streams.Len(), maxStreamsPerTicket+1)
		}
	}
	if n := testutil.ToFloat64(s.metrics.streams); n != maxStreamsPerTicket+1 {
		t.Errorf("anteroom_event_streams = %v, want %d", n, maxStreamsPerTicket+1)
	}
	s.CloseStreams()
	if n := testutil.ToFloat64(s.metrics.streams); n != 0 {
		t.Errorf("anteroom_event_streams after CloseStreams = %v, want 0", n)
	}
}

// Clients that open streams and never read must not hold up the others: once
// a write to one would block, the hub drops it, and the visitors who read
// keep getting their news.
func TestStalledStreamsAreDropped(t *testing.T) {
	s, _, srv := streamSite(t)
	good, goodBody := openStream(t, srv)
	defer goodBody.Close()
	nextData(t, good)
	go func() { _, _ = io.Copy(io.Discard, good) }()
	const stalled = 8
	addr := srv.Listener.Addr().String()
	for range stalled {
		path, cookie := joinedTicket(t, srv.URL)
		rawEvents(t, addr, "GET", "HTTP/1.1", path, cookie, 1024) // never read
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.streams.Len() != stalled+1 {
		if time.Now().After(deadline) {
			t.Fatalf("hub holds %d streams, want %d", s.streams.Len(), stalled+1)
		}
		time.Sleep(time.Millisecond)
	}
	// Pings fill the stalled sockets until a write would block.
	deadline = time.Now().Add(2 * time.Minute)
	broadcasts := 0
	for s.streams.Len() > 1 {
		if time.Now().After(deadline) {
			t.Fatalf("after %d broadcasts the hub still holds %d streams", broadcasts, s.streams.Len())
		}
		s.streams.broadcast(true)
		broadcasts++
	}
	t.Logf("stalled streams dropped after %d broadcasts", broadcasts)
	if s.streams.Len() != 1 {
		t.Fatalf("the reading stream was dropped too")
	}
	if n := testutil.ToFloat64(s.metrics.streams); n != 1 {
		t.Errorf("anteroom_event_streams = %v, want 1", n)
	}
}
