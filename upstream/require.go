package upstream

import "strings"

// Rule is one entry of a room's require map: the claim must match one of
// Values. A value is compared as text (a YAML true matches a JSON true and
// the string "true", which some providers send for email_verified); for
// the email claim, a value starting with @ matches every address at that
// domain, and addresses compare without regard to case.
type Rule struct {
	Claim  string
	Values []string
}

// Admits reports whether claims satisfy every rule: each listed claim must
// match one of its values, a list claim (groups, roles) when any of its
// elements does. A missing claim matches nothing. It returns the first
// claim that failed, for the log ("" when all passed).
func Admits(rules []Rule, claims map[string]any) (bool, string) {
	for _, r := range rules {
		if !r.matches(claims[r.Claim]) {
			return false, r.Claim
		}
	}
	return true, ""
}

func (r Rule) matches(v any) bool {
	if list, ok := v.([]any); ok {
		for _, e := range list {
			if r.matchesOne(e) {
				return true
			}
		}
		return false
	}
	return r.matchesOne(v)
}

func (r Rule) matchesOne(v any) bool {
	s, ok := claimString(v)
	if !ok {
		return false
	}
	for _, want := range r.Values {
		if r.Claim == "email" {
			if domain, ok := strings.CutPrefix(want, "@"); ok {
				at := strings.LastIndexByte(s, '@')
				if at > 0 && strings.EqualFold(s[at+1:], domain) {
					return true
				}
				continue
			}
			if strings.EqualFold(s, want) {
				return true
			}
			continue
		}
		if s == want {
			return true
		}
	}
	return false
}
