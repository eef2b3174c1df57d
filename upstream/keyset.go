package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// keySet is the provider's JWKS (OIDC Core §10.1.1), cached: read on first
// use and again, at most every keyRefetch, when a token names a key it does
// not hold (the provider rotated). A failed read keeps the keys it had and
// is reported through the context's fetchResult, so that "the provider is
// down" is told from "the token is forged".
type keySet struct {
	mu      sync.Mutex
	url     string
	keys    []jose.JSONWebKey
	fetched time.Time
	now     func() time.Time
	http    *http.Client
}

// keyRefetch bounds how often an unknown kid reads the JWKS again: a
// forged token with a made-up kid must not make Anteroom hammer the
// provider.
const keyRefetch = 10 * time.Second

// fetchKey carries a *fetchResult through go-oidc's verifier, which wraps
// the key set's errors as text.
type fetchKey struct{}

// fetchResult records a key read that failed during one verification.
type fetchResult struct{ err error }

func (k *keySet) setURL(u string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.url != u {
		k.url, k.keys, k.fetched = u, nil, time.Time{}
	}
}

// VerifySignature implements go-oidc's KeySet.
func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(raw, allAlgs) // an ID token is a compact JWS (RFC 7519 §1)
	if err != nil {
		return nil, fmt.Errorf("malformed jwt: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("want exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	for attempt := 0; attempt < 2; attempt++ {
		keys, err := k.current(ctx, attempt > 0)
		if err != nil {
			if r, ok := ctx.Value(fetchKey{}).(*fetchResult); ok {
				r.err = err
			}
			return nil, err
		}
		found := false
		for _, key := range keys {
			if kid != "" && key.KeyID != kid {
				continue
			}
			found = true
			if payload, err := jws.Verify(key); err == nil {
				return payload, nil
			}
		}
		if found {
			return nil, errors.New("signature does not verify")
		}
	}
	return nil, errors.New("no key of the provider signed this token")
}

// current returns the cached keys, reading them first when there are none
// or, with refresh, when the last read is older than keyRefetch.
func (k *keySet) current(ctx context.Context, refresh bool) ([]jose.JSONWebKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.keys != nil && (!refresh || k.now().Sub(k.fetched) < keyRefetch) {
		return k.keys, nil
	}
	var set jose.JSONWebKeySet
	if err := getJSON(ctx, k.http, k.url, &set); err != nil {
		if k.keys != nil {
			return k.keys, nil
		}
		return nil, err
	}
	k.keys, k.fetched = set.Keys, k.now()
	return k.keys, nil
}

// allAlgs are the algorithms a token may be parsed with; go-oidc's
// verifier has checked the token's against the provider's announced ones.
var allAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.ES256, jose.ES384, jose.ES512,
	jose.PS256, jose.PS384, jose.PS512, jose.EdDSA}
