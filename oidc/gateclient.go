package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/anteroom/anteroom/config"
)

// gateClientPrefix starts the ids of the built-in gate's clients; a
// configured client may not use it.
const gateClientPrefix = "anteroom-gate-"

// GateClientID is the id of the built-in gate's client for a room. The gate
// is a public client (PKCE S256, no secret): it redeems its codes in-process,
// so a secret would protect nothing.
func GateClientID(room string) string { return gateClientPrefix + room }

// gateClients returns the gate's client for each room it protects.
func gateClients(issuer string, rooms []string) []config.Client {
	out := make([]config.Client, 0, len(rooms))
	for _, r := range rooms {
		out = append(out, config.Client{ID: GateClientID(r), Room: r, RedirectURIs: []string{issuer + "/gate/callback"}})
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
		"client_id":     {clientID},
		"code_verifier": {verifier},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
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
