package waitingroom

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
)

// Visitors who arrive before a room opens join a pre-queue in arrival
// order (k = 1, 2, …). At opening the room draws a random key, and the
// pre-queue's n visitors get positions 1..n by a keyed pseudo-random
// permutation of their arrival numbers: fair to everyone who came early,
// nothing gained by refreshing, stable for each visitor, and nothing stored
// per visitor (the ticket keeps k; the room keeps n and the key).

// drawPosition maps pre-queue number k (1-based) to its position among n
// (1-based) under key.
func drawPosition(k, n int64, key []byte) int64 {
	if n <= 1 || k < 1 || k > n {
		return k
	}
	return int64(permute(uint64(k-1), uint64(n), key)) + 1
}

// permute is a bijection on [0, n): a balanced Feistel network on the
// smallest even number of bits that covers n, with cycle-walking to stay
// inside [0, n). HMAC-SHA256 is the round function, so the order cannot be
// predicted without the key.
func permute(x, n uint64, key []byte) uint64 {
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
		l, r := x>>half, x&mask
		for round := byte(0); round < 4; round++ {
			mac.Reset()
			buf[0] = round
			binary.BigEndian.PutUint64(buf[1:], r)
			mac.Write(buf[:])
			f := binary.BigEndian.Uint64(mac.Sum(nil)[:8]) & mask
			l, r = r, l^f
		}
		x = l<<half | r
		if x < n {
			return x
		}
	}
}
