package web

import (
	"bytes"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/anteroom/anteroom/internal/route"
)

// The event streams of the waiting page, in two files: this one answers
// GET /wait/{id}/events and hands the connection over; eventhub.go holds
// the connections and writes to them. Their tests: events_test.go (what a
// stream carries and when it ends), events_conn_test.go (the connection:
// HEAD, HTTP/1.0, stalled readers, per-ticket bound) and
// events_bounds_test.go (the per-address and per-instance bounds).

// eventsPattern is the route of event streams, which measure their own
// duration (see Instrument).
const eventsPattern = "GET " + route.EventsPattern

// Event streams and what they cost. A waiting page keeps its stream open
// for as long as its visitor waits: hours, for tens of thousands of visitors
// per instance. Held by its handler, a stream would cost a goroutine with
// its grown stack and net/http's buffers the whole time (about 27 KiB of
// resident memory even for a bare net/http server). So once the response
// headers are decided, the handler hijacks the connection, hands it to the
// instance's stream hub and returns. What stays per stream is the socket
// and what its page shows; the hub writes every stream's status when the
// room's cached counters change, and a comment every streamPing, which is
// also how a connection the browser closed is noticed (the write fails).
//
// The response is chunked HTTP/1.1, written by hand. A connection that
// cannot be hijacked (HTTP/2) gets one event and the end of the stream; the
// browser reconnects after the retry delay, which is polling by another
// name.

// streamWriteTimeout bounds a write to one stream. A frame is a few hundred
// bytes and a reading browser always has room for it in the socket's
// buffer, so a write that would block means the browser stopped reading
// long ago: it is dropped (its page reconnects) rather than holding up the
// other streams of the broadcast.
const streamWriteTimeout = 50 * time.Millisecond

// events serves /wait/{id}/events: server-sent events carrying the same
// JSON as the status poll, sent whenever the room's cached counters change.
// Like a poll it reads the ticket from the cookie and the counters from the
// cache, so open streams cost Redis nothing.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	req, room, have, ok := s.ticketFor(w, r)
	if !ok {
		if req != nil {
			req.Close()
		}
		s.metrics.streamEnded(start)
		return
	}
	// A stream outlives its request's handle: it keeps the id alone.
	id := req.ID()
	req.Close()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h["Cache-Control"] = noStore
	h.Set("X-Accel-Buffering", "no") // nginx would otherwise buffer the stream
	st := &stream{id: id, ticket: have, room: room.ID, opened: start, client: maskClient(s.clientIPs.Of(r))}
	frame, final := s.streams.frame(st, false)
	// Reconnections after a restart are spread over a few seconds so a
	// crowd does not come back in one instant.
	first := strconv.AppendInt([]byte("retry: "), int64(2000+rand.IntN(4000)), 10)
	first = append(append(first, "\n\n"...), frame...)
	// Only a GET over HTTP/1.1 becomes a held stream: a HEAD has no body
	// (and the proxy would reuse the connection the hub writes to), and
	// HTTP/1.0 has no chunked encoding.
	if !final && r.Method == http.MethodGet && r.ProtoAtLeast(1, 1) {
		conn, taken, err := hijack(w, first)
		if err == nil {
			st.conn = conn
			s.streams.add(st)
			// A change between the first frame and add reached no
			// broadcast: send it now rather than at the next one.
			s.streams.send(st, false, nil)
			return
		}
		if taken {
			s.metrics.streamEnded(start) // the browser went away
			return
		}
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(first)
	s.metrics.streamEnded(start)
}

// hijack takes the connection over from net/http and writes the response
// head and the first chunk of the body on it. taken reports whether the
// connection was taken over (then w must not be used, even on error).
func hijack(w http.ResponseWriter, body []byte) (conn net.Conn, taken bool, err error) {
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 200 OK\r\n")
	if err := w.Header().Write(&head); err != nil {
		return nil, false, err
	}
	// The body ends with the connection: a proxy must not reuse it.
	head.WriteString("Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n")
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, false, err
	}
	// The server's read deadline would end the stream; what the browser
	// might still send is of no interest.
	_ = conn.SetDeadline(time.Time{})
	rw.Reader.Reset(nil)
	_ = conn.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	if _, err := conn.Write(appendChunk(head.Bytes(), body)); err != nil {
		conn.Close()
		return nil, true, err
	}
	return conn, true, nil
}

// appendChunk frames p as one chunk of a chunked body.
func appendChunk(b, p []byte) []byte {
	b = strconv.AppendInt(b, int64(len(p)), 16)
	b = append(b, '\r', '\n')
	b = append(b, p...)
	return append(b, '\r', '\n')
}

// lastChunk ends a chunked body.
var lastChunk = []byte("0\r\n\r\n")

// CloseStreams ends every open event stream, so a graceful shutdown does
// not wait for visitors who may stay for hours; register it with
// http.Server.RegisterOnShutdown. The browsers reconnect, to another
// instance, after their retry delay.
func (s *Server) CloseStreams() {
	s.closeOnce.Do(func() {
		close(s.streams.stop)
		<-s.streams.stopped
	})
}
