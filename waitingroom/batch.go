package waitingroom

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// A crowd's joins arrive together. Sent one by one, each costs this process
// and Redis a write and a read of its own, which cost more than the script;
// sent together in one pipeline, a batch costs one of each. So joins go
// through a batcher: a few senders each take whatever calls are queued,
// never waiting for more (a lone call goes at once, and a quiet room's join
// is no slower), and send them as one pipeline.

const (
	// batchSenders is how many batches may be in flight at once.
	batchSenders = 4
	// maxBatch bounds a batch, so that one reply is not held up by too
	// many scripts ahead of it.
	maxBatch = 64
)

// batchCall is one script call waiting for its batch.
type batchCall struct {
	ctx    context.Context
	script *redis.Script
	keys   []string
	args   []any
	cmd    *redis.Cmd
	done   chan struct{}
}

// batcher pipelines concurrent script calls (EVALSHA only: a script Redis
// does not know is the caller's to send in full).
type batcher struct {
	rdb   redis.UniversalClient
	calls chan *batchCall
	start sync.Once
}

func newBatcher(rdb redis.UniversalClient) *batcher {
	return &batcher{rdb: rdb, calls: make(chan *batchCall, maxBatch*batchSenders)}
}

// evalSha runs script by its hash in the next batch and returns its result,
// or the context's error if ctx ends first (the script may run all the same,
// as a call cut off on the wire may).
func (b *batcher) evalSha(ctx context.Context, script *redis.Script, keys []string, args ...any) *redis.Cmd {
	b.start.Do(func() {
		for range batchSenders {
			go b.send()
		}
	})
	c := &batchCall{ctx: ctx, script: script, keys: keys, args: args, done: make(chan struct{})}
	select {
	case b.calls <- c:
	case <-ctx.Done():
		return redis.NewCmdResult(nil, ctx.Err())
	}
	select {
	case <-c.done:
		return c.cmd
	case <-ctx.Done():
		return redis.NewCmdResult(nil, ctx.Err())
	}
}

// send takes what is queued and sends it, for as long as the process runs.
func (b *batcher) send() {
	batch := make([]*batchCall, 0, maxBatch)
	cmds := make([]*redis.Cmd, 0, maxBatch)
	for c := range b.calls {
		batch = append(batch[:0], c)
	more:
		for len(batch) < maxBatch {
			select {
			case c := <-b.calls:
				batch = append(batch, c)
			default:
				break more
			}
		}
		if len(batch) == 1 {
			c.cmd = c.script.EvalSha(c.ctx, b.rdb, c.keys, c.args...)
			close(c.done)
			continue
		}
		ctx, cancel := batchContext(batch)
		pipe := b.rdb.Pipeline()
		cmds = cmds[:0]
		for _, c := range batch {
			cmds = append(cmds, c.script.EvalSha(ctx, pipe, c.keys, c.args...))
		}
		_, _ = pipe.Exec(ctx) // each command carries its own error
		cancel()
		for i, c := range batch {
			c.cmd = cmds[i]
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
