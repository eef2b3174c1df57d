package keys

import (
	"bytes"
	"testing"
)

// FuzzBoxOpen: Open accepts only what Seal produced under one of the
// secrets, for the same additional data, and returns what was sealed;
// everything Anteroom seals into URLs and cookies relies on it.
func FuzzBoxOpen(f *testing.F) {
	old, err := NewBox([][]byte{secret(2)}, "fuzz")
	if err != nil {
		f.Fatal(err)
	}
	b, err := NewBox([][]byte{secret(1), secret(2)}, "fuzz")
	if err != nil {
		f.Fatal(err)
	}
	plaintexts := [][]byte{nil, []byte("hello waiting room"), bytes.Repeat([]byte{0xff}, 300)}
	for i, p := range plaintexts {
		f.Add(b.Seal(p, []byte("ad")), []byte("ad"))
		f.Add(old.Seal(p, []byte("ad")), []byte("ad"))
		f.Add(b.Seal(p, []byte("ad")), []byte{byte(i)})
	}
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, sealed, ad []byte) {
		got, err := b.Open(sealed, ad)
		if err != nil {
			return
		}
		if !bytes.Equal(ad, []byte("ad")) {
			t.Fatalf("opened %x under additional data %q, which nothing was sealed with", sealed, ad)
		}
		for _, p := range plaintexts {
			if bytes.Equal(got, p) {
				return
			}
		}
		t.Fatalf("opened %x to %x, which was never sealed", sealed, got)
	})
}
