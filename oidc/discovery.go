package oidc

import (
	"net/http"

	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// The library's discovery document advertises what its router can route,
// not what Anteroom answers: the implicit grant and the id_token response
// types, a device authorization endpoint, the JWT-bearer grant, and
// private_key_jwt signing algorithms for introspection and revocation. A
// relying party that believes it breaks on the first request (OpenID
// Connect Discovery 1.0 §3, RFC 8414 §2: the metadata lists what the
// server supports). This document starts from the library's and replaces
// every field Anteroom answers differently; TestDiscoveryIsHonest probes
// each advertised value and a few that are not. (Workaround 11 in
// workarounds.go.)

// discoveryDocument is the library's discovery document with what Anteroom
// does not support removed, and the RFC 9207 flag added.
type discoveryDocument struct {
	*zoidc.DiscoveryConfiguration
	// AuthorizationResponseIssParameterSupported is RFC 9207 §3: every
	// authorization response carries iss (see respond).
	AuthorizationResponseIssParameterSupported bool `json:"authorization_response_iss_parameter_supported"`
}

// Values the provider answers, shared by discovery and the handlers that
// enforce them.
var (
	// supportedResponseModes are the response modes respond writes.
	supportedResponseModes = []string{string(zoidc.ResponseModeQuery), string(zoidc.ResponseModeFragment), string(zoidc.ResponseModeFormPost)}
	// supportedGrantTypes are the grants the token endpoint lets through
	// to the library (see checkGrantType).
	supportedGrantTypes = []zoidc.GrantType{zoidc.GrantTypeCode, zoidc.GrantTypeRefreshToken}
)

func (p *Provider) discovery(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	ctx := op.ContextWithIssuer(r.Context(), p.issuer)
	d := op.CreateDiscoveryConfig(ctx, p.op, p.storage)
	d.ResponseTypesSupported = []string{string(zoidc.ResponseTypeCode)}
	d.ResponseModesSupported = supportedResponseModes
	d.GrantTypesSupported = supportedGrantTypes
	d.DeviceAuthorizationEndpoint = ""
	d.CheckSessionIframe = ""
	// Confidential clients authenticate with their secret, in the Basic
	// header or the form; public clients send their id alone (and PKCE).
	d.TokenEndpointAuthMethodsSupported = []zoidc.AuthMethod{zoidc.AuthMethodNone, zoidc.AuthMethodBasic, zoidc.AuthMethodPost}
	d.TokenEndpointAuthSigningAlgValuesSupported = nil
	d.RevocationEndpointAuthMethodsSupported = []zoidc.AuthMethod{zoidc.AuthMethodNone, zoidc.AuthMethodBasic, zoidc.AuthMethodPost}
	d.RevocationEndpointAuthSigningAlgValuesSupported = nil
	// RFC 7662 §2.1: introspection needs an authenticated client, and the
	// library authenticates it from the Basic header only.
	d.IntrospectionEndpointAuthMethodsSupported = []zoidc.AuthMethod{zoidc.AuthMethodBasic}
	d.IntrospectionEndpointAuthSigningAlgValuesSupported = nil
	d.RequestObjectSigningAlgValuesSupported = nil
	d.RequestParameterSupported = false
	d.RequestURIParameterSupported = false
	d.ClaimsParameterSupported = false
	d.UILocalesSupported = nil
	writeJSON(w, http.StatusOK, discoveryDocument{DiscoveryConfiguration: d, AuthorizationResponseIssParameterSupported: true})
}
