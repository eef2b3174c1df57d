package web

import (
	"hash/maphash"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/anteroom/anteroom/internal/route"
	"github.com/anteroom/anteroom/waitingroom"
)

// The event hub: every event stream the instance holds (see events.go for
// how a stream is opened and why it is held here rather than by its
// handler), written to when the room's cached counters change.

// streamPing is how often an idle stream gets a comment: proxies keep it
// open, the page counts as alive, and a dead connection is found.
const streamPing = 15 * time.Second

// maxStreamsPerTicket bounds the streams one ticket holds open (a visitor
// with a few tabs): a script opening streams it never reads costs the hub
// no more than that. Further tabs poll.
const maxStreamsPerTicket = 4

// stream is one open event stream held by the hub.
type stream struct {
	// mu makes one writer at a time of the stream's frames, and guards last.
	mu     sync.Mutex
	conn   net.Conn
	id     string // the auth request, for continue_url
	ticket waitingroom.Ticket
	room   string
	opened time.Time
	// client is the visitor's address (IPv6 by /64), for the per-address
	// bound; invalid when unknown, then only the other bounds apply.
	client netip.Addr
	// last is the hash of the last status sent; the status is sent again
	// only when it changed.
	last uint64
	// done is set once the connection is closed.
	done bool
}

// streamHub holds every open event stream of an instance.
type streamHub struct {
	s       *Server
	mu      sync.Mutex
	streams map[*stream]struct{}
	// byTicket lists each ticket's streams, oldest first.
	byTicket map[waitingroom.TicketID][]*stream
	// byClient counts each client address's streams.
	byClient map[netip.Addr]int
	// maxTotal and maxPerClient bound the streams held, in all and per
	// client address (0: no bound), below the process's descriptor limit.
	maxTotal, maxPerClient int
	closed                 bool // by CloseStreams: new streams end at once
	seed                   maphash.Seed
	stop                   chan struct{}
	stopped                chan struct{}
}

func newStreamHub(s *Server) *streamHub {
	return &streamHub{s: s, streams: map[*stream]struct{}{}, byTicket: map[waitingroom.TicketID][]*stream{}, byClient: map[netip.Addr]int{},
		seed: maphash.MakeSeed(), stop: make(chan struct{}), stopped: make(chan struct{})}
}

// add hands a stream to the hub; after CloseStreams it is ended at once.
// A stream beyond a bound is ended too, after its first event: its ticket's
// maxStreamsPerTicket, its address's maxPerClient or the instance's
// maxTotal. That page polls (it reconnects after its retry delay), and the
// streams already held are left alone, so that a visitor with a tab too
// many does not have their streams end one another in turn. The instance's
// bound keeps held streams below the descriptor limit: past it, the
// instance could accept no connection at all, health checks included.
func (h *streamHub) add(st *stream) {
	h.mu.Lock()
	bound := ""
	switch {
	case h.closed:
	case len(h.byTicket[st.ticket.ID]) >= maxStreamsPerTicket:
		bound = "ticket"
	case h.maxTotal > 0 && len(h.streams) >= h.maxTotal:
		bound = "instance"
	case h.maxPerClient > 0 && st.client.IsValid() && h.byClient[st.client] >= h.maxPerClient:
		bound = "address"
	default:
		h.streams[st] = struct{}{}
		h.byTicket[st.ticket.ID] = append(h.byTicket[st.ticket.ID], st)
		if st.client.IsValid() {
			h.byClient[st.client]++
		}
		h.s.metrics.streamsHeld(1)
		h.mu.Unlock()
		return
	}
	h.mu.Unlock()
	if bound != "" {
		h.s.metrics.streamRefused(bound)
	}
	h.end(st)
}

// forgetLocked removes st from the hub; the caller holds h.mu.
func (h *streamHub) forgetLocked(st *stream) {
	if _, ok := h.streams[st]; !ok {
		return
	}
	h.s.metrics.streamsHeld(-1)
	delete(h.streams, st)
	mine := h.byTicket[st.ticket.ID]
	for i, x := range mine {
		if x == st {
			mine = append(mine[:i:i], mine[i+1:]...)
			break
		}
	}
	if len(mine) == 0 {
		delete(h.byTicket, st.ticket.ID)
	} else {
		h.byTicket[st.ticket.ID] = mine
	}
	if st.client.IsValid() {
		if h.byClient[st.client]--; h.byClient[st.client] <= 0 {
			delete(h.byClient, st.client)
		}
	}
}

// Len is how many streams are open.
func (h *streamHub) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.streams)
}

// frame is the next event of st: its status when that changed (or when
// ping asks for a sign of life anyway, as a comment if it did not), nil when
// there is nothing to send. final reports that the stream ends with it: the
// visitor was admitted or the ticket expired.
func (h *streamHub) frame(st *stream, ping bool) (frame []byte, final bool) {
	s := h.s
	c, _ := s.cache.Get(st.room)
	room, _ := s.store.Room(st.room)
	s.beat(c.Resolve(st.ticket))
	status := s.statusOf(st.ticket, room, c, s.store.Now())
	doc := visitorJSON{VisitorStatus: status}
	final = status.State == waitingroom.VisitorAdmitted || status.State == waitingroom.VisitorExpired
	if status.State == waitingroom.VisitorAdmitted {
		doc.ContinueURL = s.issuer + route.Continue(st.id)
	}
	bp := statusBuffers.Get().(*[]byte)
	defer statusBuffers.Put(bp)
	data := appendStatusJSON((*bp)[:0], doc)
	*bp = data
	if sum := maphash.Bytes(h.seed, data); sum != st.last {
		st.last = sum
		frame = append(append([]byte("data: "), data...), '\n', '\n')
		return frame, final
	}
	if ping {
		return []byte(": ping\n\n"), final
	}
	return nil, final
}

// run sends every stream its news until CloseStreams: at each change of the
// cached counters, and a ping every streamPing.
func (h *streamHub) run() {
	defer close(h.stopped)
	ping := time.NewTicker(streamPing)
	defer ping.Stop()
	for {
		changed := h.s.cache.Changed()
		select {
		case <-changed:
			h.broadcast(false)
		case <-ping.C:
			h.broadcast(true)
		case <-h.stop:
			h.closeAll()
			return
		}
	}
}

// broadcast writes each stream's next frame, from a few goroutines so that
// one slow connection does not hold up the rest for long.
func (h *streamHub) broadcast(ping bool) {
	h.mu.Lock()
	all := make([]*stream, 0, len(h.streams))
	for st := range h.streams {
		all = append(all, st)
	}
	h.mu.Unlock()
	workers := min(len(all), 4*runtime.GOMAXPROCS(0))
	if workers == 0 {
		return
	}
	var wg sync.WaitGroup
	per := (len(all) + workers - 1) / workers
	for i := 0; i < len(all); i += per {
		part := all[i:min(i+per, len(all))]
		wg.Go(func() {
			var buf []byte
			for _, st := range part {
				buf = h.send(st, ping, buf)
			}
		})
	}
	wg.Wait()
}

// send writes st's next frame, if it has one, using buf as scratch space,
// and drops the stream when that was its last or the write failed. It
// returns buf for reuse.
func (h *streamHub) send(st *stream, ping bool, buf []byte) []byte {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !h.has(st) {
		return buf // dropped meanwhile, or ended by CloseStreams
	}
	frame, final := h.frame(st, ping)
	if frame == nil {
		return buf
	}
	buf = appendChunk(buf[:0], frame)
	if final {
		buf = append(buf, lastChunk...)
	}
	_ = st.conn.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	if _, err := st.conn.Write(buf); err != nil || final {
		h.drop(st)
	}
	return buf
}

// has reports whether st is still held.
func (h *streamHub) has(st *stream) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.streams[st]
	return ok
}

// drop closes a stream and forgets it.
// The caller holds st.mu.
func (h *streamHub) drop(st *stream) {
	h.mu.Lock()
	h.forgetLocked(st)
	h.mu.Unlock()
	st.done = true
	st.conn.Close()
	h.s.metrics.streamEnded(st.opened)
}

// closeAll ends every stream properly, so each browser reconnects (to
// another instance, after its retry delay) and keeps its place.
func (h *streamHub) closeAll() {
	h.mu.Lock()
	all := h.streams
	h.streams, h.byTicket, h.byClient = map[*stream]struct{}{}, map[waitingroom.TicketID][]*stream{}, map[netip.Addr]int{}
	h.closed = true
	h.s.metrics.streamsHeld(-len(all))
	h.mu.Unlock()
	for st := range all {
		h.end(st)
	}
}

// end finishes a stream's body and closes its connection.
func (h *streamHub) end(st *stream) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.done {
		return
	}
	st.done = true
	_ = st.conn.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	_, _ = st.conn.Write(lastChunk)
	st.conn.Close()
	h.s.metrics.streamEnded(st.opened)
}
