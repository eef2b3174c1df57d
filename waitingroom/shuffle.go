package waitingroom

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/bits"
	"strconv"
)

// An event's pre-queue, drawn at its start. The visitors who join between
// an event's prequeue_from and its starts_at hold ordinary positions
// lo+1..hi (nobody is admitted meanwhile). At the start, with
// shuffle_at_start, they are let in in an order drawn with the
// pre-queue's own permutation (prequeue.go) under a key drawn then: the
// r-th admission (r = 0, 1, …) goes to position lo+1+permute(r, n, key).
// Nothing is renumbered and nothing is stored per visitor: the room hash
// keeps lo, hi, n, the draws done and the key (fields sh_*); the
// scheduler passes each tick the next positions of the order (Lua has no
// HMAC), the tick marks those it admits in the drawn bitmap, which the
// admission script honours whatever the counter says; when the order is
// done the counter moves past hi. Those who waited before the pre-queue
// go first; those who come after the start wait behind it.

// shuffleBatch bounds the positions one tick is given: more than a tick's
// budget can admit (the budget never exceeds five seconds' worth plus
// one second's; see accrueLua).
const shuffleBatch = 5000

// shuffleArgs reads room's drawn order and returns the tick's shuffle
// block: the draws done and the next positions of the order.
func (s *Store) shuffleArgs(ctx context.Context, r Room) ([]any, error) {
	v, err := s.rdb.HMGet(ctx, s.keys(r.ID).hash, "sh_lo", "sh_n", "sh_done", "sh_key", "rate", "max_active").Result()
	if err != nil {
		return nil, fmt.Errorf("read the drawn order of room %q: %w", r.ID, err)
	}
	num := func(i int) int64 {
		str, _ := v[i].(string)
		n, _ := strconv.ParseInt(str, 10, 64)
		return n
	}
	key, _ := v[3].(string)
	lo, n, done := num(0), num(1), num(2)
	if n == 0 || key == "" {
		return nil, nil
	}
	rateStr, _ := v[4].(string)
	rate, _ := strconv.ParseFloat(rateStr, 64)
	batch := int64(1)
	switch {
	case rate > 0:
		batch = int64(rate/10) + 2
	case num(5) > 0:
		batch = num(5)
	}
	batch = min(batch, shuffleBatch, n-done)
	out := make([]any, 0, batch+1)
	out = append(out, done)
	for i := range batch {
		out = append(out, lo+1+int64(permute(uint64(done+i), uint64(n), []byte(key))))
	}
	return out, nil
}

// unpermute is permute's inverse: the x with permute(x, n, key) == y.
func unpermute(y, n uint64, key []byte) uint64 {
	w := bits.Len64(n - 1)
	if w < 2 {
		w = 2
	}
	if w%2 == 1 {
		w++
	}
	half := uint(w / 2)
	mask := uint64(1)<<half - 1
	mac := hmac.New(sha256.New, key)
	var buf [9]byte
	for {
		l, r := y>>half, y&mask
		for round := 3; round >= 0; round-- {
			// Forward: l, r = r, l^f(r). Backward: r, l = l, r^f(l).
			mac.Reset()
			buf[0] = byte(round)
			binary.BigEndian.PutUint64(buf[1:], l)
			mac.Write(buf[:])
			f := binary.BigEndian.Uint64(mac.Sum(nil)[:8]) & mask
			l, r = r^f, l
		}
		y = l<<half | r
		if y < n {
			return y
		}
	}
}

// drawnRank is, for a position of the event pre-queue being let in in its
// drawn order, how many of the order are still ahead of it; false for
// any other position.
func (c Counters) drawnRank(position int64) (int64, bool) {
	if c.shN <= 1 || position <= c.shLo || position > c.shLo+c.shN {
		return 0, false
	}
	r := int64(unpermute(uint64(position-c.shLo-1), uint64(c.shN), []byte(c.shKey)))
	return max(0, r-c.shDone), true
}
