// Package demosite is the small protected site of `anteroom demo`, which the
// browser tests drive too: an ordinary OpenID Connect relying party whose
// only login is the waiting room.
package demosite

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"net/http"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Site is the small protected site of `anteroom demo`: an ordinary OIDC
// relying party (go-oidc and x/oauth2, nothing of Anteroom's) whose only
// login is the waiting room.
type Site struct {
	// Issuer is the waiting room's issuer URL, BaseURL the site's own
	// (its callback is BaseURL/callback), ClientID and Secret its
	// client's, and Room the room it queues in.
	Issuer, BaseURL, ClientID, Secret, Room string

	once     sync.Once
	provider *gooidc.Provider
	err      error
}

// The flow's state, nonce and PKCE verifier ride in one short-lived,
// HttpOnly cookie: the demo keeps no server-side state. It lives as long as
// the room's max wait, because visitors may queue that long.
const demoFlowCookie = "demo_flow"

type demoFlow struct {
	State, Nonce, Verifier string
}

func (d *Site) oauth() (*oauth2.Config, *gooidc.Provider, error) {
	d.once.Do(func() {
		d.provider, d.err = gooidc.NewProvider(context.Background(), d.Issuer)
	})
	if d.err != nil {
		d.once = sync.Once{}
		return nil, nil, d.err
	}
	return &oauth2.Config{
		ClientID: d.ClientID, ClientSecret: d.Secret, Endpoint: d.provider.Endpoint(),
		RedirectURL: d.BaseURL + "/callback", Scopes: []string{gooidc.ScopeOpenID},
	}, d.provider, nil
}

// Handler serves the site: its home page (the visitor's claims once
// signed in), /login and /callback.
func (d *Site) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", d.home)
	mux.HandleFunc("GET /login", d.login)
	mux.HandleFunc("GET /callback", d.callback)
	return mux
}

func (d *Site) home(w http.ResponseWriter, r *http.Request) {
	var claims map[string]any
	if c, err := r.Cookie("demo_claims"); err == nil {
		if b, err := base64.RawURLEncoding.DecodeString(c.Value); err == nil {
			_ = json.Unmarshal(b, &claims)
		}
	}
	renderDemo(w, map[string]any{"Claims": claims, "Pretty": pretty(claims), "Issuer": d.Issuer})
}

func (d *Site) login(w http.ResponseWriter, r *http.Request) {
	oc, _, err := d.oauth()
	if err != nil {
		http.Error(w, "the waiting room is not reachable: "+err.Error(), http.StatusBadGateway)
		return
	}
	f := demoFlow{State: rand.Text(), Nonce: rand.Text(), Verifier: oauth2.GenerateVerifier()}
	b, _ := json.Marshal(f)
	http.SetCookie(w, &http.Cookie{Name: demoFlowCookie, Value: base64.RawURLEncoding.EncodeToString(b),
		Path: "/", MaxAge: int(time.Hour.Seconds()), HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, oc.AuthCodeURL(f.State, gooidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier)), http.StatusFound)
}

func (d *Site) callback(w http.ResponseWriter, r *http.Request) {
	oc, provider, err := d.oauth()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	var f demoFlow
	if c, err := r.Cookie(demoFlowCookie); err == nil {
		if b, err := base64.RawURLEncoding.DecodeString(c.Value); err == nil {
			_ = json.Unmarshal(b, &f)
		}
	}
	if f.State == "" || r.URL.Query().Get("state") != f.State {
		http.Error(w, "state mismatch: start again from the home page", http.StatusBadRequest)
		return
	}
	if e := r.URL.Query().Get("error"); e != "" {
		http.Error(w, "the waiting room said: "+e+" "+r.URL.Query().Get("error_description"), http.StatusForbidden)
		return
	}
	tok, err := oc.Exchange(r.Context(), r.URL.Query().Get("code"), oauth2.VerifierOption(f.Verifier))
	if err != nil {
		http.Error(w, "code exchange failed: "+err.Error(), http.StatusBadGateway)
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&gooidc.Config{ClientID: d.ClientID}).Verify(r.Context(), raw)
	if err != nil || idt.Nonce != f.Nonce {
		http.Error(w, "ID token did not verify", http.StatusBadGateway)
		return
	}
	var claims map[string]any
	_ = idt.Claims(&claims)
	b, _ := json.Marshal(claims)
	http.SetCookie(w, &http.Cookie{Name: demoFlowCookie, Path: "/", MaxAge: -1})
	http.SetCookie(w, &http.Cookie{Name: "demo_claims", Value: base64.RawURLEncoding.EncodeToString(b),
		Path: "/", Expires: idt.Expiry, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func pretty(v map[string]any) string {
	if v == nil {
		return ""
	}
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

var demoPage = template.Must(template.New("demo").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Demo shop</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#1d1d1f}
a.button{display:inline-block;background:#0b5cad;color:#fff;padding:.7rem 1.1rem;border-radius:10px;text-decoration:none;font-weight:600}
pre{background:#f4f1ea;padding:1rem;border-radius:10px;overflow:auto}</style></head>
<body>
<h1>Demo shop</h1>
{{if .Claims}}
<p><strong>You are in.</strong> You passed the waiting room; this is the ID token it issued:</p>
<pre>{{.Pretty}}</pre>
<p><a class="button" href="/login">Log in again (keeps your place)</a></p>
{{else}}
<p>The launch is busy. The shop lets you in through its waiting room at {{.Issuer}}.</p>
<p><a class="button" href="/login">Enter the shop</a></p>
{{end}}
</body></html>`))

func renderDemo(w http.ResponseWriter, data map[string]any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = demoPage.Execute(w, data)
}
