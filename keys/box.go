// Package keys holds Anteroom's secrets at work: a Box that encrypts small
// values under rotating secrets, key derivation for other libraries' keys,
// and the OIDC signing keys that every instance shares through Redis.
package keys

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// MinSecretLen is the shortest secret NewBox and DeriveKey accept: 32 bytes,
// the AES-256 key size, so the derived key is never weaker than the cipher.
const MinSecretLen = 32

const (
	idLen    = 2
	nonceLen = 12
	tagLen   = 16
)

// Overhead is the number of bytes Seal adds to a plaintext: key id, nonce
// and authentication tag. Callers that put sealed values in URLs or cookies
// can budget their size with it.
const Overhead = idLen + nonceLen + tagLen

// ErrOpen is returned by Open for any sealed value it cannot open. It does
// not say why, so a caller cannot become an oracle for forgers.
var ErrOpen = errors.New("cannot open sealed value")

// Box seals and opens small messages with AES-256-GCM under a list of
// secrets: the first seals, every one opens, so secrets rotate without
// breaking what is in flight.
type Box struct {
	keys []boxKey
}

type boxKey struct {
	id   [idLen]byte
	aead cipher.AEAD
}

// NewBox derives one key per secret for the given purpose (HKDF-SHA256,
// info = "anteroom " + purpose), so one configured secret can serve several
// purposes without key reuse. Each secret must be at least 32 bytes.
func NewBox(secrets [][]byte, purpose string) (*Box, error) {
	if len(secrets) == 0 {
		return nil, errors.New("new box: no secrets")
	}
	if purpose == "" {
		return nil, errors.New("new box: empty purpose")
	}
	b := &Box{keys: make([]boxKey, 0, len(secrets))}
	for i, secret := range secrets {
		if len(secret) < MinSecretLen {
			return nil, fmt.Errorf("new box for %q: secret %d is %d bytes, want at least %d", purpose, i, len(secret), MinSecretLen)
		}
		key := DeriveKey(secret, purpose, 32)
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("new box for %q: %w", purpose, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("new box for %q: %w", purpose, err)
		}
		b.keys = append(b.keys, boxKey{id: keyID(key), aead: aead})
	}
	return b, nil
}

// keyID names a key in the sealed output so Open need not try every secret.
// It is a hash of the derived key, so it reveals nothing about the secret,
// and two bytes are enough to tell a handful of rotating secrets apart;
// collisions only cost Open an extra try.
func keyID(key []byte) [idLen]byte {
	sum := sha256.Sum256(key)
	return [idLen]byte{sum[0], sum[1]}
}

// Seal encrypts and authenticates plaintext under the first secret, binding
// additionalData, which Open must be given unchanged. The output is
// key id (2 bytes) | nonce (12 bytes) | ciphertext and tag, compact because
// it ends up inside URLs.
func (b *Box) Seal(plaintext, additionalData []byte) []byte {
	k := b.keys[0]
	out := make([]byte, idLen+nonceLen, Overhead+len(plaintext))
	copy(out, k.id[:])
	// Random nonces are safe for GCM up to about 2^32 messages per key,
	// far beyond what one secret seals before it is rotated.
	rand.Read(out[idLen:])
	return k.aead.Seal(out, out[idLen:], plaintext, additionalData)
}

// Open authenticates and decrypts what Seal produced under any of the
// secrets. It returns ErrOpen for every failure: truncated input, unknown key,
// tampering, or additionalData that differs from the one sealed.
func (b *Box) Open(sealed, additionalData []byte) ([]byte, error) {
	return b.AppendOpen(nil, sealed, additionalData)
}

// AppendOpen is Open that appends the plaintext to dst, so that a caller on
// a hot path can reuse a buffer. On failure dst is returned unchanged (its
// spare capacity may have been overwritten).
func (b *Box) AppendOpen(dst, sealed, additionalData []byte) ([]byte, error) {
	out, _, err := b.appendOpen(dst, sealed, additionalData)
	return out, err
}

// OpenStale is Open that also reports whether sealed was sealed under a
// secret that is no longer the first. A value kept at rest (rather than
// in a cookie that is rewritten anyway) should then be sealed again, so
// that it still opens once the operator drops the old secret. The answer
// comes from the secret that authenticated the value, not from the key id
// in it, which two secrets may share.
func (b *Box) OpenStale(sealed, additionalData []byte) (plaintext []byte, stale bool, err error) {
	return b.appendOpen(nil, sealed, additionalData)
}

func (b *Box) appendOpen(dst, sealed, additionalData []byte) ([]byte, bool, error) {
	if len(sealed) < Overhead {
		return dst, false, ErrOpen
	}
	id, nonce, ciphertext := sealed[:idLen], sealed[idLen:idLen+nonceLen], sealed[idLen+nonceLen:]
	for i, k := range b.keys {
		if !bytes.Equal(k.id[:], id) {
			continue
		}
		if out, err := k.aead.Open(dst, nonce, ciphertext, additionalData); err == nil {
			return out, i > 0, nil
		}
	}
	return dst, false, ErrOpen
}

// DeriveKey derives n bytes from secret for purpose with the same HKDF-SHA256
// as NewBox, for keys that other libraries use (the OIDC library's
// code-encryption key, the cookie codec's keys), so they stay independent of
// each other and of every Box. It panics on an n HKDF cannot produce (above
// 8160) or a secret shorter than MinSecretLen, both programming errors that
// configuration validation must catch first.
func DeriveKey(secret []byte, purpose string, n int) []byte {
	if len(secret) < MinSecretLen {
		panic(fmt.Sprintf("keys: derive key for %q: secret is %d bytes, want at least %d", purpose, len(secret), MinSecretLen))
	}
	key, err := hkdf.Key(sha256.New, secret, nil, "anteroom "+purpose, n)
	if err != nil {
		panic(fmt.Sprintf("keys: derive %d-byte key for %q: %v", n, purpose, err))
	}
	return key
}
