// Package fakeidp is a small OpenID provider for tests of Anteroom's
// upstream login (package upstream, rooms[].identity): discovery, JWKS,
// an authorization endpoint that signs in whoever the test says without a
// form, and a token endpoint whose ID token the test can make misbehave in
// each way OIDC Core §3.1.3.7 requires a relying party to refuse (wrong
// nonce, issuer, audience, signature, expired). The tests of real logins
// run dex; this one exists for the forgeries dex will not make.
package fakeidp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Fault is a way the provider misbehaves in its next ID tokens.
type Fault string

// The faults OIDC Core §3.1.3.7 makes a relying party check.
const (
	None          Fault = ""
	WrongNonce    Fault = "nonce"
	WrongIssuer   Fault = "iss"
	WrongAudience Fault = "aud"
	BadSignature  Fault = "sig" // signed by a key not in the JWKS, under its kid
	Expired       Fault = "exp"
	// Unavailable answers every request with 503.
	Unavailable Fault = "down"
	// Denied answers the authorization request with error=access_denied.
	Denied Fault = "denied"
)

// IdP is a running fake provider.
type IdP struct {
	*httptest.Server
	ClientID, ClientSecret string

	mu     sync.Mutex
	key    *ecdsa.PrivateKey
	forger *ecdsa.PrivateKey
	fault  Fault
	user   User
	codes  map[string]grant
	// Requests counts the authorization requests, for tests that check
	// none was made.
	Requests int
}

// User is who the provider signs in next.
type User struct {
	Subject string
	Claims  map[string]any
}

type grant struct {
	user                   User
	nonce, challenge, redi string
}

// New starts a provider with one client.
func New(clientID, secret string) *IdP {
	p := &IdP{ClientID: clientID, ClientSecret: secret, codes: map[string]grant{}}
	p.key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p.forger, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p.user = User{Subject: "alice", Claims: map[string]any{"email": "alice@example.com", "email_verified": true}}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("/keys", p.keys)
	mux.HandleFunc("/auth", p.authorize)
	mux.HandleFunc("/token", p.token)
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.Fault() == Unavailable {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	return p
}

// SetFault makes the provider misbehave from now on (None: behave).
func (p *IdP) SetFault(f Fault) { p.mu.Lock(); p.fault = f; p.mu.Unlock() }

// Fault is the current fault.
func (p *IdP) Fault() Fault { p.mu.Lock(); defer p.mu.Unlock(); return p.fault }

// SignIn sets who the next authorization request signs in.
func (p *IdP) SignIn(u User) { p.mu.Lock(); p.user = u; p.mu.Unlock() }

func (p *IdP) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]any{
		"issuer": p.URL, "authorization_endpoint": p.URL + "/auth", "token_endpoint": p.URL + "/token",
		"jwks_uri": p.URL + "/keys", "response_types_supported": []string{"code"},
		"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"ES256"},
		"code_challenge_methods_supported": []string{"S256"},
	})
}

func (p *IdP) keys(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &p.key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
}

func (p *IdP) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p.mu.Lock()
	p.Requests++
	fault, user := p.fault, p.user
	p.mu.Unlock()
	if q.Get("client_id") != p.ClientID || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	back, _ := url.Parse(q.Get("redirect_uri"))
	v := back.Query()
	v.Set("state", q.Get("state"))
	if fault == Denied {
		v.Set("error", "access_denied")
	} else {
		code := random()
		p.mu.Lock()
		p.codes[code] = grant{user: user, nonce: q.Get("nonce"), challenge: q.Get("code_challenge"), redi: q.Get("redirect_uri")}
		p.mu.Unlock()
		v.Set("code", code)
	}
	back.RawQuery = v.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func (p *IdP) token(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != p.ClientID || secret != p.ClientSecret {
		writeError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	p.mu.Lock()
	g, found := p.codes[r.PostForm.Get("code")]
	delete(p.codes, r.PostForm.Get("code"))
	fault := p.fault
	p.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if !found || g.redi != r.PostForm.Get("redirect_uri") || base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
		writeError(w, http.StatusBadRequest, "invalid_grant")
		return
	}
	now := time.Now()
	claims := map[string]any{"iss": p.URL, "sub": g.user.Subject, "aud": p.ClientID, "nonce": g.nonce,
		"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
	for k, v := range g.user.Claims {
		claims[k] = v
	}
	key := p.key
	switch fault {
	case WrongNonce:
		claims["nonce"] = "another-" + g.nonce
	case WrongIssuer:
		claims["iss"] = p.URL + "/other"
	case WrongAudience:
		claims["aud"] = "another-client"
	case BadSignature:
		key = p.forger
	case Expired:
		claims["iat"], claims["exp"] = now.Add(-time.Hour).Unix(), now.Add(-30*time.Minute).Unix()
	}
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	raw, _ := jwt.Signed(signer).Claims(claims).Serialize()
	writeJSON(w, map[string]any{"access_token": random(), "token_type": "Bearer", "expires_in": 600, "id_token": raw})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
}

func random() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
