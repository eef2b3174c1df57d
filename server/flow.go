package server

import (
	"github.com/anteroom/anteroom/oidc"
	"github.com/anteroom/anteroom/web"
)

// authFlow is the OIDC provider as the waiting page sees it. web defines
// the small interface it uses, and Go has no covariant results, so
// Provider.Open's *oidc.Pending becomes a web.AuthRequest here; a pointer in
// an interface costs no allocation.
type authFlow struct{ p *oidc.Provider }

// Open implements web.AuthFlow.
func (f authFlow) Open(id string) (web.AuthRequest, error) {
	r, err := f.p.Open(id)
	if err != nil {
		// Not r: a nil *oidc.Pending in an interface is not a nil interface.
		return nil, err
	}
	return r, nil
}

// Interface guards.
var (
	_ web.AuthFlow    = authFlow{}
	_ web.AuthRequest = (*oidc.Pending)(nil)
)
