package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/anteroom/anteroom/internal/rediskey"
	"github.com/anteroom/anteroom/waitingroom"
)

// The authorization request (OIDC Core §3.1.2), from /authorize to the
// visitor's admission.
//
// Storage contract. While the visitor waits nothing is stored: the request
// is sealed into its own id (request.go), so CreateAuthRequest writes
// nothing and cannot fail on the store, and opening an id (open, pending,
// Provider.Open) is computation any instance can do, with no Redis. The
// request's record, anteroom:ar:<requestKey>, is written only when the
// visitor is admitted, by the code flow (code.go); AuthRequestByID reads it
// with one HGET, which changes nothing and may be repeated.

// Errors of the queue side of a flow.
var (
	// ErrUnknownRequest is returned for an auth request id we did not issue.
	ErrUnknownRequest = fmt.Errorf("auth request: %w", waitingroom.ErrUnknownRequest)
	// ErrRoomGone is returned for an auth request whose room an operator
	// deleted while it waited.
	ErrRoomGone = fmt.Errorf("auth request: %w", waitingroom.ErrUnknownRoom)
	// ErrRequestExpired is returned for an auth request older than its room's max wait.
	ErrRequestExpired = fmt.Errorf("auth request: %w", waitingroom.ErrExpired)
	// ErrRequestAnswered is returned when an auth request was answered
	// with its code already.
	ErrRequestAnswered = fmt.Errorf("auth request: %w", waitingroom.ErrAnswered)
)

// requestRedisKey names the record of the auth request sealed in id, which
// exists once the visitor is admitted (code.go).
func (s *storage) requestRedisKey(id string) string { return rediskey.AuthRequest + requestKey(id) }

// CreateAuthRequest implements op.Storage. It enforces what the library
// leaves to us: PKCE with S256 only, and required for public clients.
func (s *storage) CreateAuthRequest(ctx context.Context, req *zoidc.AuthRequest, _ string) (op.AuthRequest, error) {
	c, ok := s.clients.get(req.ClientID)
	if !ok {
		return nil, zoidc.ErrInvalidClient().WithDescription("unknown client")
	}
	switch {
	case c.roomGone:
		// The operator deleted the client's room: the authorization
		// server denies the request (RFC 6749 §4.1.2.1, access_denied),
		// answered at the registered redirect_uri like any refusal.
		return nil, zoidc.ErrAccessDenied().WithDescription("the waiting room of this client no longer exists")
	case req.ResponseType != zoidc.ResponseTypeCode:
		// Every client is offered the other OIDC response types (see
		// client.ResponseTypes) so that they end here, with the error
		// RFC 6749 §4.1.2.1 names for them, not unauthorized_client.
		e := zoidc.ErrInvalidRequest().WithDescription("only response_type=code is supported")
		e.ErrorType = "unsupported_response_type"
		return nil, e
	case req.CodeChallenge != "" && req.CodeChallengeMethod != zoidc.CodeChallengeMethodS256:
		return nil, zoidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	case req.CodeChallenge == "" && (c.public || c.cfg.RequirePKCE):
		return nil, zoidc.ErrInvalidRequest().WithDescription("PKCE is required: send code_challenge with code_challenge_method=S256")
	case len(req.State)+len(req.Nonce) > 2048:
		return nil, zoidc.ErrInvalidRequest().WithDescription("state and nonce are too long")
	}
	a := &AuthRequest{
		ClientID:            req.ClientID,
		RedirectURI:         req.RedirectURI,
		State:               req.State,
		Nonce:               req.Nonce,
		Scopes:              req.Scopes,
		ResponseType:        req.ResponseType,
		ResponseMode:        req.ResponseMode,
		CodeChallenge:       req.CodeChallenge,
		CodeChallengeMethod: req.CodeChallengeMethod,
		Prompt:              req.Prompt,
		MaxAge:              req.MaxAge,
		CreatedAt:           s.now(),
	}
	a.ID = sealRequest(s.box, a)
	return a, nil
}

// open opens a sealed request id; it reads nothing from Redis.
func (s *storage) open(id string) (*AuthRequest, *client, error) {
	a, err := openRequest(s.box, id)
	if err != nil {
		return nil, nil, ErrUnknownRequest
	}
	c, ok := s.clients.get(a.ClientID)
	if !ok {
		return nil, nil, ErrUnknownRequest
	}
	return a, c, nil
}

// AuthRequestByID implements op.Storage: the sealed request, with the
// admission record from Redis once there is one.
// A visitor admitted just before the max wait ran out still finishes: the
// admission record, not the request's age, decides then.
func (s *storage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	a, c, err := s.open(id)
	if err != nil {
		return nil, err
	}
	rec, err := s.rdb.HGet(ctx, s.requestRedisKey(id), "rec").Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		if !s.now().Before(c.room.WaitStart(a.CreatedAt).Add(c.room.MaxWait)) {
			return nil, ErrRequestExpired
		}
		return a, nil
	case err != nil:
		return nil, down(ctx, fmt.Errorf("read auth request: %w", err))
	}
	var q QueueClaims
	if err := json.Unmarshal(rec, &q); err != nil {
		return nil, fmt.Errorf("decode auth request: %w", err)
	}
	a.Queue = &q
	return a, nil
}
