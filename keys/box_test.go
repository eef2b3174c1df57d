package keys

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func secret(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func mustBox(t *testing.T, purpose string, secrets ...[]byte) *Box {
	t.Helper()
	b, err := NewBox(secrets, purpose)
	if err != nil {
		t.Fatalf("NewBox: %v", err)
	}
	return b
}

func TestBoxRoundTrip(t *testing.T) {
	b := mustBox(t, "test", secret(1))
	for _, tc := range []struct {
		name      string
		plaintext []byte
		ad        []byte
	}{
		{"empty", nil, nil},
		{"text", []byte("hello waiting room"), []byte("ticket")},
		{"binary", bytes.Repeat([]byte{0, 255}, 500), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sealed := b.Seal(tc.plaintext, tc.ad)
			if len(sealed) != len(tc.plaintext)+Overhead {
				t.Fatalf("sealed length %d, want %d", len(sealed), len(tc.plaintext)+Overhead)
			}
			got, err := b.Open(sealed, tc.ad)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(got, tc.plaintext) {
				t.Fatalf("Open = %q, want %q", got, tc.plaintext)
			}
		})
	}
}

func TestBoxAppendOpenReusesTheBuffer(t *testing.T) {
	b := mustBox(t, "test", secret(1))
	sealed := b.Seal([]byte("plain"), []byte("ad"))
	buf := make([]byte, 3, 64)
	copy(buf, "pre")
	out, err := b.AppendOpen(buf, sealed, []byte("ad"))
	if err != nil || string(out) != "preplain" || &out[0] != &buf[0] {
		t.Fatalf("AppendOpen = %q, %v (same array: %v), want \"preplain\" in the caller's buffer", out, err, err == nil && &out[0] == &buf[0])
	}
	out, err = b.AppendOpen(buf, sealed, []byte("other ad"))
	if !errors.Is(err, ErrOpen) || string(out) != "pre" {
		t.Fatalf("AppendOpen with wrong ad = %q, %v, want the buffer unchanged and ErrOpen", out, err)
	}
}

func TestBoxSealIsRandomized(t *testing.T) {
	b := mustBox(t, "test", secret(1))
	x, y := b.Seal([]byte("same"), nil), b.Seal([]byte("same"), nil)
	if bytes.Equal(x, y) {
		t.Fatal("two seals of the same plaintext are identical; nonces must differ")
	}
	if !bytes.Equal(x[:2], y[:2]) {
		t.Fatal("key id differs between seals under the same secret")
	}
}

func TestBoxRotation(t *testing.T) {
	oldBox := mustBox(t, "test", secret(1))
	rotated := mustBox(t, "test", secret(2), secret(1))
	newOnly := mustBox(t, "test", secret(2))

	inFlight := oldBox.Seal([]byte("sealed before rotation"), []byte("ad"))
	got, err := rotated.Open(inFlight, []byte("ad"))
	if err != nil || string(got) != "sealed before rotation" {
		t.Fatalf("rotated box Open(old) = %q, %v", got, err)
	}

	fresh := rotated.Seal([]byte("sealed after rotation"), nil)
	if got, err := newOnly.Open(fresh, nil); err != nil || string(got) != "sealed after rotation" {
		t.Fatalf("rotated box must seal with the first secret: newOnly.Open = %q, %v", got, err)
	}
	if _, err := oldBox.Open(fresh, nil); !errors.Is(err, ErrOpen) {
		t.Fatalf("old box opened a value sealed with the new secret: err = %v", err)
	}
}

func TestBoxOpenStaleTellsWhichSecretOpened(t *testing.T) {
	oldBox := mustBox(t, "test", secret(1))
	rotated := mustBox(t, "test", secret(2), secret(1))
	for _, tc := range []struct {
		name   string
		sealed []byte
		stale  bool
	}{
		{"sealed under the old secret", oldBox.Seal([]byte("x"), nil), true},
		{"sealed under the first secret", rotated.Seal([]byte("x"), nil), false},
	} {
		got, stale, err := rotated.OpenStale(tc.sealed, nil)
		if err != nil || string(got) != "x" || stale != tc.stale {
			t.Errorf("%s: OpenStale = %q, stale %v, %v; want stale %v", tc.name, got, stale, err, tc.stale)
		}
	}
	// With colliding ids the answer must still come from the secret that
	// authenticated the value, not from the id.
	rotated.keys[0].id = rotated.keys[1].id
	if _, stale, err := rotated.OpenStale(oldBox.Seal([]byte("x"), nil), nil); err != nil || !stale {
		t.Fatalf("colliding ids: stale %v, %v; want stale", stale, err)
	}
	if _, _, err := rotated.OpenStale([]byte("short"), nil); !errors.Is(err, ErrOpen) {
		t.Fatalf("short input: %v", err)
	}
}

func TestBoxTriesEveryKeyWithMatchingID(t *testing.T) {
	oldBox := mustBox(t, "test", secret(1))
	rotated := mustBox(t, "test", secret(2), secret(1))
	// Force the 2-byte ids to collide, as they will for one pair of secrets
	// in 65536: Open must try the second key after the first fails.
	rotated.keys[0].id = rotated.keys[1].id
	got, err := rotated.Open(oldBox.Seal([]byte("x"), nil), nil)
	if err != nil || string(got) != "x" {
		t.Fatalf("Open with colliding ids = %q, %v", got, err)
	}
}

func TestBoxWrongAdditionalData(t *testing.T) {
	b := mustBox(t, "test", secret(1))
	sealed := b.Seal([]byte("payload"), []byte("kid-1"))
	for _, ad := range [][]byte{nil, []byte("kid-2"), []byte("kid-1 ")} {
		if _, err := b.Open(sealed, ad); !errors.Is(err, ErrOpen) {
			t.Errorf("Open with ad %q: err = %v, want ErrOpen", ad, err)
		}
	}
}

func TestBoxTamperingFails(t *testing.T) {
	b := mustBox(t, "test", secret(1))
	sealed := b.Seal([]byte("payload"), []byte("ad"))
	for i := range sealed {
		tampered := bytes.Clone(sealed)
		tampered[i] ^= 0x01
		if _, err := b.Open(tampered, []byte("ad")); !errors.Is(err, ErrOpen) {
			t.Errorf("flipping a bit of byte %d: err = %v, want ErrOpen", i, err)
		}
	}
	if _, err := b.Open(append(bytes.Clone(sealed), 0), []byte("ad")); !errors.Is(err, ErrOpen) {
		t.Errorf("appended byte: err = %v, want ErrOpen", err)
	}
}

func TestBoxShortInput(t *testing.T) {
	b := mustBox(t, "test", secret(1))
	sealed := b.Seal(nil, nil)
	for n := range len(sealed) {
		if _, err := b.Open(sealed[:n], nil); !errors.Is(err, ErrOpen) {
			t.Errorf("Open of %d bytes: err = %v, want ErrOpen", n, err)
		}
	}
}

func TestNewBoxRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		name    string
		secrets [][]byte
		purpose string
		want    string
	}{
		{"no secrets", nil, "test", "no secrets"},
		{"short first", [][]byte{make([]byte, 31)}, "test", "secret 0 is 31 bytes"},
		{"short second", [][]byte{secret(1), []byte("short")}, "test", "secret 1 is 5 bytes"},
		{"empty purpose", [][]byte{secret(1)}, "", "empty purpose"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewBox(tc.secrets, tc.purpose)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewBox error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestBoxPurposesAreSeparate(t *testing.T) {
	a := mustBox(t, "signing keys", secret(1))
	b := mustBox(t, "queue tickets", secret(1))
	if _, err := b.Open(a.Seal([]byte("x"), nil), nil); !errors.Is(err, ErrOpen) {
		t.Fatalf("a box for another purpose opened the value: err = %v", err)
	}
	if _, err := a.Open(b.Seal([]byte("x"), nil), nil); !errors.Is(err, ErrOpen) {
		t.Fatalf("a box for another purpose opened the value: err = %v", err)
	}
}

func TestDeriveKey(t *testing.T) {
	k := DeriveKey(secret(1), "oidc codes", 32)
	// A fixed vector: changing the derivation would silently invalidate
	// every sealed value and cookie in flight, so it must be deliberate.
	// It matches RFC 5869 HKDF-SHA256 with an empty salt and info
	// "anteroom oidc codes", computed independently.
	const want = "39ff1753fdc704d93983f0e0fd880f5c22b22aff4e38eba8f8a98f6068b85c04"
	if got := hex.EncodeToString(k); got != want {
		t.Fatalf("DeriveKey = %s, want %s", got, want)
	}
	if !bytes.Equal(k, DeriveKey(secret(1), "oidc codes", 32)) {
		t.Fatal("DeriveKey is not deterministic")
	}
	if bytes.Equal(k, DeriveKey(secret(1), "cookie hash", 32)) {
		t.Fatal("different purposes derived the same key")
	}
	if bytes.Equal(k, DeriveKey(secret(2), "oidc codes", 32)) {
		t.Fatal("different secrets derived the same key")
	}
	if n := len(DeriveKey(secret(1), "cookie hash", 64)); n != 64 {
		t.Fatalf("DeriveKey(64) returned %d bytes", n)
	}
}

func TestDeriveKeyPanicsOnShortSecret(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("DeriveKey accepted a 16-byte secret")
		}
	}()
	DeriveKey(make([]byte, 16), "x", 32)
}
