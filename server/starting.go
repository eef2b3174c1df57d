package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// startingGrace bounds how long answers given while starting may take to
// finish once the instance is ready: they are 503s, written at once.
const startingGrace = 5 * time.Second

// deadliner is a listener whose Accept can be woken without closing it
// (*net.TCPListener, *net.UnixListener).
type deadliner interface {
	net.Listener
	SetDeadline(time.Time) error
}

// WhileStarting serves starting on each of lns (nil ones are skipped: the
// ops listener is optional) while build runs (New, which waits for
// Redis), then hands every listener over untouched, with no connection
// lost, for the built Server to serve. Without it an instance started before
// its Redis listened nowhere until Redis answered: a load balancer saw a
// refused connection, not an instance that is alive but not ready, and
// people got no page at all.
func WhileStarting(lns []net.Listener, starting http.Handler, build func() (*Server, error)) (*Server, error) {
	var ends []func() error
	for _, ln := range lns {
		if ln == nil {
			continue
		}
		dl, ok := ln.(deadliner)
		if !ok {
			continue
		}
		ends = append(ends, startingPhase(dl, starting))
	}
	a, err := build()
	for _, end := range ends {
		if eerr := end(); eerr != nil && err == nil {
			err = eerr
		}
	}
	return a, err
}

// startingPhase serves starting on dl until the returned function ends
// the phase and gives dl back, ready for the Server to serve.
func startingPhase(dl deadliner, starting http.Handler) (end func() error) {
	pl := &phaseListener{deadliner: dl}
	srv := newServer(starting)
	// One answer a connection: a kept-alive connection would go on being
	// answered 503 after the instance is ready.
	srv.SetKeepAlivesEnabled(false)
	done := make(chan struct{})
	go func() { _ = srv.Serve(pl); close(done) }()
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), startingGrace)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			_ = srv.Close()
		}
		<-done
		return dl.SetDeadline(time.Time{})
	}
}

// phaseListener lends a listener to the server answering while starting:
// its Close wakes a pending Accept with a deadline instead of closing the
// listener, which the Server then serves.
type phaseListener struct {
	deadliner
	mu     sync.Mutex
	closed bool
}

// Accept implements net.Listener.
func (l *phaseListener) Accept() (net.Conn, error) {
	c, err := l.deadliner.Accept()
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		if err == nil {
			// Accepted as the phase ended: answered while starting, then
			// closed (keep-alives are off); the client's next connection
			// reaches the Server.
			return c, nil
		}
		return nil, net.ErrClosed
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		// Not ours to time out; keep accepting.
		return l.Accept()
	}
	return c, err
}

// Close implements net.Listener without closing the listener.
func (l *phaseListener) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	return l.deadliner.SetDeadline(time.Now())
}
