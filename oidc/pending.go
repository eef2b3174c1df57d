package oidc

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/anteroom/anteroom/keys"
	"github.com/anteroom/anteroom/waitingroom"
)

// The waiting page's side of an auth request. The page opens the request's
// sealed id once per HTTP request (Provider.Open) and asks the handle
// everything else: which room, whether prompt=none, whether an admission is
// recent enough (Fresh), and finally the answer to the relying party
// (Finish, LoginRequired, Decline). So the path reads one way, web → oidc,
// and the id is decrypted once however many of these a request asks.

// ErrStaleAdmission is returned by Pending.Finish for a ticket admitted
// before the request was sent and longer ago than its max_age allows: the
// visitor must pass the queue again. It wraps waitingroom.ErrSessionOver.
var ErrStaleAdmission = fmt.Errorf("admission older than the request's max_age: %w", waitingroom.ErrSessionOver)

// Pending is an auth request still in the queue, opened from its sealed id
// for one HTTP request. It holds the decrypted fields in a buffer it reuses:
// a waiting page polls every few seconds, and opening its request must not
// allocate. Close gives the buffer back; the handle must not be used after.
type Pending struct {
	p          *Provider
	id         string
	client     *client
	promptNone bool
	maxAge     uint
	hasMaxAge  bool
	fields     sealedFields
	// buf is the pooled buffer open decrypts into: the id's bytes, the
	// sealed bytes and the plaintext that fields point into.
	buf []byte
}

// pendingPool recycles Pending handles with their buffers.
var pendingPool = sync.Pool{New: func() any { return &Pending{buf: make([]byte, 0, 4096)} }}

// Open opens the sealed id of a pending auth request, without Redis. Errors
// wrap waitingroom.ErrUnknownRequest (ErrUnknownRequest) or
// waitingroom.ErrExpired (ErrRequestExpired: older than its room's max
// wait). The caller must Close the handle.
func (p *Provider) Open(id string) (*Pending, error) {
	r := pendingPool.Get().(*Pending)
	if err := r.open(p.storage.box, id, &p.storage.clients); err != nil {
		r.Close()
		return nil, ErrUnknownRequest
	}
	r.p = p
	if r.client.roomGone {
		r.Close()
		return nil, ErrRoomGone
	}
	if r.expired() {
		r.Close()
		return nil, ErrRequestExpired
	}
	return r, nil
}

// open decrypts and parses id into r's buffer, as openRequest does, and
// reads the client, whether prompt holds none and max_age; it allocates
// nothing once the buffer is large enough.
func (r *Pending) open(box *keys.Box, id string, clients *clientTable) error {
	// The id's bytes, then the sealed bytes, then the plaintext, which is
	// no longer than they are. An id too long for the pooled buffer gets
	// one of its own, which is not kept: ids come from the URL.
	buf := r.buf[:0]
	if need := len(id) + 2*base64.RawURLEncoding.DecodedLen(len(id)); cap(buf) < need {
		buf = make([]byte, 0, need)
	}
	src := append(buf, id...)
	raw, err := base64.RawURLEncoding.AppendDecode(src[len(src):], src)
	if err != nil {
		return errBadRequestID
	}
	b, err := box.AppendOpen(raw[len(raw):], raw, sealedAD)
	if err != nil {
		return errBadRequestID
	}
	if err := r.fields.parse(b); err != nil {
		return err
	}
	r.client, _ = clients.get(string(r.fields.f[0]))
	if r.client == nil {
		return errBadRequestID
	}
	r.maxAge, r.hasMaxAge, err = r.fields.maxAge()
	if err != nil {
		return err
	}
	r.promptNone = false
	for word := range bytes.FieldsSeq(r.fields.f[9]) {
		r.promptNone = r.promptNone || string(word) == zoidc.PromptNone
	}
	r.id = id
	return nil
}

// Close gives the handle back for reuse.
func (r *Pending) Close() {
	*r = Pending{buf: r.buf[:0]}
	pendingPool.Put(r)
}

// Created is when the request was sent (the time sealed in its id).
func (r *Pending) Created() time.Time { return time.Unix(r.fields.created, 0) }

// expired reports whether the request is older than its room's max wait.
func (r *Pending) expired() bool {
	room := r.client.room
	return !r.p.storage.now().Before(room.WaitStart(r.Created()).Add(room.MaxWait))
}

// ID is the sealed id the request was opened from.
func (r *Pending) ID() string { return r.id }

// Room is the id of the room the request queues for.
func (r *Pending) Room() string { return r.client.room.ID }

// PromptNone reports whether the relying party asked for no interaction
// (prompt=none).
func (r *Pending) PromptNone() bool { return r.promptNone }

// Fresh reports whether admitted ticket t may answer the request. OIDC
// Core 3.1.2.1: with max_age (prompt=login means max_age=0), an
// authentication older than that must be done again, and a waiting room's
// authentication is passing the queue (auth_time is admitted_at). So an
// admission made before the request was sent answers it only while it is
// no older than max_age at the request's time; one made while this
// request waited always does.
func (r *Pending) Fresh(t waitingroom.Ticket) bool {
	if !r.hasMaxAge || !t.Admitted() {
		return true
	}
	created := r.Created()
	if !t.AdmittedAt.Before(created) {
		return true
	}
	return created.Sub(t.AdmittedAt) <= time.Duration(r.maxAge)*time.Second
}

// Finish answers the request for an admitted ticket: it records the
// ticket's claims with the request's code in one write and sends the
// browser to the relying party with the code, as the library's callback
// would have, one hop sooner. Nothing is written to w when it returns an
// error: ErrRequestExpired, ErrStaleAdmission, ErrRequestAnswered (the
// request got its code already), or the store's failure.
func (r *Pending) Finish(w http.ResponseWriter, req *http.Request, t waitingroom.Ticket) error {
	return r.finish(w, req, t, nil)
}

// finish is Finish, for person when not nil (FinishAs).
func (r *Pending) finish(w http.ResponseWriter, req *http.Request, t waitingroom.Ticket, person *Person) error {
	if r.expired() {
		return ErrRequestExpired
	}
	if !t.Admitted() || t.Room != r.client.room.ID {
		return errors.New("ticket is not admitted to the request's room")
	}
	if !r.Fresh(t) {
		return ErrStaleAdmission
	}
	a, err := r.fields.request(r.id)
	if err != nil {
		return ErrUnknownRequest
	}
	code, err := op.BuildAuthRequestCode(a, r.p.op.Crypto())
	if err != nil {
		return fmt.Errorf("seal code: %w", err)
	}
	if err := r.p.storage.answer(req.Context(), r.id, personClaims(t, r.client.room, person), code); err != nil {
		return err
	}
	return r.p.respond(w, req, a.RedirectURI, a.ResponseType, a.ResponseMode, formField{"code", code}, formField{"state", a.State})
}

// Decline ends the request at the relying party with access_denied: the
// visitor chose to keep their admission rather than pass the queue again
// for a request that wanted a more recent one (max_age, prompt=login).
func (r *Pending) Decline(w http.ResponseWriter, req *http.Request) {
	r.refuse(w, req, zoidc.ErrAccessDenied().WithDescription("the visitor did not pass the queue again"))
}

// LoginRequired ends the request at the relying party with the OAuth error
// login_required: the answer to prompt=none for a visitor who would have to
// queue.
func (r *Pending) LoginRequired(w http.ResponseWriter, req *http.Request) {
	r.refuse(w, req, zoidc.ErrLoginRequired().WithDescription("the visitor must wait in the queue"))
}

// refuse ends the request at the relying party with oauthErr.
func (r *Pending) refuse(w http.ResponseWriter, req *http.Request, oauthErr *zoidc.Error) {
	if r.expired() {
		http.Error(w, "unknown or expired request", http.StatusBadRequest)
		return
	}
	rt, mode := zoidc.ResponseType(r.fields.f[5]), zoidc.ResponseMode(r.fields.f[6])
	if err := r.p.respond(w, req, string(r.fields.f[1]), rt, mode, errorFields(oauthErr, string(r.fields.f[2]))...); err != nil {
		http.Error(w, "unknown or expired request", http.StatusBadRequest)
	}
}
