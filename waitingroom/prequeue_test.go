package waitingroom

import "testing"

func TestDrawPositionIsAPermutation(t *testing.T) {
	for _, n := range []int64{1, 2, 3, 7, 64, 65, 1000, 4097} {
		seen := make(map[int64]bool, n)
		identity := true
		for k := int64(1); k <= n; k++ {
			p := drawPosition(k, n, []byte("key"))
			if p < 1 || p > n || seen[p] {
				t.Fatalf("n=%d: k=%d drew %d (seen %v)", n, k, p, seen[p])
			}
			seen[p] = true
			identity = identity && p == k
			if again := drawPosition(k, n, []byte("key")); again != p {
				t.Fatalf("n=%d: k=%d drew %d then %d", n, k, p, again)
			}
		}
		if n >= 64 && identity {
			t.Fatalf("n=%d: the draw kept arrival order", n)
		}
	}
	// Another key, another order.
	same := 0
	for k := int64(1); k <= 1000; k++ {
		if drawPosition(k, 1000, []byte("a")) == drawPosition(k, 1000, []byte("b")) {
			same++
		}
	}
	if same > 20 {
		t.Fatalf("%d of 1000 positions equal under two keys", same)
	}
}
