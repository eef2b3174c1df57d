package server

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// lazyDeadline is a request's context with redis.request_timeout's
// deadline, which costs a timer only when something waits on it. Deadline
// answers at once (go-redis reads it to bound its socket reads and
// writes); the first Done or Err makes the real context.WithDeadline, with
// the same deadline, so whoever waits sees it expire as before. A request
// that never asks, such as /gate/auth answered from its session cache,
// then pays for no timer and no registration with its connection's
// context: on a hot path that reads no Redis, they were the costliest part
// of the timeout.
type lazyDeadline struct {
	parent   context.Context
	deadline time.Time

	inner   atomic.Pointer[context.Context]
	mu      sync.Mutex
	cancel  context.CancelFunc
	stopped bool
}

func newLazyDeadline(parent context.Context, d time.Duration) *lazyDeadline {
	deadline := time.Now().Add(d)
	if pd, ok := parent.Deadline(); ok && pd.Before(deadline) {
		deadline = pd
	}
	return &lazyDeadline{parent: parent, deadline: deadline}
}

// Deadline implements context.Context.
func (c *lazyDeadline) Deadline() (time.Time, bool) { return c.deadline, true }

// Done implements context.Context.
func (c *lazyDeadline) Done() <-chan struct{} { return c.start().Done() }

// Err implements context.Context.
func (c *lazyDeadline) Err() error { return c.start().Err() }

// Value implements context.Context. Once the real context exists, values
// come through it, so that contexts derived from this one find its
// cancellation (context.WithCancel looks it up by value) and need no
// goroutine of their own to follow it.
func (c *lazyDeadline) Value(key any) any {
	if p := c.inner.Load(); p != nil {
		return (*p).Value(key)
	}
	return c.parent.Value(key)
}

// start returns the real context, making it on first use. After stop it
// is made already cancelled, as context.WithDeadline's is after its
// cancel.
func (c *lazyDeadline) start() context.Context {
	if p := c.inner.Load(); p != nil {
		return *p
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.inner.Load(); p != nil {
		return *p
	}
	ctx, cancel := context.WithDeadline(c.parent, c.deadline)
	c.cancel = cancel
	if c.stopped {
		cancel()
	}
	c.inner.Store(&ctx)
	return ctx
}

// stop ends the context when the request is done, as the cancel of
// context.WithDeadline does.
func (c *lazyDeadline) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
	if c.cancel != nil {
		c.cancel()
	}
}

// String names the context in panics and logs, as the standard ones do.
func (c *lazyDeadline) String() string { return "anteroom.lazyDeadline" }
