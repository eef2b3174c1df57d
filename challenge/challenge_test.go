package challenge

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	secretA = []byte("0123456789abcdef0123456789abcdef")
	secretB = []byte("fedcba9876543210fedcba9876543210")
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newIssuer(t *testing.T, c *clock, secrets ...[]byte) *Issuer {
	t.Helper()
	i, err := New(secrets, WithClock(c.now))
	if err != nil {
		t.Fatal(err)
	}
	return i
}

func solved(t *testing.T, c Challenge) string {
	t.Helper()
	n, ok := Solve(c)
	if !ok {
		t.Fatalf("no solution for %+v", c)
	}
	return Encode(c, n)
}

// TestIssueIsALTCHA holds an issued challenge to ALTCHA's API
// specification (https://altcha.org/docs/api-specification, "Challenge"):
// challenge = hex SHA-256(salt ‖ number), signature = hex
// HMAC-SHA-256(challenge), salt parameters after "?" ending in "&".
func TestIssueIsALTCHA(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	i := newIssuer(t, c, secretA)
	ch := i.Issue("launch", "request-1", 500)
	if ch.Algorithm != "SHA-256" || ch.MaxNumber != 500 {
		t.Fatalf("challenge %+v", ch)
	}
	n, ok := Solve(ch)
	if !ok || n < 0 || n > 500 {
		t.Fatalf("solve: %d %v", n, ok)
	}
	sum := sha256.Sum256([]byte(ch.Salt + strconv.FormatInt(n, 10)))
	if hex.EncodeToString(sum[:]) != ch.Challenge {
		t.Fatal("challenge is not SHA-256(salt ‖ number)")
	}
	m := hmac.New(sha256.New, []byte(i.HMACKey()))
	m.Write([]byte(ch.Challenge))
	if hex.EncodeToString(m.Sum(nil)) != ch.Signature {
		t.Fatal("signature is not HMAC-SHA-256(challenge) under HMACKey")
	}
	if !strings.HasSuffix(ch.Salt, "&") {
		t.Fatalf("salt %q does not end in the & delimiter", ch.Salt)
	}
	_, q, _ := strings.Cut(ch.Salt, "?")
	params, err := url.ParseQuery(strings.TrimSuffix(q, "&"))
	if err != nil {
		t.Fatal(err)
	}
	if params.Get("room") != "launch" || params.Get("req") != RequestTag("request-1") ||
		params.Get("expires") != strconv.FormatInt(c.t.Add(DefaultTTL).Unix(), 10) {
		t.Fatalf("salt parameters %v", params)
	}
	// The payload is base64 of the JSON ALTCHA's widget sends.
	raw, _ := base64.StdEncoding.DecodeString(Encode(ch, n))
	var fields map[string]any
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"algorithm", "challenge", "number", "salt", "signature"} {
		if _, ok := fields[k]; !ok {
			t.Fatalf("payload lacks %q: %s", k, raw)
		}
	}
	p, err := i.Verify(Encode(ch, n), "launch", "request-1")
	if err != nil {
		t.Fatal(err)
	}
	if !p.Issued.Equal(c.t) || p.Number != n {
		t.Fatalf("proof %+v, issued at %v", p, c.t)
	}
}

func TestVerifyRefusals(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	i := newIssuer(t, c, secretA)
	ch := i.Issue("launch", "req", 300)
	good := solved(t, ch)
	n, _ := Solve(ch)
	forged := ch
	forged.Signature = strings.Repeat("0", 64)
	other := newIssuer(t, c, secretB).Issue("launch", "req", 300)
	cases := []struct {
		name, payload, room, request string
		want                         error
	}{
		{"not base64", "%%%", "launch", "req", ErrInvalid},
		{"not JSON", base64.StdEncoding.EncodeToString([]byte("nope")), "launch", "req", ErrInvalid},
		{"wrong number", Encode(ch, n+1), "launch", "req", ErrInvalid},
		{"forged signature", Encode(forged, n), "launch", "req", ErrInvalid},
		{"another server's", solved(t, other), "launch", "req", ErrInvalid},
		{"other room", good, "sale", "req", ErrOtherRoom},
		{"other request", good, "launch", "req2", ErrOtherRequest},
		{"too long", strings.Repeat("A", 4096), "launch", "req", ErrInvalid},
	}
	for _, tc := range cases {
		if _, err := i.Verify(tc.payload, tc.room, tc.request); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	wrongAlg := Payload{Algorithm: "SHA-1", Challenge: ch.Challenge, Number: n, Salt: ch.Salt, Signature: ch.Signature}
	b, _ := json.Marshal(wrongAlg)
	if _, err := i.Verify(base64.StdEncoding.EncodeToString(b), "launch", "req"); !errors.Is(err, ErrInvalid) {
		t.Errorf("SHA-1: %v", err)
	}
	// expires= is in seconds: the second it names is already too late.
	c.t = c.t.Add(DefaultTTL)
	if _, err := i.Verify(good, "launch", "req"); !errors.Is(err, ErrExpired) {
		t.Errorf("expired: %v", err)
	}
	if Code(ErrExpired) != "proof_expired" || Code(ErrOtherRoom) != "proof_other_room" ||
		Code(ErrOtherRequest) != "proof_other_request" || Code(ErrInvalid) != "proof_invalid" {
		t.Error("codes")
	}
}

// TestVerifyAcrossRotation: a challenge issued under the old first secret
// is still accepted once a new secret is put in front of it.
func TestVerifyAcrossRotation(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	ch := newIssuer(t, c, secretA).Issue("launch", "req", 200)
	payload := solved(t, ch)
	if _, err := newIssuer(t, c, secretB, secretA).Verify(payload, "launch", "req"); err != nil {
		t.Fatal(err)
	}
	if _, err := newIssuer(t, c, secretB).Verify(payload, "launch", "req"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("after the old secret is dropped: %v", err)
	}
}

func TestNewRefusesShortSecrets(t *testing.T) {
	if _, err := New(nil); err == nil {
		t.Error("no secrets accepted")
	}
	if _, err := New([][]byte{[]byte("short")}); err == nil {
		t.Error("short secret accepted")
	}
}

func TestDifficulty(t *testing.T) {
	p := Policy{Mode: UnderLoad, MaxNumber: 1000, JoinsPerSecond: 50}
	for _, tc := range []struct {
		rate float64
		want int64
	}{{0, 0}, {49.9, 0}, {50, 1000}, {100, 2000}, {125, 2500}, {400, 8000}, {10_000, 8000}} {
		if got := p.Difficulty(tc.rate); got != tc.want {
			t.Errorf("under_load at %v/s: %d, want %d", tc.rate, got, tc.want)
		}
	}
	if got := (Policy{Mode: Always, MaxNumber: 7, JoinsPerSecond: 1}).Difficulty(0); got != 7 {
		t.Errorf("always: %d", got)
	}
	if got := (Policy{Mode: Off, MaxNumber: 7, JoinsPerSecond: 1}).Difficulty(1e9); got != 0 {
		t.Errorf("off: %d", got)
	}
	for _, bad := range []Policy{{Mode: "sometimes", MaxNumber: 1, JoinsPerSecond: 1}, {Mode: Off, JoinsPerSecond: 1}, {Mode: Off, MaxNumber: 1}} {
		if bad.Validate() == nil {
			t.Errorf("%+v validated", bad)
		}
	}
}
