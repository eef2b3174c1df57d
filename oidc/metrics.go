package oidc

// Kinds of credential reported to Options.OnToken.
const (
	// IssuedCode is an authorization code, attached to an admitted auth
	// request at the provider's callback.
	IssuedCode = "code"
	// IssuedAccessToken is an access token, from a code or a refresh token.
	IssuedAccessToken = "access_token"
	// IssuedRefreshToken is a refresh token (scope offline_access), from a
	// code or, rotated, from the refresh token before it.
	IssuedRefreshToken = "refresh_token"
)

// issued tells Options.OnToken that a credential of kind was stored, so
// the package counts without depending on a metrics library.
func (s *storage) issued(kind string) {
	if s.onToken != nil {
		s.onToken(kind)
	}
}
