package waitingroom

import "testing"

// TestUnpermuteInvertsPermute: the rank a waiting page shows comes from
// unpermute, so it must be permute's exact inverse, for sizes around the
// Feistel network's powers of two (where cycle-walking happens).
func TestUnpermuteInvertsPermute(t *testing.T) {
	key := []byte("0123456789abcdef")
	for _, n := range []uint64{2, 3, 4, 5, 15, 16, 17, 100, 255, 256, 257, 1000} {
		seen := make([]bool, n)
		for x := range n {
			y := permute(x, n, key)
			if y >= n || seen[y] {
				t.Fatalf("n=%d: permute(%d) = %d, not a bijection", n, x, y)
			}
			seen[y] = true
			if back := unpermute(y, n, key); back != x {
				t.Fatalf("n=%d: unpermute(permute(%d)) = %d", n, x, back)
			}
		}
	}
}
