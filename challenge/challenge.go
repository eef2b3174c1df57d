// Package challenge issues and verifies the proof of work a visitor's
// browser does before it is given a place in a room. It speaks ALTCHA's
// protocol (https://altcha.org/docs/api-specification, altcha-lib's v1
// createChallenge and verifySolution), so ALTCHA's open-source widget and
// solvers work against Anteroom unchanged:
//
//   - algorithm is "SHA-256";
//   - challenge is hex SHA-256(salt ‖ decimal number), 0 ≤ number ≤
//     maxnumber;
//   - signature is hex HMAC-SHA-256(challenge) under a key derived from
//     the cookie secrets;
//   - the client returns base64 of the JSON {algorithm, challenge, number,
//     salt, signature}.
//
// The salt carries, in ALTCHA's "?param=value&" convention, the room, a
// hash of the auth request and an expiry (expires=, unix seconds), all
// covered by the signature: one solution is good for one request, in one
// room, for a few minutes. Issuing stores nothing; the spent mark of a
// proof is the request's binding to the ticket it bought, which the queue
// keeps anyway (see package web).
//
// The package knows nothing of HTTP or Redis; its clock is injected.
package challenge

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/anteroom/anteroom/keys"
)

// Algorithm is the one algorithm Anteroom issues and accepts: ALTCHA's
// default, and the one every ALTCHA solver implements.
const Algorithm = "SHA-256"

// DefaultTTL is how long a challenge may be answered: long enough for a
// slow phone at the highest difficulty, short enough that solutions cannot
// be stockpiled before a sale.
const DefaultTTL = 5 * time.Minute

// maxPayload bounds the base64 payload Verify reads: a real one is about
// 400 bytes.
const maxPayload = 2048

// Refusals, each with its own code for the client (see Code).
var (
	// ErrInvalid: not a payload, not signed by Anteroom, or the number
	// does not solve the challenge.
	ErrInvalid = errors.New("proof is not a solution of a challenge Anteroom issued")
	// ErrExpired: the challenge's expires= has passed.
	ErrExpired = errors.New("proof's challenge has expired")
	// ErrOtherRoom: the challenge was issued for another room.
	ErrOtherRoom = errors.New("proof's challenge was issued for another room")
	// ErrOtherRequest: the challenge was issued for another auth request.
	ErrOtherRequest = errors.New("proof's challenge was issued for another request")
)

// Code is the error code a client sees for a refusal of Verify: the
// reason label of the refusals metric too.
func Code(err error) string {
	switch {
	case errors.Is(err, ErrExpired):
		return "proof_expired"
	case errors.Is(err, ErrOtherRoom):
		return "proof_other_room"
	case errors.Is(err, ErrOtherRequest):
		return "proof_other_request"
	default:
		return "proof_invalid"
	}
}

// Challenge is what a client is given to solve, as ALTCHA's widget reads
// it from its challenge URL.
type Challenge struct {
	Algorithm string `json:"algorithm"`
	Challenge string `json:"challenge"`
	MaxNumber int64  `json:"maxnumber"`
	Salt      string `json:"salt"`
	Signature string `json:"signature"`
}

// Payload is what a client returns, base64-encoded JSON.
type Payload struct {
	Algorithm string `json:"algorithm"`
	Challenge string `json:"challenge"`
	Number    int64  `json:"number"`
	Salt      string `json:"salt"`
	Signature string `json:"signature"`
}

// Proof is a payload Verify accepted.
type Proof struct {
	// Issued is when the challenge was issued (its expiry less the TTL),
	// for the solve-time histogram.
	Issued time.Time
	Number int64
}

// Issuer issues and verifies challenges under the cookie secrets: the
// first signs, every one verifies, so a challenge issued before a secret
// rotation is still accepted after it.
type Issuer struct {
	keys [][]byte
	now  func() time.Time
	ttl  time.Duration
}

// Option changes an Issuer's defaults.
type Option func(*Issuer)

// WithClock makes the issuer read time from now (tests, and the server's
// one clock).
func WithClock(now func() time.Time) Option { return func(i *Issuer) { i.now = now } }

// WithTTL changes how long a challenge may be answered (DefaultTTL).
func WithTTL(d time.Duration) Option { return func(i *Issuer) { i.ttl = d } }

// New derives one HMAC key per secret. The key is the hex form of the
// derived bytes, used as text: ALTCHA's libraries take the HMAC key as a
// string, so an operator can check a payload with altcha-lib's own
// verifySolution given HMACKey.
func New(secrets [][]byte, opts ...Option) (*Issuer, error) {
	if len(secrets) == 0 {
		return nil, errors.New("challenge issuer: no secrets")
	}
	i := &Issuer{now: time.Now, ttl: DefaultTTL}
	for n, s := range secrets {
		if len(s) < keys.MinSecretLen {
			return nil, fmt.Errorf("challenge issuer: secret %d is %d bytes, want at least %d", n, len(s), keys.MinSecretLen)
		}
		i.keys = append(i.keys, []byte(hex.EncodeToString(keys.DeriveKey(s, "altcha challenge", 32))))
	}
	for _, o := range opts {
		o(i)
	}
	return i, nil
}

// HMACKey is the key the issuer signs with, as ALTCHA's libraries take it
// (for tests that verify with altcha-lib). It is a secret.
func (i *Issuer) HMACKey() string { return string(i.keys[0]) }

// RequestTag is the short hash of an auth request that a salt carries:
// the request id itself is long (a sealed request) and need not be shown.
func RequestTag(request string) string {
	sum := sha256.Sum256([]byte(request))
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// Issue returns a new challenge for request in room, whose number is drawn
// uniformly from [0, maxNumber]: the work expected of a solver is
// maxNumber/2 hashes.
func (i *Issuer) Issue(room, request string, maxNumber int64) Challenge {
	var raw [12]byte
	_, _ = rand.Read(raw[:])
	params := url.Values{
		"expires": {strconv.FormatInt(i.now().Add(i.ttl).Unix(), 10)},
		"room":    {room},
		"req":     {RequestTag(request)},
	}
	// The trailing & is ALTCHA's delimiter against parameter splicing.
	salt := hex.EncodeToString(raw[:]) + "?" + params.Encode() + "&"
	n, err := rand.Int(rand.Reader, big.NewInt(max(maxNumber, 1)+1))
	if err != nil {
		panic("challenge: crypto/rand failed: " + err.Error())
	}
	ch := hashHex(salt, n.Int64())
	return Challenge{Algorithm: Algorithm, Challenge: ch, MaxNumber: max(maxNumber, 1), Salt: salt, Signature: sign(i.keys[0], ch)}
}

// Verify checks a payload for request in room and returns the proof. The
// signature is checked before anything the salt says, so the other
// refusals are only ever given for Anteroom's own challenges.
func (i *Issuer) Verify(payload, room, request string) (Proof, error) {
	if len(payload) > maxPayload {
		return Proof{}, fmt.Errorf("%w: payload of %d bytes", ErrInvalid, len(payload))
	}
	raw, err := base64.StdEncoding.DecodeString(payload)
	if err != nil {
		// btoa pads; a client that strips the padding is forgiven.
		if raw, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(payload, "=")); err != nil {
			return Proof{}, fmt.Errorf("%w: not base64", ErrInvalid)
		}
	}
	var p Payload
	if err := json.Unmarshal(raw, &p); err != nil {
		return Proof{}, fmt.Errorf("%w: not JSON: %v", ErrInvalid, err)
	}
	if p.Algorithm != Algorithm || p.Number < 0 || len(p.Salt) > maxPayload {
		return Proof{}, fmt.Errorf("%w: algorithm %q, number %d", ErrInvalid, p.Algorithm, p.Number)
	}
	signed := false
	for _, k := range i.keys {
		if subtle.ConstantTimeCompare([]byte(sign(k, p.Challenge)), []byte(p.Signature)) == 1 {
			signed = true
		}
	}
	if !signed {
		return Proof{}, fmt.Errorf("%w: signature", ErrInvalid)
	}
	if subtle.ConstantTimeCompare([]byte(hashHex(p.Salt, p.Number)), []byte(p.Challenge)) != 1 {
		return Proof{}, fmt.Errorf("%w: number does not solve the challenge", ErrInvalid)
	}
	_, query, _ := strings.Cut(p.Salt, "?")
	params, err := url.ParseQuery(strings.TrimSuffix(query, "&"))
	if err != nil {
		return Proof{}, fmt.Errorf("%w: salt: %v", ErrInvalid, err)
	}
	expires, err := strconv.ParseInt(params.Get("expires"), 10, 64)
	if err != nil {
		return Proof{}, fmt.Errorf("%w: salt has no expiry", ErrInvalid)
	}
	at := time.Unix(expires, 0)
	if !i.now().Before(at) {
		return Proof{}, ErrExpired
	}
	if params.Get("room") != room {
		return Proof{}, ErrOtherRoom
	}
	if subtle.ConstantTimeCompare([]byte(params.Get("req")), []byte(RequestTag(request))) != 1 {
		return Proof{}, ErrOtherRequest
	}
	return Proof{Issued: at.Add(-i.ttl), Number: p.Number}, nil
}

// Encode is the payload a client returns for challenge c solved by
// number, as ALTCHA's widget encodes it (btoa of the JSON).
func Encode(c Challenge, number int64) string {
	b, _ := json.Marshal(Payload{Algorithm: c.Algorithm, Challenge: c.Challenge, Number: number, Salt: c.Salt, Signature: c.Signature})
	return base64.StdEncoding.EncodeToString(b)
}

// Solve finds the number of c by brute force from 0, as every ALTCHA
// solver does, hashing on one core; false if none up to c.MaxNumber
// solves it. It is the native solver a bot would run (bench, tests).
func Solve(c Challenge) (int64, bool) {
	want, err := hex.DecodeString(c.Challenge)
	if err != nil || len(want) != sha256.Size {
		return 0, false
	}
	buf := make([]byte, 0, len(c.Salt)+20)
	buf = append(buf, c.Salt...)
	for n := int64(0); n <= c.MaxNumber; n++ {
		sum := sha256.Sum256(strconv.AppendInt(buf, n, 10))
		if string(sum[:]) == string(want) {
			return n, true
		}
	}
	return 0, false
}

func hashHex(salt string, n int64) string {
	sum := sha256.Sum256(strconv.AppendInt([]byte(salt), n, 10))
	return hex.EncodeToString(sum[:])
}

func sign(key []byte, challenge string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(challenge))
	return hex.EncodeToString(m.Sum(nil))
}
