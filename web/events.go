package web

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/anteroom/anteroom/waitingroom"
)

// events serves /wait/{id}/events: server-sent events carrying the same
// JSON as the status poll, sent whenever the room's cached counters change.
// Like a poll it reads the ticket from the cookie and the counters from the
// cache, so a thousand open streams cost Redis nothing.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	id, room, have, ok := s.ticketFor(w, r)
	if !ok {
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx would otherwise buffer the stream
	w.WriteHeader(http.StatusOK)
	// Reconnections after a restart are spread over a few seconds so a
	// crowd does not come back in one instant.
	fmt.Fprintf(w, "retry: %d\n\n", 2000+rand.IntN(4000))
	flusher.Flush()

	continueURL := s.issuer + "/wait/" + id + "/continue"
	heartbeat := time.NewTicker(15 * time.Second)
	defer heartbeat.Stop()
	var last, next []byte
	for {
		changed := s.cache.Changed()
		c, _ := s.cache.Get(room.ID)
		s.beat(c.Resolve(have))
		st := s.statusOf(have, room, c, s.store.Now())
		doc := visitorJSON{VisitorStatus: st}
		if st.State == waitingroom.VisitorAdmitted {
			doc.ContinueURL = continueURL
		}
		next = appendStatusJSON(next[:0], doc)
		if string(next) != string(last) {
			fmt.Fprintf(w, "data: %s\n\n", next)
			flusher.Flush()
			last, next = next, last
		}
		if st.State == waitingroom.VisitorAdmitted || st.State == waitingroom.VisitorExpired {
			return
		}
		select {
		case <-changed:
		case <-heartbeat.C:
			// An open stream is a sign of life, and a skipped visitor's
			// release is only seen by asking: go round the loop.
			fmt.Fprint(w, ": ping\n\n")
			flusher.Flush()
		case <-s.closing:
			// Shutting down: the browser reconnects (to another
			// instance) after the retry delay.
			return
		case <-r.Context().Done():
			return
		}
	}
}

// CloseStreams ends every open event stream, so a graceful shutdown does
// not wait for visitors who may stay for hours; register it with
// http.Server.RegisterOnShutdown.
func (s *Server) CloseStreams() { s.closeOnce.Do(func() { close(s.closing) }) }
