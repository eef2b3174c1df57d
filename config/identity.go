package config

import (
	"net/url"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Identity chains a room to the site's own OpenID provider (rooms[].identity):
// a visitor signs in there before taking a place, and the place belongs to
// the person (the provider's issuer and sub), not to the browser. Several
// rooms may name the same provider.
type Identity struct {
	// Issuer is the provider's issuer URL, exactly as its ID tokens say
	// (https, or http on a loopback address).
	Issuer string `yaml:"issuer"`
	// ClientID and ClientSecret are Anteroom's registration at the
	// provider, whose redirect URI is {issuer}/upstream/callback. The
	// secret comes from ${ENV} like every secret.
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret"`
	// Scopes are requested from the provider; default openid, email,
	// profile. openid must be among them.
	Scopes []string `yaml:"scopes"`
	// Claims are the provider's claims copied into Anteroom's ID token and
	// userinfo beside the queue claims; nothing else passes.
	Claims []string `yaml:"claims"`
	// Require admits only identities whose claims match: every listed
	// claim must match one of its values (an email value starting with @
	// matches the domain; a list claim matches when any element does).
	Require Require `yaml:"require"`
}

// Require is rooms[].identity.require, a mapping from claim name to the
// values it may have, kept in the file's order.
type Require []RequireRule

// RequireRule is one claim of Require and the values that satisfy it, as
// text (true, 3 and "x" as written).
type RequireRule struct {
	Claim  string
	Values []string
}

// defaultIdentityScopes are requested when scopes is not set.
var defaultIdentityScopes = []string{"openid", "email", "profile"}

func (id *Identity) applyDefaults() {
	if len(id.Scopes) == 0 {
		id.Scopes = slices.Clone(defaultIdentityScopes)
	}
}

// reservedClaims are Anteroom's own claims and those of OIDC Core §2 and
// RFC 7519 that an ID token's meaning rests on: a provider's claim of the
// same name must never replace them.
var reservedClaims = []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "nonce", "azp", "auth_time",
	"at_hash", "c_hash", "acr", "amr", "sid", "room", "queue_position", "queued_at", "admitted_at", "session_end"}

// requireType is decoded by decodeRequire: the generic decoder knows no maps.
var requireType = reflect.TypeFor[Require]()

// decodeRequire reads require's mapping of claim to a list of scalars (a
// single scalar is a list of one).
func (d *decoder) decodeRequire(n *yaml.Node, path string) Require {
	if n.Kind != yaml.MappingNode {
		d.fail(path, "expected a mapping of claim to allowed values, got %s", kindName(n))
		return nil
	}
	var out Require
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Value == "" {
			d.fail(path, "keys must be claim names")
			continue
		}
		p := keyPath(path, k.Value)
		if seen[k.Value] {
			d.fail(p, "duplicate key")
			continue
		}
		seen[k.Value] = true
		items := []*yaml.Node{val}
		if val.Kind == yaml.SequenceNode {
			items = val.Content
		}
		rule := RequireRule{Claim: k.Value}
		for j, it := range items {
			if it.Kind != yaml.ScalarNode || isNull(it) {
				d.fail(indexPath(p, j), "expected a string, number or true/false, got %s", kindName(it))
				continue
			}
			rule.Values = append(rule.Values, it.Value)
		}
		if len(items) == 0 {
			d.fail(p, "must list at least one value")
		}
		out = append(out, rule)
	}
	return out
}

// identity checks rooms[i].identity.
func (v *validator) identity(p string, id *Identity) {
	if id == nil {
		return
	}
	p += ".identity"
	switch u, err := url.Parse(id.Issuer); {
	case id.Issuer == "":
		v.add(p+".issuer", "required")
	case err != nil || u.Scheme == "" || u.Hostname() == "" || u.RawQuery != "" || u.Fragment != "":
		v.add(p+".issuer", "must be an absolute URL without query or fragment, got %q", id.Issuer)
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
	default:
		v.add(p+".issuer", "must use https (http is allowed only for localhost and loopback addresses)")
	}
	if id.ClientID == "" {
		v.add(p+".client_id", "required")
	}
	if id.ClientSecret == "" {
		v.add(p+".client_secret", "required (use ${ENV} to keep it out of the file)")
	}
	if !slices.Contains(id.Scopes, "openid") {
		v.add(p+".scopes", "must include openid")
	}
	for i, s := range id.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\"\\") {
			v.add(indexPath(p+".scopes", i), "must be a scope token, got %q", s)
		}
	}
	for i, c := range id.Claims {
		switch {
		case c == "":
			v.add(indexPath(p+".claims", i), "must not be empty")
		case slices.Contains(reservedClaims, c):
			v.add(indexPath(p+".claims", i), "%q is one of Anteroom's own claims and cannot be copied from the provider", c)
		case slices.Index(id.Claims, c) != i:
			v.add(indexPath(p+".claims", i), "duplicate claim %q", c)
		}
	}
}
