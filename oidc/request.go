package oidc

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"time"

	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/anteroom/anteroom/keys"
)

// AuthRequest is an authorization request on its way through the queue.
//
// While the visitor waits it is stored nowhere: its fields are sealed into
// its own id (AEAD under the configured secrets), which keeps a waiting
// visitor's Redis cost to the ticket's binding alone. Once the visitor is
// admitted, the request is written to Redis with the ticket's claims and
// lives just long enough to be exchanged for a code.
type AuthRequest struct {
	ID                  string                    `json:"-"`
	ClientID            string                    `json:"client_id"`
	RedirectURI         string                    `json:"redirect_uri"`
	State               string                    `json:"state,omitempty"`
	Nonce               string                    `json:"nonce,omitempty"`
	Scopes              []string                  `json:"scopes"`
	ResponseType        zoidc.ResponseType        `json:"response_type"`
	ResponseMode        zoidc.ResponseMode        `json:"response_mode,omitempty"`
	CodeChallenge       string                    `json:"code_challenge,omitempty"`
	CodeChallengeMethod zoidc.CodeChallengeMethod `json:"code_challenge_method,omitempty"`
	Prompt              []string                  `json:"prompt,omitempty"`
	// MaxAge is the relying party's max_age in seconds (prompt=login
	// makes it 0), nil when it sent none: an admission older than that,
	// from before this request, does not answer it (see Fresh).
	MaxAge    *uint        `json:"max_age,omitempty"`
	CreatedAt time.Time    `json:"created_at"`
	Queue     *QueueClaims `json:"queue,omitempty"`

	// code is the digest of the code this request was looked up by; the
	// code is consumed when tokens are minted from it.
	code string
	// replay is set when the code was spent already: minting from it
	// revokes the grant instead, once the library has authenticated the
	// client and checked PKCE, so that nobody but the code's own client
	// can revoke its tokens.
	replay *codeReplay
}

// codeReplay is what a spent code's record says about the tokens it
// bought.
type codeReplay struct {
	expires              time.Time
	accessID, refreshKey string
}

// QueueClaims is what the queue says about an admitted visitor; it becomes
// the tokens' subject and extra claims.
type QueueClaims struct {
	Subject    string    `json:"sub"`
	Room       string    `json:"room"`
	Position   int64     `json:"queue_position"`
	QueuedAt   time.Time `json:"queued_at"`
	AdmittedAt time.Time `json:"admitted_at"`
	SessionEnd time.Time `json:"session_end"`
	// Ticket is the ticket's id when Subject names a person rather than
	// the ticket (a room with an identity provider, upstream.go); empty
	// otherwise, when Subject is the ticket's id.
	Ticket string `json:"ticket,omitempty"`
	// Identity holds the provider's allow-listed claims for a person.
	Identity map[string]any `json:"identity,omitempty"`
}

// TicketID is the id of the ticket whose session the tokens live by.
func (q *QueueClaims) TicketID() string {
	if q.Ticket != "" {
		return q.Ticket
	}
	return q.Subject
}

// Claims returns the extra claims every token carries.
func (q *QueueClaims) Claims() map[string]any {
	m := make(map[string]any, 5+len(q.Identity))
	// The provider's claims first: config refuses to allow-list a claim
	// of Anteroom's own, and the queue's are written over them regardless.
	for k, v := range q.Identity {
		m[k] = v
	}
	m["room"] = q.Room
	m["queue_position"] = q.Position
	m["queued_at"] = q.QueuedAt.Unix()
	m["admitted_at"] = q.AdmittedAt.Unix()
	if q.Ticket != "" {
		// The person's session is their ticket (OIDC Front-Channel
		// Logout §3's sid): the built-in gate checks it against the
		// browser's ticket, since sub names the person.
		m["sid"] = q.Ticket
	}
	return m
}

// GetID implements op.AuthRequest.
func (a *AuthRequest) GetID() string { return a.ID }

// GetACR implements op.AuthRequest.
func (a *AuthRequest) GetACR() string { return "" }

// GetAMR implements op.AuthRequest.
func (a *AuthRequest) GetAMR() []string { return nil }

// GetAudience implements op.AuthRequest.
func (a *AuthRequest) GetAudience() []string { return []string{a.ClientID} }

// GetAuthTime implements op.AuthRequest: the moment the visitor passed the queue.
func (a *AuthRequest) GetAuthTime() time.Time {
	if a.Queue == nil {
		return time.Time{}
	}
	return a.Queue.AdmittedAt
}

// GetClientID implements op.AuthRequest.
func (a *AuthRequest) GetClientID() string { return a.ClientID }

// GetCodeChallenge implements op.AuthRequest.
func (a *AuthRequest) GetCodeChallenge() *zoidc.CodeChallenge {
	if a.CodeChallenge == "" {
		return nil
	}
	return &zoidc.CodeChallenge{Challenge: a.CodeChallenge, Method: a.CodeChallengeMethod}
}

// GetNonce implements op.AuthRequest.
func (a *AuthRequest) GetNonce() string { return a.Nonce }

// GetRedirectURI implements op.AuthRequest.
func (a *AuthRequest) GetRedirectURI() string { return a.RedirectURI }

// GetResponseType implements op.AuthRequest.
func (a *AuthRequest) GetResponseType() zoidc.ResponseType { return a.ResponseType }

// GetResponseMode implements op.AuthRequest.
func (a *AuthRequest) GetResponseMode() zoidc.ResponseMode { return a.ResponseMode }

// GetScopes implements op.AuthRequest.
func (a *AuthRequest) GetScopes() []string { return a.Scopes }

// GetState implements op.AuthRequest.
func (a *AuthRequest) GetState() string { return a.State }

// GetSubject implements op.AuthRequest: the ticket id once admitted.
func (a *AuthRequest) GetSubject() string {
	if a.Queue == nil {
		return ""
	}
	return a.Queue.Subject
}

// Done implements op.AuthRequest: only an admitted request is done.
func (a *AuthRequest) Done() bool { return a.Queue != nil }

// PromptNone reports whether the relying party asked for no interaction.
func (a *AuthRequest) PromptNone() bool {
	for _, p := range a.Prompt {
		if p == zoidc.PromptNone {
			return true
		}
	}
	return false
}

// key is the short, fixed-length name of the request in Redis.
func requestKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return base64.RawURLEncoding.EncodeToString(sum[:15])
}

// sealedVersion 2 added max_age. A request without max_age is still sealed
// as version 1, which every release opens: during a rolling upgrade an
// instance of the previous release serves the visitor's next poll.
const sealedVersion = 2

var sealedAD = []byte("anteroom auth request")

// errBadRequestID is returned for an id that was not sealed by us.
var errBadRequestID = errors.New("malformed auth request id")

// seal encodes the pending fields compactly and seals them into an id.
func sealRequest(box *keys.Box, a *AuthRequest) string {
	fields := []string{
		a.ClientID, a.RedirectURI, a.State, a.Nonce, strings.Join(a.Scopes, " "),
		string(a.ResponseType), string(a.ResponseMode), a.CodeChallenge,
		string(a.CodeChallengeMethod), strings.Join(a.Prompt, " "),
	}
	version := byte(1)
	if a.MaxAge != nil {
		version = sealedVersion
		fields = append(fields, strconv.FormatUint(uint64(*a.MaxAge), 10))
	}
	b := []byte{version}
	b = binary.AppendVarint(b, a.CreatedAt.Unix())
	for _, f := range fields {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return base64.RawURLEncoding.EncodeToString(box.Seal(b, sealedAD))
}

// sealedFieldCount is how many fields a sealed request holds: version 1
// has the first ten, version 2 adds max_age.
const sealedFieldCount = 11

// sealedFields are the fields of an opened request id, as slices of its
// plaintext, in sealRequest's order.
type sealedFields struct {
	created int64
	f       [sealedFieldCount][]byte
}

// parse reads plaintext b, as sealRequest wrote it, into s without copying.
func (s *sealedFields) parse(b []byte) error {
	if len(b) < 2 || (b[0] != sealedVersion && b[0] != 1) {
		return errBadRequestID
	}
	count := sealedFieldCount
	if b[0] == 1 {
		count = 10
	}
	b = b[1:]
	created, n := binary.Varint(b)
	if n <= 0 {
		return errBadRequestID
	}
	s.created = created
	b = b[n:]
	for i := range count {
		l, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < l {
			return errBadRequestID
		}
		s.f[i] = b[n : n+int(l)]
		b = b[n+int(l):]
	}
	for i := count; i < sealedFieldCount; i++ {
		s.f[i] = nil
	}
	if len(b) != 0 {
		return errBadRequestID
	}
	return nil
}

// maxAge reads the max_age field: nil when the request sent none.
// strconv.ParseUint does not keep its argument, so the conversion does not
// allocate.
func (s *sealedFields) maxAge() (v uint, ok bool, err error) {
	if len(s.f[10]) == 0 {
		return 0, false, nil
	}
	u, err := strconv.ParseUint(string(s.f[10]), 10, strconv.IntSize)
	if err != nil {
		return 0, false, errBadRequestID
	}
	return uint(u), true, nil
}

// request copies the fields into the AuthRequest sealed in id.
func (s *sealedFields) request(id string) (*AuthRequest, error) {
	v, ok, err := s.maxAge()
	if err != nil {
		return nil, err
	}
	var maxAge *uint
	if ok {
		maxAge = &v
	}
	f := &s.f
	return &AuthRequest{
		ID:                  id,
		MaxAge:              maxAge,
		ClientID:            string(f[0]),
		RedirectURI:         string(f[1]),
		State:               string(f[2]),
		Nonce:               string(f[3]),
		Scopes:              splitSpaces(string(f[4])),
		ResponseType:        zoidc.ResponseType(f[5]),
		ResponseMode:        zoidc.ResponseMode(f[6]),
		CodeChallenge:       string(f[7]),
		CodeChallengeMethod: zoidc.CodeChallengeMethod(f[8]),
		Prompt:              splitSpaces(string(f[9])),
		CreatedAt:           time.Unix(s.created, 0),
	}, nil
}

// openRequest reverses sealRequest.
func openRequest(box *keys.Box, id string) (*AuthRequest, error) {
	raw, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil {
		return nil, errBadRequestID
	}
	b, err := box.Open(raw, sealedAD)
	if err != nil {
		return nil, errBadRequestID
	}
	var s sealedFields
	if err := s.parse(b); err != nil {
		return nil, err
	}
	return s.request(id)
}

func splitSpaces(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, " ")
}

// boxCrypto is the op.Crypto that seals authorization codes (and would seal
// opaque tokens) with the same rotating secrets as everything else, so every
// instance can read what another one wrote.
type boxCrypto struct{ box *keys.Box }

var cryptoAD = []byte("anteroom code")

func (c boxCrypto) Encrypt(s string) (string, error) {
	return base64.RawURLEncoding.EncodeToString(c.box.Seal([]byte(s), cryptoAD)), nil
}

func (c boxCrypto) Decrypt(s string) (string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return "", err
	}
	b, err := c.box.Open(raw, cryptoAD)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// RequestCreated returns when the auth request sealed in id was created,
// without Redis: the waiting room files the request's binding by it.
func RequestCreated(box *keys.Box, id string) (time.Time, bool) {
	a, err := openRequest(box, id)
	if err != nil {
		return time.Time{}, false
	}
	return a.CreatedAt, true
}
