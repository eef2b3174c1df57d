package config

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
)

// Values of Room.OnError.
const (
	// OnErrorFailClosed refuses a protected request while Redis cannot be
	// reached: nobody skips the queue because the queue is down.
	OnErrorFailClosed = "fail_closed"
	// OnErrorFailOpen lets a protected request through while Redis cannot
	// be reached, for a site that would rather be overrun than be down.
	OnErrorFailOpen = "fail_open"
)

// Values of Rule.Action.
const (
	// GateActionQueue sends the visitor through Rule.Room.
	GateActionQueue = "queue"
	// GateActionBypass lets the request through without a queue.
	GateActionBypass = "bypass"
	// GateActionBlock refuses the request.
	GateActionBlock = "block"
)

// UserAgentGoodBots as Rule.UserAgent matches the built-in list of
// search-engine and link-preview crawlers (package gate's IsGoodBot)
// instead of a regular expression.
const UserAgentGoodBots = "good_bots"

// Defaults for the gate's session cookie.
const (
	defaultGateCookieName = "anteroom_gate"
	defaultGateCookiePath = "/"
)

var (
	// hostnamePattern is a DNS name: labels of letters, digits and inner
	// hyphens, at most 63 characters each, without a trailing dot. An IPv4
	// address passes too, which is harmless.
	hostnamePattern = regexp.MustCompile(`^(?i:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.(?i:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?))*$`)
)

// maxHostnameLen is the longest DNS name, in its text form.
const maxHostnameLen = 253

// Gate configures the built-in nginx auth_request gate: its session cookie
// and the rules that decide, per request, whether a visitor queues, passes
// or is refused. A nil *Gate (no gate key in the file) disables the gate.
type Gate struct {
	// Cookie is the gate's session cookie.
	Cookie GateCookie `yaml:"cookie" json:"cookie"`
	// DynamicPaths are path prefixes (login, checkout, account) on which
	// no rule with a user_agent matcher ever matches. A user agent is
	// whatever the client says it is, so letting it decide anything on the
	// pages the queue exists to protect would let anyone skip the queue by
	// claiming to be Googlebot. They are compared case-insensitively, as
	// plain string prefixes, so /login also covers /login.php and /LOGIN:
	// the conservative reading, since covering too much only costs a
	// crawler a queue.
	DynamicPaths []string `yaml:"dynamic_paths" json:"dynamic_paths"`
	// Rules are evaluated in order and the first that matches decides; a
	// request that matches none bypasses the queue. At least one must
	// queue, or the gate would protect nothing.
	Rules []Rule `yaml:"rules" json:"rules"`
}

// GateCookie is the gate's session cookie, which carries a JWT that
// nginx, a downstream API or an edge connector can verify with the JWKS.
type GateCookie struct {
	// Name is the cookie's name, RFC 6265 token characters. The default is
	// anteroom_gate.
	Name string `yaml:"name" json:"name"`
	// Domain is the cookie's Domain attribute: empty (the default) makes a
	// host-only cookie; set it to share the cookie with subdomains. It is a
	// domain name only, without scheme, port or path.
	Domain string `yaml:"domain" json:"domain"`
	// Path is the cookie's Path attribute. The default is /, so the cookie
	// reaches every protected path.
	Path string `yaml:"path" json:"path"`
	// Secure sets the cookie's Secure attribute. The default is true; it is
	// a pointer so that "not set" differs from an explicit false, which is
	// only useful for plain-http development setups.
	Secure *bool `yaml:"secure" json:"secure"`
}

// Rule is one protection rule: a set of matchers, all of which must match
// (a rule with several is their AND), and the action taken when they do.
// Paths are matched against the request path without its query, percent-
// decoded once; package gate documents how it treats paths that are not in
// canonical form.
type Rule struct {
	// Path matches this exact path.
	Path string `yaml:"path" json:"path,omitempty"`
	// PathPrefix matches paths that start with it, as a plain string:
	// /static/ matches /static/app.js, and /static would also match
	// /staticfiles. A catch-all rule is written path_prefix: /.
	PathPrefix string `yaml:"path_prefix" json:"path_prefix,omitempty"`
	// PathRegex is an RE2 regular expression matched against the path
	// only. It is not anchored unless it says so (^/stores/locator).
	PathRegex string `yaml:"path_regex" json:"path_regex,omitempty"`
	// Host matches the request's host exactly, case-insensitively, or, as
	// *.example.com, any host one or more labels under example.com (but
	// not example.com itself).
	Host string `yaml:"host" json:"host,omitempty"`
	// Methods matches any of these request methods, compared
	// case-insensitively (write them upper-case, as HTTP does).
	Methods []string `yaml:"methods" json:"methods,omitempty"`
	// Header matches a request header.
	Header *NameValue `yaml:"header" json:"header,omitempty"`
	// Cookie matches a request cookie.
	Cookie *NameValue `yaml:"cookie" json:"cookie,omitempty"`
	// UserAgent is good_bots for the built-in list of well-known crawlers,
	// or an RE2 regular expression matched case-insensitively. A rule with
	// a user agent never matches on a dynamic path (see
	// Gate.DynamicPaths).
	UserAgent string `yaml:"user_agent" json:"user_agent,omitempty"`
	// Action is queue, bypass or block.
	Action string `yaml:"action" json:"action"`
	// Room is the room a queue rule sends visitors to; it is required for
	// queue and not allowed otherwise.
	Room string `yaml:"room" json:"room,omitempty"`
}

// NameValue matches a header or cookie by name: present, or with Value
// present and equal to it, or with Regex present and matching it (RE2, not
// anchored unless it says so). Value and Regex are mutually exclusive. A
// header counts as present when its value is not empty.
type NameValue struct {
	// Name is the header (case-insensitive) or cookie (case-sensitive)
	// name.
	Name string `yaml:"name" json:"name"`
	// Value, when set, must equal the value exactly.
	Value string `yaml:"value" json:"value,omitempty"`
	// Regex, when set, must match the value.
	Regex string `yaml:"regex" json:"regex,omitempty"`
}

// ApplyDefaults fills in the cookie's unset fields. Config.ApplyDefaults
// calls it; it is exported for a Gate built on its own, as in tests.
func (g *Gate) ApplyDefaults() {
	if g.Cookie.Name == "" {
		g.Cookie.Name = defaultGateCookieName
	}
	if g.Cookie.Path == "" {
		g.Cookie.Path = defaultGateCookiePath
	}
	if g.Cookie.Secure == nil {
		secure := true
		g.Cookie.Secure = &secure
	}
}

// Validate checks g on its own, with every key path starting with gate,
// and expects ApplyDefaults to have run. It cannot know the rooms, so it
// does not check that queue rules name existing ones; Config.Validate
// does. It is what package gate runs before compiling rules.
func (g *Gate) Validate() error {
	v := new(validator)
	v.gate(g, nil)
	return errors.Join(v.errs...)
}

// Warnings returns what in g is valid but probably not meant, one line per
// finding, each starting with the key it is about. Config.Warnings
// includes them; anteroom serve logs them at start-up.
//
// The one finding so far: a bypass rule with a user_agent matcher before a
// block rule, or a queue rule for particular paths, that it could shadow.
// A user agent is whatever the client says, so with that order any client
// claiming to be Googlebot skips the later rule wherever dynamic_paths do
// not cover it: a block of /admin/ after {user_agent: good_bots, action:
// bypass} blocks nobody who fakes the user agent. Rules that cannot meet
// the same request (other paths, hosts or methods), or whose paths are all
// under dynamic_paths, are not reported, nor is a queue rule for the whole
// site (no path matcher, or path_prefix /): letting crawlers past the
// catch-all queue is what a good-bot bypass is for. Neither is a later
// rule that itself has a user_agent, which a client evades by choosing
// its user agent anyway.
func (g *Gate) Warnings() []string {
	if g == nil {
		return nil
	}
	var out []string
	for i := range g.Rules {
		u := &g.Rules[i]
		if u.Action != GateActionBypass || u.UserAgent == "" {
			continue
		}
		for j := i + 1; j < len(g.Rules); j++ {
			r := &g.Rules[j]
			if !g.userAgentShadows(u, r) {
				continue
			}
			out = append(out, fmt.Sprintf("%s: this user_agent bypass comes before %s (%s), so any client that claims such a user agent skips that rule outside dynamic_paths; put the %s rule first, or cover its paths with dynamic_paths",
				indexPath("gate.rules", i), indexPath("gate.rules", j), describeRule(r), r.Action))
		}
	}
	return out
}

// userAgentShadows reports whether u, a bypass rule with a user agent,
// could decide a request that r, a later rule, would otherwise block or
// queue, on a path outside dynamic_paths; see Warnings.
func (g *Gate) userAgentShadows(u, r *Rule) bool {
	switch {
	case r.Action != GateActionBlock && r.Action != GateActionQueue,
		r.UserAgent != "",
		r.Action == GateActionQueue && r.Path == "" && r.PathRegex == "" && (r.PathPrefix == "" || r.PathPrefix == "/"),
		g.underDynamic(u), g.underDynamic(r):
		return false
	}
	return !rulesDisjoint(u, r)
}

// underDynamic reports whether every path r can match is under one of
// the dynamic paths, where no user_agent rule applies.
func (g *Gate) underDynamic(r *Rule) bool {
	for _, d := range g.DynamicPaths {
		if hasPrefixFold(r.Path, d) || hasPrefixFold(r.PathPrefix, d) {
			return true
		}
	}
	return false
}

// rulesDisjoint reports whether no request can match both a and b, as far
// as their hosts, methods and literal paths tell; regular expressions,
// headers and cookies are taken to overlap. Paths are compared ignoring
// ASCII case, the wider reading, as queue and block rules match them.
func rulesDisjoint(a, b *Rule) bool {
	if hostsDisjoint(a.Host, b.Host) || methodsDisjoint(a.Methods, b.Methods) {
		return true
	}
	switch {
	case a.Path != "" && b.Path != "" && !strings.EqualFold(a.Path, b.Path),
		a.Path != "" && b.PathPrefix != "" && !hasPrefixFold(a.Path, b.PathPrefix),
		b.Path != "" && a.PathPrefix != "" && !hasPrefixFold(b.Path, a.PathPrefix),
		a.PathPrefix != "" && b.PathPrefix != "" && !hasPrefixFold(a.PathPrefix, b.PathPrefix) && !hasPrefixFold(b.PathPrefix, a.PathPrefix):
		return true
	}
	return false
}

func hostsDisjoint(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	aWild, bWild := strings.HasPrefix(a, "*."), strings.HasPrefix(b, "*.")
	switch {
	case !aWild && !bWild:
		return !strings.EqualFold(a, b)
	case aWild && bWild:
		return false // *.a.example.com and *.example.com overlap
	case aWild:
		a, b = b, a
	}
	// a is exact, b is *.suffix: a must be one or more labels under suffix.
	suffix := b[1:]
	return !(len(a) > len(suffix) && strings.EqualFold(a[len(a)-len(suffix):], suffix))
}

func methodsDisjoint(a, b []string) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	for _, x := range a {
		for _, y := range b {
			if strings.EqualFold(x, y) {
				return false
			}
		}
	}
	return true
}

// hasPrefixFold reports whether s starts with prefix, ignoring ASCII case
// (non-empty prefixes only: an unset matcher covers nothing here).
func hasPrefixFold(s, prefix string) bool {
	return prefix != "" && s != "" && len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// describeRule names a rule in a warning by its action and its path
// matchers.
func describeRule(r *Rule) string {
	parts := []string{r.Action}
	for _, kv := range [][2]string{{"path", r.Path}, {"path_prefix", r.PathPrefix}, {"path_regex", r.PathRegex}, {"host", r.Host}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+" "+kv[1])
		}
	}
	return strings.Join(parts, ", ")
}

// gate validates g; roomIDs, when not nil, are the rooms a queue rule may
// name.
func (v *validator) gate(g *Gate, roomIDs map[string]bool) {
	if g == nil {
		return
	}
	const p = "gate"
	v.gateCookie(&g.Cookie)
	for i, dp := range g.DynamicPaths {
		v.absPath(indexPath(p+".dynamic_paths", i), dp)
	}
	queues := false
	for i := range g.Rules {
		v.rule(indexPath(p+".rules", i), &g.Rules[i], roomIDs)
		queues = queues || g.Rules[i].Action == GateActionQueue
	}
	if !queues {
		v.add(p+".rules", "no rule queues visitors")
	}
}

func (v *validator) gateCookie(c *GateCookie) {
	const p = "gate.cookie"
	switch {
	case c.Name == "":
		v.add(p+".name", "required")
	case !isToken(c.Name):
		v.add(p+".name", "must be a cookie name (RFC 6265 token characters), got %q", c.Name)
	}
	if c.Domain != "" && !isHostname(strings.TrimPrefix(c.Domain, ".")) {
		v.add(p+".domain", "must be a domain name such as example.com (no scheme, port or path), got %q", c.Domain)
	}
	switch {
	case c.Path == "":
		v.add(p+".path", "required")
	case !strings.HasPrefix(c.Path, "/"):
		v.add(p+".path", "must start with /, got %q", c.Path)
	case strings.IndexFunc(c.Path, func(r rune) bool { return r < 0x20 || r > 0x7e || r == ';' }) >= 0:
		// RFC 6265 path-value: no controls and no ";", which would end
		// the attribute. Non-ASCII would have to be percent-encoded.
		v.add(p+".path", "must be printable ASCII without ;, got %q", c.Path)
	}
}

// absPath checks a path or path prefix.
func (v *validator) absPath(path, s string) {
	if !strings.HasPrefix(s, "/") {
		v.add(path, "must start with /, got %q", s)
	}
}

// regex checks that s compiles as RE2.
func (v *validator) regex(path, s string) {
	if _, err := regexp.Compile(s); err != nil {
		v.add(path, "%s", regexError(err))
	}
}

// regexError words a compile error without regexp's generic prefix.
func regexError(err error) string {
	var se *syntax.Error
	if errors.As(err, &se) {
		return "invalid regular expression: " + se.Code.String() + ": `" + se.Expr + "`"
	}
	return "invalid regular expression: " + err.Error()
}

func (v *validator) rule(p string, r *Rule, roomIDs map[string]bool) {
	if r.Path == "" && r.PathPrefix == "" && r.PathRegex == "" && r.Host == "" &&
		len(r.Methods) == 0 && r.Header == nil && r.Cookie == nil && r.UserAgent == "" {
		v.add(p, "needs at least one matcher (path, path_prefix, path_regex, host, methods, header, cookie, user_agent); a catch-all is path_prefix: /")
	}
	if r.Path != "" {
		v.absPath(p+".path", r.Path)
	}
	if r.PathPrefix != "" {
		v.absPath(p+".path_prefix", r.PathPrefix)
	}
	if r.PathRegex != "" {
		v.regex(p+".path_regex", r.PathRegex)
	}
	if r.Host != "" {
		if h, _ := strings.CutPrefix(r.Host, "*."); !isHostname(h) {
			v.add(p+".host", "must be a host name such as shop.example.com, or *.example.com for its subdomains, got %q", r.Host)
		}
	}
	for i, m := range r.Methods {
		if !isToken(m) {
			v.add(indexPath(p+".methods", i), "must be an HTTP method such as GET, got %q", m)
		}
	}
	if r.Header != nil {
		v.nameValue(p+".header", r.Header, true)
	}
	if r.Cookie != nil {
		v.nameValue(p+".cookie", r.Cookie, false)
	}
	if r.UserAgent != "" && r.UserAgent != UserAgentGoodBots {
		v.regex(p+".user_agent", r.UserAgent)
	}
	switch r.Action {
	case GateActionQueue:
		switch {
		case r.Room == "":
			v.add(p+".room", "required for action queue")
		case roomIDs != nil && !roomIDs[r.Room]:
			v.add(p+".room", "unknown room %q", r.Room)
		}
	case GateActionBypass, GateActionBlock:
		if r.Room != "" {
			v.add(p+".room", "only allowed with action queue, got action %s", r.Action)
		}
	case "":
		v.add(p+".action", "required (queue, bypass or block)")
	default:
		v.add(p+".action", "must be one of queue, bypass, block, got %q", r.Action)
	}
}

func (v *validator) nameValue(p string, nv *NameValue, header bool) {
	switch {
	case nv.Name == "":
		v.add(p+".name", "required")
	case !isToken(nv.Name):
		// A name with other characters could never be sent, so the rule
		// would silently never match.
		if header {
			v.add(p+".name", "must be an HTTP header name (token characters), got %q", nv.Name)
		} else {
			v.add(p+".name", "must be a cookie name (RFC 6265 token characters), got %q", nv.Name)
		}
	case header && strings.EqualFold(nv.Name, "User-Agent"):
		// Through a header matcher a user agent would escape the rule
		// that user agents decide nothing on dynamic paths.
		v.add(p+".name", "use user_agent to match the user agent (it never applies on dynamic paths)")
	}
	if nv.Value != "" && nv.Regex != "" {
		v.add(p, "value and regex are mutually exclusive")
	}
	if nv.Regex != "" {
		v.regex(p+".regex", nv.Regex)
	}
}

// isToken reports whether s is an HTTP token (RFC 9110 tchar), which is
// also what RFC 6265 allows in a cookie name.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// isHostname reports whether s is a DNS host name (an IPv4 address
// passes too).
func isHostname(s string) bool {
	return len(s) <= maxHostnameLen && hostnamePattern.MatchString(s)
}
