package keys

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/redis/go-redis/v9"

	"github.com/anteroom/anteroom/internal/testredis"
)

var fixedNow = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func testOptions(alg jose.SignatureAlgorithm) Options {
	return Options{
		Algorithm: alg,
		Now:       func() time.Time { return fixedNow },
		Logger:    quietLogger(),
	}
}

func mustManager(t *testing.T, rdb redis.UniversalClient, box *Box, opts Options) *Manager {
	t.Helper()
	m, err := NewManager(context.Background(), rdb, box, opts)
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	return m
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return string(b)
}

func TestManagerCreatesThenShares(t *testing.T) {
	srv := testredis.Start(t)
	rdb := srv.Client(t)
	box := mustBox(t, "signing keys", secret(1))

	first := mustManager(t, rdb, box, testOptions(""))
	k := first.Signing()
	if k.Algorithm != jose.RS256 {
		t.Fatalf("default algorithm = %s, want RS256", k.Algorithm)
	}
	if !k.Created.Equal(fixedNow) {
		t.Fatalf("Created = %v, want the injected clock's %v", k.Created, fixedNow)
	}
	if k.Public.KeyID != k.ID || k.Public.Use != "sig" || k.Public.Algorithm != "RS256" || !k.Public.IsPublic() {
		t.Fatalf("Public JWK = %+v, want public, use sig, alg RS256, kid %s", k.Public, k.ID)
	}

	// The second instance runs later with a clock that would stamp a
	// different time, so equal Created proves it read rather than created.
	opts := testOptions("")
	opts.Now = func() time.Time { return fixedNow.Add(time.Hour) }
	second := mustManager(t, rdb, box, opts)
	if got := second.Signing(); got.ID != k.ID || !got.Created.Equal(fixedNow) {
		t.Fatalf("second instance signs with %s created %v, want %s created %v", got.ID, got.Created, k.ID, fixedNow)
	}
	if a, b := jsonOf(t, first.JWKS()), jsonOf(t, second.JWKS()); a != b {
		t.Fatalf("instances serve different JWKS:\n%s\n%s", a, b)
	}
}

func TestRecordFormat(t *testing.T) {
	srv := testredis.Start(t)
	rdb := srv.Client(t)
	box := mustBox(t, "signing keys", secret(1))
	m := mustManager(t, rdb, box, testOptions(jose.ES256))
	kid := m.Signing().ID

	raw, err := rdb.Get(context.Background(), DefaultRedisKey).Result()
	if err != nil {
		t.Fatalf("record not at %s: %v", DefaultRedisKey, err)
	}
	var rec struct {
		Version int `json:"version"`
		Keys    []map[string]any
	}
	if err := json.Unmarshal([]byte(raw), &rec); err != nil {
		t.Fatalf("record is not JSON: %v\n%s", err, raw)
	}
	if rec.Version != 1 || len(rec.Keys) != 1 {
		t.Fatalf("record = %s, want version 1 with one key", raw)
	}
	rk := rec.Keys[0]
	if rk["kid"] != kid || rk["alg"] != "ES256" || rk["created"] != "2026-11-01T12:00:00Z" {
		t.Fatalf("record key = %v", rk)
	}
	sealed, err := base64.RawURLEncoding.DecodeString(rk["private"].(string))
	if err != nil {
		t.Fatalf("private is not base64url: %v", err)
	}
	plain, err := box.Open(sealed, []byte(kid))
	if err != nil {
		t.Fatalf("private does not open with ad=kid: %v", err)
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(plain); err != nil || jwk.IsPublic() {
		t.Fatalf("sealed value is not a private JWK: %v", err)
	}
	// The private scalar must not appear in the clear anywhere in Redis.
	var d struct{ D string }
	json.Unmarshal(plain, &d)
	if d.D == "" || strings.Contains(raw, d.D) {
		t.Fatalf("private key material visible in the record")
	}
}

func TestConcurrentCreation(t *testing.T) {
	srv := testredis.Start(t)
	rdb := srv.Client(t)
	box := mustBox(t, "signing keys", secret(1))

	const n = 5
	kids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			m, err := NewManager(context.Background(), rdb, box, testOptions(jose.ES256))
			if err != nil {
				errs[i] = err
				return
			}
			kids[i] = m.Signing().ID
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("manager %d: %v", i, errs[i])
		}
		if kids[i] != kids[0] {
			t.Fatalf("managers disagree on the signing key: %v", kids)
		}
	}
	var rec record
	raw, _ := rdb.Get(context.Background(), DefaultRedisKey).Result()
	if err := json.Unmarshal([]byte(raw), &rec); err != nil || len(rec.Keys) != 1 || rec.Keys[0].KID != kids[0] {
		t.Fatalf("record after concurrent creation = %s (%v), want exactly key %s", raw, err, kids[0])
	}
}

func TestSignAndVerifyWithJWKS(t *testing.T) {
	for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.ES256} {
		t.Run(string(alg), func(t *testing.T) {
			srv := testredis.Start(t)
			m := mustManager(t, srv.Client(t), mustBox(t, "signing keys", secret(1)), testOptions(alg))
			k := m.Signing()
			if k.Algorithm != alg || k.Public.Algorithm != string(alg) {
				t.Fatalf("key algorithm = %s (JWK %s), want %s", k.Algorithm, k.Public.Algorithm, alg)
			}

			signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.Algorithm, Key: k.Private},
				(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", k.ID))
			if err != nil {
				t.Fatalf("NewSigner: %v", err)
			}
			jws, err := signer.Sign([]byte(`{"sub":"visitor"}`))
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			compact, err := jws.CompactSerialize()
			if err != nil {
				t.Fatalf("CompactSerialize: %v", err)
			}

			// Verify the way a relying party would: from the published JSON.
			var published jose.JSONWebKeySet
			if err := json.Unmarshal([]byte(jsonOf(t, m.JWKS())), &published); err != nil {
				t.Fatalf("JWKS does not round-trip through JSON: %v", err)
			}
			parsed, err := jose.ParseSignedCompact(compact, []jose.SignatureAlgorithm{alg})
			if err != nil {
				t.Fatalf("ParseSignedCompact: %v", err)
			}
			kid := parsed.Signatures[0].Header.KeyID
			found := published.Key(kid)
			if len(found) != 1 {
				t.Fatalf("JWKS has %d keys with kid %q, want 1", len(found), kid)
			}
			if !found[0].IsPublic() {
				t.Fatal("JWKS publishes a private key")
			}
			payload, err := parsed.Verify(found[0])
			if err != nil {
				t.Fatalf("Verify with the JWKS key: %v", err)
			}
			if string(payload) != `{"sub":"visitor"}` {
				t.Fatalf("payload = %s", payload)
			}
		})
	}
}

func TestJWKSHasNoPrivateMaterial(t *testing.T) {
	srv := testredis.Start(t)
	m := mustManager(t, srv.Client(t), mustBox(t, "signing keys", secret(1)), testOptions(jose.RS256))
	var set struct{ Keys []map[string]any }
	if err := json.Unmarshal([]byte(jsonOf(t, m.JWKS())), &set); err != nil {
		t.Fatal(err)
	}
	for _, k := range set.Keys {
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			if _, ok := k[private]; ok {
				t.Fatalf("JWKS key has private member %q: %v", private, k)
			}
		}
		if k["use"] != "sig" || k["alg"] != "RS256" || k["kid"] != m.Signing().ID {
			t.Fatalf("JWKS key = %v", k)
		}
	}
}

func TestWrongSecretsFail(t *testing.T) {
	srv := testredis.Start(t)
	rdb := srv.Client(t)
	mustManager(t, rdb, mustBox(t, "signing keys", secret(1)), testOptions(jose.ES256))

	for name, box := range map[string]*Box{
		"other secret":  mustBox(t, "signing keys", secret(2)),
		"other purpose": mustBox(t, "cookies", secret(1)),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewManager(context.Background(), rdb, box, testOptions(jose.ES256))
			if err == nil || !strings.Contains(err.Error(), "cookie_keys do not match the ones that sealed it") {
				t.Fatalf("NewManager error = %v, want the cookie_keys mismatch", err)
			}
			if !errors.Is(err, ErrOpen) {
				t.Fatalf("error %v does not wrap ErrOpen", err)
			}
		})
	}
	t.Run("rotated secrets", func(t *testing.T) {
		// New secret first, the old one still listed: the key must open.
		box := mustBox(t, "signing keys", secret(2), secret(1))
		if _, err := NewManager(context.Background(), rdb, box, testOptions(jose.ES256)); err != nil {
			t.Fatalf("NewManager after secret rotation: %v", err)
		}
	})
}

func TestInvalidAlgorithmRejected(t *testing.T) {
	srv := testredis.Start(t)
	rdb := srv.Client(t)
	for _, alg := range []jose.SignatureAlgorithm{jose.HS256, jose.PS256, jose.ES384, jose.EdDSA, "none"} {
		_, err := NewManager(context.Background(), rdb, mustBox(t, "signing keys", secret(1)), testOptions(alg))
		if err == nil || !strings.Contains(err.Error(), "unsupported signing algorithm") {
			t.Errorf("algorithm %s: err = %v, want unsupported", alg, err)
		}
	}
	if n, _ := rdb.Exists(context.Background(), DefaultRedisKey).Result(); n != 0 {
		t.Fatal("a rejected manager wrote a record")
	}
}

func TestChangedAlgorithmIsScheduledNotImposed(t *testing.T) {
	srv := testredis.Start(t)
	rdb := srv.Client(t)
	box := mustBox(t, "signing keys", secret(1))
	created := mustManager(t, rdb, box, testOptions(jose.ES256))
	es := created.Signing()

	var logs bytes.Buffer
	clk := &testClock{t: fixedNow.Add(time.Hour)}
	opts := testOptions(jose.RS256)
	opts.Now = clk.Now
	opts.PublishAhead = 2 * time.Hour
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	m := mustManager(t, rdb, box, opts)
	// The stored ES256 key keeps signing: an RS256 key signing at once
	// would not be in any relying party's cached JWKS yet.
	if k := m.Signing(); k.ID != es.ID || k.Algorithm != jose.ES256 {
		t.Fatalf("manager configured for RS256 signs with %s %s at once, want the stored ES256 key %s until the new one is due", k.Algorithm, k.ID, es.ID)
	}
	v := m.Verification()
	if len(v) != 2 || v[1].Algorithm != jose.RS256 || !v[1].NotBefore.Equal(clk.Now().Add(2*time.Hour)) {
		t.Fatalf("published = %v, want the ES256 key and an RS256 key signing from %v", describe(v), clk.Now().Add(2*time.Hour))
	}
	if got := m.Algorithms(); !slices.Equal(got, []jose.SignatureAlgorithm{jose.ES256, jose.RS256}) {
		t.Fatalf("Algorithms = %v, want [ES256 RS256] while both are published", got)
	}
	if !strings.Contains(logs.String(), "scheduled signing key") || !strings.Contains(logs.String(), "kid="+v[1].ID) || !strings.Contains(logs.String(), "alg=RS256") {
		t.Fatalf("no log of the scheduled key; log:\n%s", logs.String())
	}
	// An instance still configured for ES256 does not schedule an ES256 key
	// over the pending RS256 one: a rolling change adds one key, not one per
	// instance per refresh.
	old := testOptions(jose.ES256)
	old.Now = clk.Now
	oldInstance := mustManager(t, rdb, box, old)
	if n := len(oldInstance.Verification()); n != 2 {
		t.Fatalf("an instance on the old algorithm scheduled another key: %d published", n)
	}

	clk.Advance(2 * time.Hour)
	if k := m.Signing(); k.ID != v[1].ID || k.Algorithm != jose.RS256 {
		t.Fatalf("at its not_before the RS256 key does not sign: %s %s", k.Algorithm, k.ID)
	}
}

func TestCustomRedisKey(t *testing.T) {
	srv := testredis.Start(t)
	rdb := srv.Client(t)
	box := mustBox(t, "signing keys", secret(1))
	opts := testOptions(jose.ES256)
	opts.RedisKey = "tenant-a:keys"
	a := mustManager(t, rdb, box, opts)
	b := mustManager(t, rdb, box, testOptions(jose.ES256))
	if a.Signing().ID == b.Signing().ID {
		t.Fatal("managers on different Redis keys share a signing key")
	}
	if n, _ := rdb.Exists(context.Background(), "tenant-a:keys", DefaultRedisKey).Result(); n != 2 {
		t.Fatalf("expected both records to exist, EXISTS = %d", n)
	}
}

// addKey writes a second key into the record at DefaultRedisKey, the way a
// rotating writer does (a key published ahead of its not_before), with a
// field this version does not know.
func addKey(t *testing.T, rdb redis.UniversalClient, box *Box) string {
	t.Helper()
	ctx := context.Background()
	opts := testOptions(jose.ES256)
	opts.RedisKey = "scratch:keys"
	other := mustManager(t, rdb, box, opts)
	var scratch, rec map[string]any
	raw := rdb.Get(ctx, "scratch:keys").Val()
	json.Unmarshal([]byte(raw), &scratch)
	raw = rdb.Get(ctx, DefaultRedisKey).Val()
	json.Unmarshal([]byte(raw), &rec)
	extra := scratch["keys"].([]any)[0].(map[string]any)
	extra["not_before"] = "2026-12-01T00:00:00Z"
	rec["keys"] = append(rec["keys"].([]any), extra)
	rec["rotation"] = map[string]any{"next": other.Signing().ID}
	if err := rdb.Set(ctx, DefaultRedisKey, jsonOf(t, rec), 0).Err(); err != nil {
		t.Fatal(err)
	}
	return other.Signing().ID
}

func TestRefreshPicksUpChangedRecord(t *testing.T) {
	srv := testredis.Start(t)
	rdb := srv.Client(t)
	box := mustBox(t, "signing keys", secret(1))
	m := mustManager(t, rdb, box, testOptions(jose.ES256))
	signing := m.Signing().ID

	added := addKey(t, rdb, box)
	if err := m.Refresh(context.Background()); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	v := m.Verification()
	if len(v) != 2 || v[0].ID != signing || v[1].ID != added {
		t.Fatalf("Verification = %d keys, want [%s %s]", len(v), signing, added)
	}
	if m.Signing().ID != signing {
		t.Fatalf("signing key changed to %s; the first key in the record signs", m.Signing().ID)
	}
	if jwks := m.JWKS(); len(jwks.Key(added)) != 1 {
		t.Fatalf("JWKS lacks the added key %s", added)
	}
	// A new instance reads the extended record too.
	if n := len(mustManager(t, rdb, box, testOptions(jose.ES256)).Verification()); n != 2 {
		t.Fatalf("new instance sees %d keys, want 2", n)
	}
}

func TestVerificationReturnsCopy(t *testing.T) {
	srv := testredis.Start(t)
	m := mustManager(t, srv.Client(t), mustBox(t, "signing keys", secret(1)), testOptions(jose.ES256))
	v := m.Verification()
	v[0].ID = "mutated"
	if m.Verification()[0].ID == "mutated" || m.Signing().ID == "mutated" {
		t.Fatal("mutating Verification's result changed the manager")
	}
}

func TestRefreshKeepsSetOnBadRecord(t *testing.T) {
	srv := testredis.Start(t)
	rdb := srv.Client(t)
	box := mustBox(t, "signing keys", secret(1))
	m := mustManager(t, rdb, box, testOptions(jose.ES256))
	kid := m.Signing().ID
	ctx := context.Background()

	for name, raw := range map[string]string{
		"not json":     "{",
		"future":       `{"version":2,"keys":[]}`,
		"no keys":      `{"version":1,"keys":[]}`,
		"bad private":  `{"version":1,"keys":[{"kid":"x","alg":"ES256","private":"!!"}]}`,
		"foreign seal": `{"version":1,"keys":[{"kid":"x","alg":"ES256","private":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]}`,
	} {
		if err := rdb.Set(ctx, DefaultRedisKey, raw, 0).Err(); err != nil {
			t.Fatal(err)
		}
		if err := m.Refresh(ctx); err == nil {
			t.Errorf("%s: Refresh accepted %s", name, raw)
		}
		if m.Signing().ID != kid || len(m.Verification()) != 1 {
			t.Errorf("%s: a failed Refresh replaced the key set", name)
		}
		if _, err := NewManager(ctx, rdb, box, testOptions(jose.ES256)); err == nil {
			t.Errorf("%s: NewManager accepted %s", name, raw)
		}
	}
}

func TestStoredKeyMustMatchItsKid(t *testing.T) {
	srv := testredis.Start(t)
	rdb := srv.Client(t)
	box := mustBox(t, "signing keys", secret(1))
	ctx := context.Background()
	m := mustManager(t, rdb, box, testOptions(jose.ES256))

	// Seal a different key under the first one's kid, as a buggy writer
	// might: the thumbprint check must catch it even though the seal opens.
	opts := testOptions(jose.ES256)
	opts.RedisKey = "scratch:keys"
	other := mustManager(t, rdb, box, opts)
	private, err := jose.JSONWebKey{Key: other.Signing().Private, Algorithm: "ES256"}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	rec := record{Version: 1, Keys: []recordKey{{
		KID: m.Signing().ID, Alg: "ES256", Created: fixedNow,
		Private: base64.RawURLEncoding.EncodeToString(box.Seal(private, []byte(m.Signing().ID))),
	}}}
	rdb.Set(ctx, DefaultRedisKey, jsonOf(t, rec), 0)
	if err := m.Refresh(ctx); err == nil || !strings.Contains(err.Error(), "thumbprint") {
		t.Fatalf("Refresh error = %v, want a thumbprint mismatch", err)
	}

	// An RSA key stored as ES256 must be rejected too.
	rsaOpts := testOptions(jose.RS256)
	rsaOpts.RedisKey = "scratch:rsa"
	rsaKey := mustManager(t, rdb, box, rsaOpts).Signing()
	private, _ = jose.JSONWebKey{Key: rsaKey.Private}.MarshalJSON()
	rec.Keys[0] = recordKey{KID: rsaKey.ID, Alg: "ES256", Private: base64.RawURLEncoding.EncodeToString(box.Seal(private, []byte(rsaKey.ID)))}
	rdb.Set(ctx, DefaultRedisKey, jsonOf(t, rec), 0)
	if err := m.Refresh(ctx); err == nil || !strings.Contains(err.Error(), "ES256 key is RSA") {
		t.Fatalf("Refresh error = %v, want an algorithm/key type mismatch", err)
	}
}

func TestRefreshRestoresMissingRecord(t *testing.T) {
	srv := testredis.Start(t)
	rdb := srv.Client(t)
	box := mustBox(t, "signing keys", secret(1))
	m := mustManager(t, rdb, box, testOptions(jose.ES256))
	kid := m.Signing().ID

	if err := srv.FlushAll(); err != nil {
		t.Fatal(err)
	}
	if err := m.Refresh(context.Background()); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if got := mustManager(t, rdb, box, testOptions(jose.ES256)).Signing().ID; got != kid {
		t.Fatalf("after Redis lost the record a new instance signs with %s, want the restored %s", got, kid)
	}
}

func TestRunRefreshesAndSurvivesRedisOutage(t *testing.T) {
	srv := testredis.Start(t)
	if !srv.Real() {
		t.Skip("miniredis fallback: cannot kill Redis")
	}
	rdb := srv.Client(t)
	box := mustBox(t, "signing keys", secret(1))
	opts := testOptions(jose.ES256)
	opts.RefreshEvery = time.Millisecond
	m := mustManager(t, rdb, box, opts)
	kid := m.Signing().ID

	refreshed := make(chan error, 1)
	m.afterRefresh = func(err error) {
		select {
		case refreshed <- err:
		default:
		}
	}
	// waitFor returns once a refresh has reported a result satisfying ok.
	waitFor := func(what string, ok func(error) bool) {
		t.Helper()
		timeout := time.After(30 * time.Second)
		for {
			select {
			case err := <-refreshed:
				if ok(err) {
					return
				}
			case <-timeout:
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		m.Run(ctx)
		close(stopped)
	}()

	added := addKey(t, rdb, box)
	waitFor("the added key", func(err error) bool { return err == nil && len(m.Verification()) == 2 })
	if jwks := m.JWKS(); jwks.Key(added) == nil {
		t.Fatal("Run did not publish the added key")
	}

	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	waitFor("a failed refresh", func(err error) bool { return err != nil })
	if m.Signing().ID != kid || len(m.Verification()) != 2 {
		t.Fatal("a failed refresh replaced the key set")
	}

	// Restarted without persistence, Redis is empty: Run must put the set back.
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor("the record restored", func(err error) bool {
		return err == nil && rdb.Exists(context.Background(), DefaultRedisKey).Val() == 1
	})
	if got := mustManager(t, rdb, box, testOptions(jose.ES256)).Verification(); len(got) != 2 || got[0].ID != kid {
		t.Fatalf("restored record has %d keys, want 2 with %s first", len(got), kid)
	}

	cancel()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
}

func TestNewManagerRejectsNil(t *testing.T) {
	srv := testredis.Start(t)
	box := mustBox(t, "signing keys", secret(1))
	if _, err := NewManager(context.Background(), nil, box, Options{}); err == nil {
		t.Error("nil client accepted")
	}
	if _, err := NewManager(context.Background(), srv.Client(t), nil, Options{}); err == nil {
		t.Error("nil box accepted")
	}
}

func TestNewManagerRedisDown(t *testing.T) {
	srv := testredis.Start(t)
	if !srv.Real() {
		t.Skip("miniredis fallback: cannot kill Redis")
	}
	rdb := srv.Client(t)
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := NewManager(ctx, rdb, mustBox(t, "signing keys", secret(1)), testOptions(jose.ES256))
	if err == nil || !strings.Contains(err.Error(), "read "+DefaultRedisKey) {
		t.Fatalf("NewManager with Redis down: err = %v", err)
	}
}

func TestPublished(t *testing.T) {
	m := mustManager(t, testredis.Start(t).Client(t), mustBox(t, "signing keys", secret(1)), testOptions(""))
	if !m.Published(m.Signing().ID) {
		t.Fatal("the signing key is not published")
	}
	if m.Published("retired-or-never-issued") || m.Published("") {
		t.Fatal("an unknown kid is published")
	}
}
