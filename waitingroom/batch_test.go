package waitingroom

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A batch is sent under the latest of its callers' deadlines (or none, if
// one has none), never under one caller's cancellation.
func TestBatchContext(t *testing.T) {
	early, cancelEarly := context.WithTimeout(context.Background(), time.Second)
	defer cancelEarly()
	late, cancelLate := context.WithTimeout(context.Background(), time.Hour)
	defer cancelLate()
	want, _ := late.Deadline()
	ctx, cancel := batchContext([]*batchCall{{ctx: early}, {ctx: late}})
	if d, ok := ctx.Deadline(); !ok || !d.Equal(want) {
		t.Errorf("batch deadline %v (%v), want the latest caller's %v", d, ok, want)
	}
	cancelEarly()
	if ctx.Err() != nil {
		t.Errorf("one caller's cancellation ended the batch: %v", ctx.Err())
	}
	cancel()
	ctx, cancel = batchContext([]*batchCall{{ctx: late}, {ctx: context.Background()}})
	defer cancel()
	if _, ok := ctx.Deadline(); ok {
		t.Error("a batch with a caller without deadline has a deadline")
	}
}

// A caller whose context ends while its call waits in the queue gets the
// context's error, not a hang, and its call is not sent at all.
func TestBatchQueuedCallerGivesUp(t *testing.T) {
	b := newBatcher(nil)      // nothing can be sent: a send would panic
	b.inflight = batchSenders // every sender busy: the call can only queue
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.evalSha(ctx, joinScript, []string{"k"}).Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("evalSha with an ended context: %v, want context.Canceled", err)
	}
	if len(b.queue) != 1 || !b.queue[0].gone.Load() {
		t.Fatalf("queue after the caller left: %d calls", len(b.queue))
	}
	b.send(b.take(nil)) // sends nothing, so does not reach the nil client
}
