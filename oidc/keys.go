package oidc

import (
	"context"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/anteroom/anteroom/keys"
)

// Signing and verification keys.
//
// Storage contract: none here. keys.Manager keeps the keys in Redis and in
// memory and rotates them (package keys); these methods read its memory, so
// they neither touch Redis nor fail.

// signingKey adapts a keys.Key to op.SigningKey.
type signingKey struct{ k keys.Key }

func (s signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return s.k.Algorithm }
func (s signingKey) Key() any                                    { return s.k.Private }
func (s signingKey) ID() string                                  { return s.k.ID }

// publicKey adapts a keys.Key to op.Key.
type publicKey struct{ k keys.Key }

func (p publicKey) ID() string                         { return p.k.ID }
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return p.k.Algorithm }
func (p publicKey) Use() string                        { return "sig" }
func (p publicKey) Key() any                           { return p.k.Public.Key }

// SigningKey implements op.Storage.
func (s *storage) SigningKey(context.Context) (op.SigningKey, error) {
	return signingKey{s.keys.Signing()}, nil
}

// SignatureAlgorithms implements op.Storage: discovery lists the algorithm
// of every published key, so a key of a newly configured algorithm is
// accepted by relying parties that re-read discovery while it is published
// ahead.
func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return s.keys.Algorithms(), nil
}

// KeySet implements op.Storage.
func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	ks := s.keys.Verification()
	out := make([]op.Key, len(ks))
	for i, k := range ks {
		out[i] = publicKey{k}
	}
	return out, nil
}
