package waitingroom

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// A crowd's joins arrive together. Sent one by one, each costs this process
// and Redis a write and a read of its own, which cost more than the script;
// sent together in one pipeline, a batch costs one of each. So joins go
// through a batcher, which works like a group commit: a call that finds
// fewer than batchSenders batches in flight sends at once, itself, taking
// along whatever calls are queued (a lone call is sent by its own goroutine,
// as if there were no batcher); a call that finds them all busy queues, and
// the first batch to come back sends the queue.

const (
	// batchSenders is how many batches may be in flight at once.
	batchSenders = 4
	// maxBatch bounds a batch, so that one reply is not held up by too
	// many scripts ahead of it.
	maxBatch = 64
)

// batchCall is one script call, alone or in a batch.
type batchCall struct {
	ctx    context.Context
	script *redis.Script
	keys   []string
	args   []any
	cmd    *redis.Cmd
	done   chan struct{}
	// gone is set when the caller stopped waiting: a queued call nobody
	// waits for is not sent.
	gone atomic.Bool
}

// batcher pipelines concurrent script calls (EVALSHA only: a script Redis
// does not know is the caller's to send in full).
type batcher struct {
	rdb      redis.UniversalClient
	mu       sync.Mutex
	queue    []*batchCall
	inflight int
}

func newBatcher(rdb redis.UniversalClient) *batcher { return &batcher{rdb: rdb} }

// evalSha runs script by its hash, in a batch when others are being sent,
// and returns its result, or the context's error if ctx ends first (the
// script may run all the same, as a call cut off on the wire may).
func (b *batcher) evalSha(ctx context.Context, script *redis.Script, keys []string, args ...any) *redis.Cmd {
	c := &batchCall{ctx: ctx, script: script, keys: keys, args: args}
	b.mu.Lock()
	if b.inflight < batchSenders {
		b.inflight++
		batch := b.take(c)
		b.mu.Unlock()
		// Deferred, so that a panic cannot keep the slot.
		defer b.finished()
		b.send(batch)
		return c.cmd
	}
	c.done = make(chan struct{})
	b.queue = append(b.queue, c)
	b.mu.Unlock()
	select {
	case <-c.done:
		return c.cmd
	case <-ctx.Done():
		c.gone.Store(true)
		return redis.NewCmdResult(nil, ctx.Err())
	}
}

// take returns up to maxBatch calls: first (if any) and the queue's oldest.
// The caller holds b.mu.
func (b *batcher) take(first *batchCall) []*batchCall {
	var batch []*batchCall
	if first != nil {
		batch = append(batch, first)
	}
	n := min(len(b.queue), maxBatch-len(batch))
	batch = append(batch, b.queue[:n]...)
	b.queue = b.queue[n:]
	if len(b.queue) == 0 {
		b.queue = nil
	}
	return batch
}

// finished ends a batch in flight; if calls queued meanwhile, they go next,
// from a goroutine of their own, so that the caller that sent this batch is
// not held up by them.
func (b *batcher) finished() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.queue) == 0 {
		b.inflight--
		return
	}
	go b.drain()
}

// drain sends the queue, batch after batch, until it is empty.
func (b *batcher) drain() {
	for {
		b.mu.Lock()
		if len(b.queue) == 0 {
			b.inflight--
			b.mu.Unlock()
			return
		}
		batch := b.take(nil)
		b.mu.Unlock()
		b.send(batch)
	}
}

// send runs a batch: alone, a call is an ordinary EVALSHA; together, one
// pipeline. Calls nobody waits for any more are left out.
func (b *batcher) send(batch []*batchCall) {
	live := batch[:0]
	for _, c := range batch {
		if !c.gone.Load() {
			live = append(live, c)
		}
	}
	switch len(live) {
	case 0:
	case 1:
		c := live[0]
		c.cmd = c.script.EvalSha(c.ctx, b.rdb, c.keys, c.args...)
	default:
		ctx, cancel := batchContext(live)
		pipe := b.rdb.Pipeline()
		for _, c := range live {
			c.cmd = c.script.EvalSha(ctx, pipe, c.keys, c.args...)
		}
		_, _ = pipe.Exec(ctx) // each command carries its own error
		cancel()
	}
	for _, c := range live {
		if c.done != nil {
			close(c.done)
		}
	}
}

// batchContext is the context a batch is sent under: no caller's
// cancellation (the others still want their replies), the values of the
// first (request ids for the logs), and the latest of their deadlines, or
// none if one has none.
func batchContext(batch []*batchCall) (context.Context, context.CancelFunc) {
	var latest time.Time
	for _, c := range batch {
		d, ok := c.ctx.Deadline()
		if !ok {
			return context.WithCancel(context.WithoutCancel(batch[0].ctx))
		}
		if d.After(latest) {
			latest = d
		}
	}
	return context.WithDeadline(context.WithoutCancel(batch[0].ctx), latest)
}
