package oidc

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/anteroom/anteroom/keys"
)

func testBox(t testing.TB, secret byte) *keys.Box {
	t.Helper()
	b, err := keys.NewBox([][]byte{bytes.Repeat([]byte{secret}, 32)}, "oidc requests")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sampleRequest() *AuthRequest {
	return &AuthRequest{
		ClientID: "shop", RedirectURI: "https://shop.example.com/cb", State: "st\x00ate with spaces",
		Nonce: "n", Scopes: []string{"openid", "offline_access"}, ResponseType: zoidc.ResponseTypeCode,
		ResponseMode: zoidc.ResponseModeQuery, CodeChallenge: "abc", CodeChallengeMethod: zoidc.CodeChallengeMethodS256,
		Prompt: []string{"none"}, CreatedAt: time.Unix(1_700_000_000, 0),
	}
}

func TestSealedRequestRoundTrips(t *testing.T) {
	box := testBox(t, 1)
	a := sampleRequest()
	id := sealRequest(box, a)
	got, err := openRequest(box, id)
	if err != nil {
		t.Fatal(err)
	}
	a.ID = id
	if got.ID != a.ID || got.ClientID != a.ClientID || got.RedirectURI != a.RedirectURI || got.State != a.State ||
		got.Nonce != a.Nonce || len(got.Scopes) != 2 || got.Scopes[1] != "offline_access" || got.ResponseType != a.ResponseType ||
		got.ResponseMode != a.ResponseMode || got.CodeChallenge != a.CodeChallenge || got.CodeChallengeMethod != a.CodeChallengeMethod ||
		!got.PromptNone() || !got.CreatedAt.Equal(a.CreatedAt) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, a)
	}
	if got.Done() {
		t.Fatal("a pending request is done")
	}
	// The id stays URL-sized: what a browser carries in the login URL.
	if len(id) > 400 {
		t.Fatalf("sealed id is %d characters", len(id))
	}
}

// A request without max_age is sealed in the format the previous release
// reads (version 1), so a rolling upgrade does not strand its visitors; one
// with max_age needs version 2, and keeps it.
func TestSealedRequestVersionFollowsMaxAge(t *testing.T) {
	box := testBox(t, 1)
	version := func(id string) byte {
		raw, _ := base64.RawURLEncoding.DecodeString(id)
		b, err := box.Open(raw, sealedAD)
		if err != nil {
			t.Fatal(err)
		}
		return b[0]
	}
	a := sampleRequest()
	if v := version(sealRequest(box, a)); v != 1 {
		t.Fatalf("request without max_age sealed as version %d", v)
	}
	zero, hour := uint(0), uint(3600)
	for _, age := range []*uint{&zero, &hour} {
		a.MaxAge = age
		id := sealRequest(box, a)
		if v := version(id); v != 2 {
			t.Fatalf("request with max_age %d sealed as version %d", *age, v)
		}
		got, err := openRequest(box, id)
		if err != nil || got.MaxAge == nil || *got.MaxAge != *age {
			t.Fatalf("max_age %d round trip: %v %v", *age, got.MaxAge, err)
		}
	}
}

func TestSealedRequestRefusesTamperingAndForeignKeys(t *testing.T) {
	box := testBox(t, 1)
	id := sealRequest(box, sampleRequest())
	raw, _ := base64.RawURLEncoding.DecodeString(id)
	for i := range raw {
		c := bytes.Clone(raw)
		c[i] ^= 0x20
		if _, err := openRequest(box, base64.RawURLEncoding.EncodeToString(c)); !errors.Is(err, errBadRequestID) {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	if _, err := openRequest(testBox(t, 2), id); !errors.Is(err, errBadRequestID) {
		t.Fatalf("other secret opened it: %v", err)
	}
	for _, bad := range []string{"", "!!!", id[:10], id + "A"} {
		if _, err := openRequest(box, bad); err == nil {
			t.Fatalf("opened %q", bad)
		}
	}
}

func FuzzOpenRequest(f *testing.F) {
	box := testBox(f, 1)
	f.Add(sealRequest(box, sampleRequest()))
	f.Add("")
	f.Add("AAAA")
	f.Fuzz(func(t *testing.T, id string) {
		a, err := openRequest(box, id)
		if err == nil && a.ID != id {
			t.Fatalf("opened id %q as %q", id, a.ID)
		}
	})
}

func TestCodeCryptoRoundTrip(t *testing.T) {
	c := boxCrypto{testBox(t, 3)}
	enc, _ := c.Encrypt("request-id")
	if dec, err := c.Decrypt(enc); err != nil || dec != "request-id" {
		t.Fatalf("%q %v", dec, err)
	}
	if _, err := c.Decrypt("header.payload.signature"); err == nil {
		t.Fatal("a JWT decrypted as a code")
	}
}

// FuzzSealRequest: every auth request the provider can be sent comes back
// from its sealed id unchanged.
func FuzzSealRequest(f *testing.F) {
	box := testBox(f, 1)
	a := sampleRequest()
	f.Add(a.ClientID, a.RedirectURI, a.State, a.Nonce, "openid offline_access", "code", "query", a.CodeChallenge, "S256", "none", int64(-1), a.CreatedAt.Unix())
	f.Add("", "", "", "", "", "", "", "", "", "", int64(0), int64(0))
	f.Fuzz(func(t *testing.T, client, redirect, state, nonce, scopes, responseType, responseMode, challenge, method, prompt string, maxAge, created int64) {
		in := &AuthRequest{ClientID: client, RedirectURI: redirect, State: state, Nonce: nonce, Scopes: splitSpaces(scopes),
			ResponseType: zoidc.ResponseType(responseType), ResponseMode: zoidc.ResponseMode(responseMode), CodeChallenge: challenge,
			CodeChallengeMethod: zoidc.CodeChallengeMethod(method), Prompt: splitSpaces(prompt), CreatedAt: time.Unix(created, 0)}
		if maxAge >= 0 {
			u := uint(maxAge)
			in.MaxAge = &u
		}
		id := sealRequest(box, in)
		out, err := openRequest(box, id)
		if err != nil {
			t.Fatalf("sealed %+v, cannot open it: %v", in, err)
		}
		same := out.ID == id && out.ClientID == client && out.RedirectURI == redirect && out.State == state && out.Nonce == nonce &&
			strings.Join(out.Scopes, " ") == scopes && string(out.ResponseType) == responseType && string(out.ResponseMode) == responseMode &&
			out.CodeChallenge == challenge && string(out.CodeChallengeMethod) == method && strings.Join(out.Prompt, " ") == prompt &&
			out.CreatedAt.Unix() == created && (out.MaxAge == nil) == (in.MaxAge == nil) && (out.MaxAge == nil || *out.MaxAge == *in.MaxAge)
		if !same {
			t.Fatalf("sealed %+v, opened %+v", in, out)
		}
	})
}

// FuzzCode: an authorization code (or anything presented as one, or as an
// opaque token) decrypts only if Anteroom encrypted it, and then to what
// was encrypted.
func FuzzCode(f *testing.F) {
	c := boxCrypto{testBox(f, 3)}
	issued := map[string]bool{}
	// Fixed plaintexts: every fuzzing process must know what was issued.
	for _, plain := range []string{"request-id", strings.Repeat("x", 300), ""} {
		enc, _ := c.Encrypt(plain)
		issued[plain] = true
		f.Add(enc)
	}
	f.Add("header.payload.signature")
	f.Fuzz(func(t *testing.T, code string) {
		plain, err := c.Decrypt(code)
		if err == nil && !issued[plain] {
			t.Fatalf("code %q decrypted to %q, which was never encrypted", code, plain)
		}
	})
}
