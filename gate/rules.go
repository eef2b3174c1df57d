// Package gate decides, for a request nginx asks about through
// auth_request, whether the visitor must queue in a room, may pass, or is
// refused. This file holds the protection rules (config.Gate.Rules): a
// pure matcher over a few request fields, with no HTTP server and no
// Redis, so that it is cheap enough to run on every protected request and
// simple enough for an edge connector to reimplement from the shared
// table in testdata/rules.json.
package gate

import (
	"errors"
	"net/textproto"
	"regexp"
	"strconv"
	"strings"

	"github.com/anteroom/anteroom/config"
)

// Request is what a rule looks at. The gate builds it from the headers
// nginx sends to the auth_request location (X-Original-URI,
// X-Original-Method, Host, User-Agent, Cookie, ...).
type Request struct {
	// Host is the requested host, with or without a port.
	Host string
	// Method is the request method.
	Method string
	// Path is the request target as nginx's $request_uri gives it: the
	// path, not normalised, not decoded, optionally followed by ?query.
	// Decide strips the query (everything from the first ?) and
	// percent-decodes the path once before matching.
	Path string
	// UserAgent is the User-Agent header.
	UserAgent string
	// Header returns a request header's value, "" when it is absent; the
	// name is passed in canonical form (X-Preview). Nil means no headers.
	Header func(name string) string
	// Cookie returns a request cookie's value and whether it is present.
	// Nil means no cookies.
	Cookie func(name string) (string, bool)
}

// Action is what the gate does with a request.
type Action int

// The actions. The zero value is ActionBypass, which is also what a
// request matching no rule gets.
const (
	// ActionBypass lets the request through without a queue.
	ActionBypass Action = iota
	// ActionQueue sends the visitor through Decision.Room.
	ActionQueue
	// ActionBlock refuses the request.
	ActionBlock
)

// String returns the action as the configuration writes it: bypass,
// queue or block.
func (a Action) String() string {
	switch a {
	case ActionBypass:
		return config.GateActionBypass
	case ActionQueue:
		return config.GateActionQueue
	case ActionBlock:
		return config.GateActionBlock
	}
	return "Action(" + strconv.Itoa(int(a)) + ")"
}

// parseAction is the inverse of Action.String.
func parseAction(s string) (Action, bool) {
	switch s {
	case config.GateActionBypass:
		return ActionBypass, true
	case config.GateActionQueue:
		return ActionQueue, true
	case config.GateActionBlock:
		return ActionBlock, true
	}
	return 0, false
}

// Decision is the outcome of Rules.Decide.
type Decision struct {
	// Action is what to do with the request.
	Action Action
	// Room is the room to queue in, for ActionQueue; otherwise "".
	Room string
	// Rule is the index in config.Gate.Rules of the rule that decided, or
	// -1 when none matched, for logs and metrics.
	Rule int
}

// Rules are compiled protection rules. They are immutable, so one value
// may be used by any number of goroutines.
type Rules struct {
	rules   []rule
	dynamic []string
}

// rule is one compiled config.Rule. Empty strings and nil pointers are
// matchers that are not set.
type rule struct {
	action Action
	room   string

	path       string
	pathPrefix string
	pathRegex  *regexp.Regexp
	host       string // exact; or, with hostSuffix, ""
	hostSuffix string // ".example.com" for *.example.com
	methods    []string
	header     *valueMatcher
	cookie     *valueMatcher
	goodBots   bool
	userAgent  *regexp.Regexp // case-insensitive
	// foldCase: queue and block rules match paths ignoring ASCII case, as
	// dynamic paths do, since a backend that ignores case serves /CHECKOUT
	// as /checkout; bypass rules match exactly (the conservative side).
	foldCase bool
}

// hasUserAgent reports whether the rule looks at the user agent, which
// makes it inapplicable on dynamic paths.
func (ru *rule) hasUserAgent() bool { return ru.goodBots || ru.userAgent != nil }

// valueMatcher is a compiled config.NameValue.
type valueMatcher struct {
	name  string // canonical header name, or cookie name as written
	value string
	regex *regexp.Regexp
}

// match reports whether a value that is present matches.
func (m *valueMatcher) match(v string) bool {
	switch {
	case m.regex != nil:
		return m.regex.MatchString(v)
	case m.value != "":
		return v == m.value
	}
	return true
}

// Compile validates g (except that queue rules name existing rooms, which
// config.Config.Validate checks with the rooms at hand) and compiles its
// rules for Decide. Defaults are applied to a copy, so g is not modified.
func Compile(g *config.Gate) (*Rules, error) {
	if g == nil {
		return nil, errors.New("gate: not configured")
	}
	c := *g
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	rs := &Rules{
		rules:   make([]rule, len(c.Rules)),
		dynamic: append([]string(nil), c.DynamicPaths...),
	}
	for i, cr := range c.Rules {
		// Validate has checked the action and compiled every regular
		// expression, so nothing below can fail.
		action, _ := parseAction(cr.Action)
		ru := rule{
			action:     action,
			room:       cr.Room,
			path:       cr.Path,
			pathPrefix: cr.PathPrefix,
			goodBots:   cr.UserAgent == config.UserAgentGoodBots,
			foldCase:   action != ActionBypass,
		}
		if cr.PathRegex != "" {
			re := cr.PathRegex
			if ru.foldCase {
				re = "(?i)" + re
			}
			ru.pathRegex = regexp.MustCompile(re)
		}
		if suffix, wild := strings.CutPrefix(cr.Host, "*"); wild {
			ru.hostSuffix = suffix // ".example.com"
		} else {
			ru.host = cr.Host
		}
		for _, m := range cr.Methods {
			ru.methods = append(ru.methods, strings.ToUpper(m))
		}
		if cr.Header != nil {
			ru.header = compileValue(textproto.CanonicalMIMEHeaderKey(cr.Header.Name), cr.Header)
		}
		if cr.Cookie != nil {
			ru.cookie = compileValue(cr.Cookie.Name, cr.Cookie)
		}
		if cr.UserAgent != "" && !ru.goodBots {
			ru.userAgent = regexp.MustCompile("(?i)" + cr.UserAgent)
		}
		rs.rules[i] = ru
	}
	return rs, nil
}

func compileValue(name string, nv *config.NameValue) *valueMatcher {
	m := &valueMatcher{name: name, value: nv.Value}
	if nv.Regex != "" {
		m.regex = regexp.MustCompile(nv.Regex)
	}
	return m
}

// Decide returns the action of the first rule that matches r, or
// ActionBypass with Rule -1 when none does.
//
// Paths are matched without the query (Decide strips everything from the
// first ?) and percent-decoded once; a path with an invalid escape is
// matched as it was sent.
//
// A path in canonical form starts with / and, once decoded, has only
// non-empty segments that are not dot segments, and nothing a parser could
// read in another way. Exactly these make a path non-canonical:
//
//   - no leading / (an absolute-form target such as http://host/path, or
//     garbage);
//   - an empty segment (//, also at the start: //host/path); a trailing /
//     is fine;
//   - a dot segment, . or .., also written %2e or .%2E;
//   - a ; anywhere, raw or as %3B: a path parameter (/static;x/,
//     /..;/, /app.js;jsessionid=1), which Tomcat and others drop before
//     matching;
//   - a backslash, raw or as %5C, which IIS and URL parsers read as /;
//   - an encoded slash, %2F;
//   - a raw # (the start of a fragment, which a browser never sends and
//     parsers cut off, so /checkout#.png reaches /checkout); %23 is data;
//   - a percent-escape left after decoding (double encoding, %252e);
//   - an invalid escape (%zz, a truncated %2);
//   - a control character (below 0x20, or 0x7f), raw or encoded.
//
// A non-canonical path matches no bypass rule. Queue and block rules see
// it both as decoded and normalised (see cleanPath), and a dynamic path in
// either form counts. So a non-canonical path goes to the queue or block
// rule that covers it, or bypasses only when no rule covers it in either
// form.
//
// This is because nginx hands the gate $request_uri raw, and the backend
// behind it (or nginx's own proxy_pass with a URI, or an edge runtime's
// URL parser) may normalise the path differently from how a rule reads
// it: /static/../checkout matches path_prefix /static/ as written, yet
// reaches /checkout. Normalising here would only guess at what the backend
// does (Tomcat reads /..;/ as /../, IIS reads \ as /), so such paths are
// simply never waved through. A browser never sends them on its own. The
// edge connectors (deploy/edge/core/rules.js) implement the same list;
// testdata/rules.json holds the cases both are tested against.
func (rs *Rules) Decide(r Request) Decision {
	p := preparePath(r.Path)
	host := requestHost(r.Host)
	dyn := dynUnknown
	for i := range rs.rules {
		ru := &rs.rules[i]
		if ru.action == ActionBypass && !p.canonical {
			continue
		}
		if ru.hasUserAgent() {
			if dyn == dynUnknown {
				dyn = dynNo
				if rs.underDynamic(p.decoded) || (!p.canonical && rs.underDynamic(p.clean)) {
					dyn = dynYes
				}
			}
			if dyn == dynYes {
				continue
			}
		}
		if ru.matches(&r, &p, host) {
			return Decision{Action: ru.action, Room: ru.room, Rule: i}
		}
	}
	return Decision{Action: ActionBypass, Rule: -1}
}

// States of Decide's lazily computed "is the path dynamic".
const (
	dynUnknown = iota
	dynNo
	dynYes
)

// underDynamic reports whether path is under one of the dynamic path
// prefixes, ignoring ASCII case: a backend that ignores case would serve
// /CHECKOUT as /checkout.
func (rs *Rules) underDynamic(path string) bool {
	for _, d := range rs.dynamic {
		if hasPrefixFold(path, d) {
			return true
		}
	}
	return false
}

// matches reports whether every matcher of ru matches, the cheap ones
// first. The user agent's relation to dynamic paths is Decide's concern.
func (ru *rule) matches(r *Request, p *reqPath, host string) bool {
	if len(ru.methods) > 0 && !ru.matchMethod(r.Method) {
		return false
	}
	if ru.host != "" && !equalFold(host, ru.host) {
		return false
	}
	if ru.hostSuffix != "" && !matchWildcard(host, ru.hostSuffix) {
		return false
	}
	if (ru.path != "" || ru.pathPrefix != "" || ru.pathRegex != nil) && !ru.matchPath(p) {
		return false
	}
	if ru.header != nil {
		var v string
		if r.Header != nil {
			v = r.Header(ru.header.name)
		}
		if v == "" || !ru.header.match(v) {
			return false
		}
	}
	if ru.cookie != nil {
		var v string
		var ok bool
		if r.Cookie != nil {
			v, ok = r.Cookie(ru.cookie.name)
		}
		if !ok || !ru.cookie.match(v) {
			return false
		}
	}
	if ru.goodBots && !IsGoodBot(r.UserAgent) {
		return false
	}
	if ru.userAgent != nil && !ru.userAgent.MatchString(r.UserAgent) {
		return false
	}
	return true
}

func (ru *rule) matchMethod(m string) bool {
	for _, want := range ru.methods {
		if equalFold(m, want) {
			return true
		}
	}
	return false
}

// matchPath matches the path matchers against the path as decoded and,
// when that is not canonical, against its normalised form: either one is
// enough. Bypass rules never get here with a non-canonical path.
func (ru *rule) matchPath(p *reqPath) bool {
	if ru.matchPathForm(p.decoded) {
		return true
	}
	return !p.canonical && ru.matchPathForm(p.clean)
}

func (ru *rule) matchPathForm(path string) bool {
	if ru.path != "" && path != ru.path && !(ru.foldCase && equalFold(path, ru.path)) {
		return false
	}
	if ru.pathPrefix != "" && !strings.HasPrefix(path, ru.pathPrefix) && !(ru.foldCase && hasPrefixFold(path, ru.pathPrefix)) {
		return false
	}
	if ru.pathRegex != nil && !ru.pathRegex.MatchString(path) {
		return false
	}
	return true
}

// matchWildcard reports whether host is one or more labels followed by
// suffix (".example.com"), ignoring ASCII case.
func matchWildcard(host, suffix string) bool {
	n := len(host) - len(suffix)
	return n > 0 && host[0] != '.' && equalFold(host[n:], suffix)
}

// requestHost returns the host without a port or a trailing dot.
func requestHost(h string) string {
	if strings.HasPrefix(h, "[") { // IPv6 literal
		if i := strings.IndexByte(h, ']'); i >= 0 {
			return h[:i+1]
		}
		return h
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 && allDigits(h[i+1:]) {
		h = h[:i]
	}
	return strings.TrimSuffix(h, ".")
}

func allDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// reqPath is a request path prepared for matching.
type reqPath struct {
	// decoded is the path without the query, percent-decoded once, or as
	// sent when it has an invalid escape.
	decoded string
	// clean is the path normalised (see cleanPath) when it is not
	// canonical, and decoded itself when it is.
	clean string
	// canonical reports whether the path is one a bypass rule may match;
	// see Decide.
	canonical bool
}

// preparePath strips the query from target, decodes it and judges
// whether it is canonical. A canonical path without escapes, the common
// case, costs no allocation.
func preparePath(target string) reqPath {
	if i := strings.IndexByte(target, '?'); i >= 0 {
		target = target[:i]
	}
	canonical := true
	if !strings.HasPrefix(target, "/") {
		// An absolute-form target (GET http://host/checkout), which
		// nginx passes on in $request_uri as it was sent, or garbage.
		canonical = false
		if i := strings.Index(target, "://"); i >= 0 {
			rest := target[i+3:]
			if j := strings.IndexByte(rest, '/'); j >= 0 {
				target = rest[j:]
			} else {
				target = "/"
			}
		} else {
			target = "/" + target
		}
	}
	// A raw # starts a fragment to every URL parser: what follows it never
	// reaches a backend that parses the target, so the normalised form
	// ends there, while the form as sent keeps it.
	beforeFragment := target
	if i := strings.IndexByte(target, '#'); i >= 0 {
		canonical = false
		beforeFragment = target[:i]
	}
	decoded, ok, slash := unescape(target)
	if !ok || slash || !isCanonical(decoded) {
		canonical = false
	}
	p := reqPath{decoded: decoded, clean: decoded, canonical: canonical}
	if !canonical {
		if beforeFragment != target {
			decoded, _, _ = unescape(beforeFragment)
		}
		p.clean = cleanPath(decoded)
	}
	return p
}

// unescape percent-decodes s once. ok is false, and s returned as it is,
// when an escape is invalid; slash reports an encoded / or \, which
// decoding turns into a separator the path did not have as sent.
func unescape(s string) (out string, ok, slash bool) {
	n := strings.Count(s, "%")
	if n == 0 {
		return s, true, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && (i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2])) {
			return s, false, false
		}
	}
	b := make([]byte, 0, len(s)-2*n)
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b = append(b, s[i])
			continue
		}
		c := unhex(s[i+1])<<4 | unhex(s[i+2])
		if c == '/' || c == '\\' {
			slash = true
		}
		b = append(b, c)
		i += 2
	}
	return string(b), true, slash
}

// isCanonical reports whether a decoded path, which starts with /, has
// none of the forms that Decide keeps from bypass rules (all but the
// leading /, the escapes and the raw #, which preparePath checks).
func isCanonical(p string) bool {
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c < 0x20, c == 0x7f, c == '\\', c == ';':
			// Controls; a backslash, a separator to IIS and URL parsers;
			// a path parameter, which Tomcat and others drop.
			return false
		case c == '%' && i+2 < len(p) && isHex(p[i+1]) && isHex(p[i+2]):
			return false // was double-encoded
		}
	}
	rest := p[1:]
	for {
		seg, after, more := strings.Cut(rest, "/")
		switch {
		case seg == "." || seg == "..":
			return false
		case seg == "" && more:
			// An empty segment (//), which a browser never produces. A
			// trailing / is fine.
			return false
		}
		if !more {
			return true
		}
		rest = after
	}
}

// cleanPath normalises a decoded path the way the most lenient backend
// would: \ is a separator, every segment's ;parameters go (as Tomcat
// drops them, so /admin;x/ is /admin/ and /..;/ is /../), empty and "."
// segments go, and ".." removes the segment before it. A path that ended
// in a separator or a dot segment keeps a trailing /.
func cleanPath(p string) string {
	p = strings.ReplaceAll(p, `\`, "/")
	segs := make([]string, 0, strings.Count(p, "/"))
	trailing := false
	for _, seg := range strings.Split(p, "/")[1:] {
		name, _, _ := strings.Cut(seg, ";")
		switch name {
		case "", ".":
			trailing = true
		case "..":
			if len(segs) > 0 {
				segs = segs[:len(segs)-1]
			}
			trailing = true
		default:
			segs = append(segs, name)
			trailing = false
		}
	}
	if len(segs) == 0 {
		return "/"
	}
	out := "/" + strings.Join(segs, "/")
	if trailing {
		out += "/"
	}
	return out
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
