package operator

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
)

// Role is what an admin token may do.
type Role string

// Roles.
const (
	// RoleViewer reads: every GET of the admin API and the dashboard.
	RoleViewer Role = "viewer"
	// RoleOperator reads and changes.
	RoleOperator Role = "operator"
)

// Token is a named admin token (config admin.tokens). The name is what
// the audit log records as who made a change; the token never appears.
type Token struct {
	Name  string
	Token string
	Role  Role
}

// principal is a token as the server keeps it: its digest, never the
// token, so every compare is of equal lengths in constant time.
type principal struct {
	name   string
	role   Role
	digest [sha256.Size]byte
}

func principals(tokens []Token) []*principal {
	out := make([]*principal, 0, len(tokens))
	for _, t := range tokens {
		out = append(out, &principal{name: t.Name, role: t.Role, digest: sha256.Sum256([]byte(t.Token))})
	}
	return out
}

// matchToken returns the principal whose token is token, or nil. Every
// principal is compared, in constant time, whichever matches: the time
// taken tells nothing of which token (or how much of one) was right.
func matchToken(ps []*principal, token string) *principal {
	got := sha256.Sum256([]byte(token))
	var found *principal
	for _, p := range ps {
		if subtle.ConstantTimeCompare(p.digest[:], got[:]) == 1 {
			found = p
		}
	}
	return found
}

type principalKey struct{}

// who is the principal an admin request was authorised as (nil outside
// the admin API).
func who(r *http.Request) *principal {
	p, _ := r.Context().Value(principalKey{}).(*principal)
	return p
}

func withPrincipal(r *http.Request, p *principal) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
}

// mutating reports whether a request of this method changes something:
// every method but GET and HEAD, so that a route added later is guarded
// from viewers without anyone remembering to.
func mutating(method string) bool { return method != http.MethodGet && method != http.MethodHead }
