package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"

	"github.com/anteroom/anteroom/keys"
	"github.com/anteroom/anteroom/waitingroom"
)

// questionKeys sign the answers to "queue again?" (see askRequeue): one key
// per cookie secret, so that a page shown before a secret rotation can still
// be answered after it.
type questionKeys [][]byte

func newQuestionKeys(secrets [][]byte) questionKeys {
	k := make(questionKeys, len(secrets))
	for i, secret := range secrets {
		k[i] = keys.DeriveKey(secret, "requeue question", 32)
	}
	return k
}

// token binds an answer to the ticket that was asked and the request it was
// asked for. A form that another page posts (a sibling subdomain is
// same-site, so the ticket cookie goes along) cannot know it.
func (k questionKeys) token(ticket waitingroom.TicketID, request string) string {
	return k.sign(k[0], ticket, request)
}

// valid reports whether tok is the token of ticket and request under any
// of the keys.
func (k questionKeys) valid(tok string, ticket waitingroom.TicketID, request string) bool {
	for _, key := range k {
		if hmac.Equal([]byte(tok), []byte(k.sign(key, ticket, request))) {
			return true
		}
	}
	return false
}

func (questionKeys) sign(key []byte, ticket waitingroom.TicketID, request string) string {
	m := hmac.New(sha256.New, key)
	m.Write(ticket[:])
	m.Write([]byte(request))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// sameOrigin reports whether the browser says r came from one of our own
// pages. Browsers that predate Sec-Fetch-Site send none; the question's
// token protects those.
func sameOrigin(r *http.Request) bool {
	site := r.Header.Get("Sec-Fetch-Site")
	return site == "" || site == "same-origin"
}
