package oidc

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/anteroom/anteroom/config"
	"github.com/anteroom/anteroom/internal/route"
	"github.com/anteroom/anteroom/keys"
)

// gateClientPrefix starts the ids of the built-in gate's clients; a
// configured client may not use it.
const gateClientPrefix = "anteroom-gate-"

// GateClientID is the id of the built-in gate's client for a room.
//
// The gate's clients are internal. The browser goes through /authorize
// with them like with any client, but their codes are redeemed only by
// ExchangeCode, in-process: each is a confidential client (RFC 6749 §2.1)
// whose secret no one outside the process knows, so the public token
// endpoint refuses their codes (RFC 6749 §3.2.1: a confidential client
// must authenticate there; §5.2 invalid_client). Otherwise a visitor could
// redeem a code of their own gate login for an ID token, and end their
// session with it (OIDC RP-Initiated Logout), which freed their max_active
// slot while their gate cookie kept working.
func GateClientID(room string) string { return gateClientPrefix + room }

// gateClientSecret is the secret of the gate's clients: derived from
// secret when one is given (the first of secrets.cookie_keys), else drawn
// for this process. Only ExchangeCode presents it, to the same process, so
// instances need not share it.
func gateClientSecret(secret []byte) string {
	if len(secret) >= keys.MinSecretLen {
		return base64.RawURLEncoding.EncodeToString(keys.DeriveKey(secret, "gate client secret", 32))
	}
	return rand.Text() + rand.Text()
}

// gateClients returns the gate's client for each room it protects.
func gateClients(issuer, secret string, rooms []string) []config.Client {
	out := make([]config.Client, 0, len(rooms))
	for _, r := range rooms {
		out = append(out, config.Client{ID: GateClientID(r), Secret: secret, RequirePKCE: true, Room: r,
			RedirectURIs: []string{issuer + route.GateCallback}})
	}
	return out
}

// ErrUnavailable is wrapped by ExchangeCode's error when the store could
// not be reached: the caller should ask the visitor to retry.
var ErrUnavailable = errors.New("store unavailable")

// ExchangeCode redeems an authorization code through the provider's own
// token endpoint, in-process, and returns the ID token. The built-in gate
// uses it: going through the public URL would loop back through nginx.
func (p *Provider) ExchangeCode(ctx context.Context, clientID, code, verifier, redirectURI string) (string, error) {
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {redirectURI},
		"code_verifier": {verifier},
	}
	c, gate := p.storage.clients.get(clientID)
	gate = gate && c.gate
	if !gate {
		form.Set("client_id", clientID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, route.Token, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if gate {
		// RFC 6749 §2.3.1: client_secret_basic, each part form-encoded
		// first; the client is named there and only there.
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(c.cfg.Secret))
	}
	rec := &bufferedWriter{header: http.Header{}}
	p.serve(rec, req)
	var body struct {
		IDToken     string `json:"id_token"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = json.Unmarshal(rec.body.Bytes(), &body)
	switch {
	case rec.status == http.StatusServiceUnavailable:
		return "", fmt.Errorf("exchange code: %w", ErrUnavailable)
	case rec.status != http.StatusOK || body.IDToken == "":
		return "", fmt.Errorf("exchange code: %d %s: %s", rec.status, body.Error, body.Description)
	}
	return body.IDToken, nil
}
