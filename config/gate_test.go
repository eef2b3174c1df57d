package config_test

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/anteroom/anteroom/config"
)

// designGate is the gate section of the design document, with a second
// room and rules that use every matcher.
const designGate = `gate:
  cookie: {name: anteroom_gate, domain: "", path: /, secure: true}
  dynamic_paths: [/login, /checkout, /account]
  rules:
    - {path_prefix: /static/, action: bypass}
    - {path_regex: "^/stores/locator", action: bypass}
    - {user_agent: good_bots, action: bypass}
    - {path: /robots.txt, host: "*.example.com", methods: [GET, HEAD], action: bypass}
    - header: {name: X-Preview, value: "1"}
      cookie: {name: vip, regex: "^[0-9a-f]{32}$"}
      action: queue
      room: vip
    - {user_agent: "(?:curl|wget)/", action: block}
    - {path_prefix: /, action: queue, room: launch}
`

func TestParseGate(t *testing.T) {
	t.Parallel()
	src := edit(minimal(designGate), "rooms: [{id: r1}]", "rooms: [{id: r1}, {id: launch, on_error: fail_open}, {id: vip}]")
	c, err := config.Parse([]byte(src), env(nil))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := &config.Gate{
		Cookie:       config.GateCookie{Name: "anteroom_gate", Path: "/", Secure: ptr(true)},
		DynamicPaths: []string{"/login", "/checkout", "/account"},
		Rules: []config.Rule{
			{PathPrefix: "/static/", Action: "bypass"},
			{PathRegex: "^/stores/locator", Action: "bypass"},
			{UserAgent: "good_bots", Action: "bypass"},
			{Path: "/robots.txt", Host: "*.example.com", Methods: []string{"GET", "HEAD"}, Action: "bypass"},
			{
				Header: &config.NameValue{Name: "X-Preview", Value: "1"},
				Cookie: &config.NameValue{Name: "vip", Regex: "^[0-9a-f]{32}$"},
				Action: "queue", Room: "vip",
			},
			{UserAgent: "(?:curl|wget)/", Action: "block"},
			{PathPrefix: "/", Action: "queue", Room: "launch"},
		},
	}
	if !reflect.DeepEqual(c.Gate, want) {
		t.Errorf("Gate mismatch\n got: %+v\nwant: %+v", c.Gate, want)
	}
	if got := []string{c.Rooms[0].OnError, c.Rooms[1].OnError}; !reflect.DeepEqual(got, []string{"fail_closed", "fail_open"}) {
		t.Errorf("on_error = %q, want [fail_closed fail_open]", got)
	}
}

func TestParseGateDefaults(t *testing.T) {
	t.Parallel()
	src := minimal("gate:\n  rules: [{path_prefix: /, action: queue, room: r1}]\n")
	c, err := config.Parse([]byte(src), env(nil))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := config.GateCookie{Name: "anteroom_gate", Path: "/", Secure: ptr(true)}
	if !reflect.DeepEqual(c.Gate.Cookie, want) {
		t.Errorf("cookie = %+v, want %+v", c.Gate.Cookie, want)
	}

	// An explicit false is kept: that is why Secure is a pointer.
	src = minimal("gate:\n  cookie: {secure: false, domain: .example.com, path: /shop}\n  rules: [{path_prefix: /, action: queue, room: r1}]\n")
	c, err = config.Parse([]byte(src), env(nil))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want = config.GateCookie{Name: "anteroom_gate", Domain: ".example.com", Path: "/shop", Secure: ptr(false)}
	if !reflect.DeepEqual(c.Gate.Cookie, want) {
		t.Errorf("cookie = %+v, want %+v", c.Gate.Cookie, want)
	}
}

// TestGateJSONNames checks that the JSON names, which the shared rule
// table in gate/testdata uses, are the YAML names.
func TestGateJSONNames(t *testing.T) {
	t.Parallel()
	for _, typ := range []reflect.Type{
		reflect.TypeFor[config.Gate](), reflect.TypeFor[config.GateCookie](),
		reflect.TypeFor[config.Rule](), reflect.TypeFor[config.NameValue](),
	} {
		for i := range typ.NumField() {
			f := typ.Field(i)
			y := f.Tag.Get("yaml")
			j, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if y == "" || y != j {
				t.Errorf("%s.%s: yaml %q, json %q", typ.Name(), f.Name, y, j)
			}
		}
	}
	var g config.Gate
	src := `{"cookie": {"name": "c", "secure": false}, "dynamic_paths": ["/login"],
		"rules": [{"path_prefix": "/", "header": {"name": "X", "regex": "y"}, "action": "queue", "room": "r"}]}`
	if err := json.Unmarshal([]byte(src), &g); err != nil {
		t.Fatal(err)
	}
	if g.Cookie.Name != "c" || *g.Cookie.Secure || g.Rules[0].Header.Regex != "y" || g.Rules[0].Room != "r" {
		t.Errorf("json decode = %+v", g)
	}
}

// validGate is a gate that passes validation with validConfig's rooms;
// each case below breaks one thing in it.
func validGate() *config.Gate {
	g := &config.Gate{
		DynamicPaths: []string{"/login", "/checkout"},
		Rules: []config.Rule{
			{PathPrefix: "/static/", Action: "bypass"},
			{UserAgent: "good_bots", Action: "bypass"},
			{PathPrefix: "/", Action: "queue", Room: "launch"},
		},
	}
	g.ApplyDefaults()
	return g
}

func TestValidateGate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(g *config.Gate)
		want   []string // exact error lines; nil means valid
	}{
		{"valid base", func(g *config.Gate) {}, nil},

		// cookie
		{"cookie name required", func(g *config.Gate) { g.Cookie.Name = "" },
			[]string{"gate.cookie.name: required"}},
		{"cookie name not a token", func(g *config.Gate) { g.Cookie.Name = "gate session" },
			[]string{`gate.cookie.name: must be a cookie name (RFC 6265 token characters), got "gate session"`}},
		{"cookie name separator", func(g *config.Gate) { g.Cookie.Name = "a=b" },
			[]string{`gate.cookie.name: must be a cookie name (RFC 6265 token characters), got "a=b"`}},
		{"cookie name prefixed", func(g *config.Gate) { g.Cookie.Name = "__Host-anteroom" }, nil},
		{"cookie domain with scheme", func(g *config.Gate) { g.Cookie.Domain = "https://example.com" },
			[]string{`gate.cookie.domain: must be a domain name such as example.com (no scheme, port or path), got "https://example.com"`}},
		{"cookie domain with port", func(g *config.Gate) { g.Cookie.Domain = "example.com:443" },
			[]string{`gate.cookie.domain: must be a domain name such as example.com (no scheme, port or path), got "example.com:443"`}},
		{"cookie domain label ends with hyphen", func(g *config.Gate) { g.Cookie.Domain = "shop-.example.com" },
			[]string{`gate.cookie.domain: must be a domain name such as example.com (no scheme, port or path), got "shop-.example.com"`}},
		{"cookie domain label too long", func(g *config.Gate) { g.Cookie.Domain = strings.Repeat("a", 64) + ".com" },
			[]string{`gate.cookie.domain: must be a domain name such as example.com (no scheme, port or path), got "` + strings.Repeat("a", 64) + `.com"`}},
		{"cookie domain label of 63", func(g *config.Gate) { g.Cookie.Domain = strings.Repeat("a", 63) + ".com" }, nil},
		{"cookie domain", func(g *config.Gate) { g.Cookie.Domain = "shop.example.com" }, nil},
		{"cookie domain leading dot", func(g *config.Gate) { g.Cookie.Domain = ".example.com" }, nil},
		{"cookie path required", func(g *config.Gate) { g.Cookie.Path = "" },
			[]string{"gate.cookie.path: required"}},
		{"cookie path relative", func(g *config.Gate) { g.Cookie.Path = "shop" },
			[]string{`gate.cookie.path: must start with /, got "shop"`}},
		{"cookie path semicolon", func(g *config.Gate) { g.Cookie.Path = "/a;Domain=evil" },
			[]string{`gate.cookie.path: must be printable ASCII without ;, got "/a;Domain=evil"`}},
		{"cookie secure false", func(g *config.Gate) { g.Cookie.Secure = ptr(false) }, nil},

		// dynamic paths
		{"dynamic path relative", func(g *config.Gate) { g.DynamicPaths[1] = "checkout" },
			[]string{`gate.dynamic_paths[1]: must start with /, got "checkout"`}},
		{"dynamic path empty", func(g *config.Gate) { g.DynamicPaths = append(g.DynamicPaths, "") },
			[]string{`gate.dynamic_paths[2]: must start with /, got ""`}},

		// rules: matchers
		{"rule without matcher", func(g *config.Gate) { g.Rules[0].PathPrefix = "" },
			[]string{"gate.rules[0]: needs at least one matcher (path, path_prefix, path_regex, host, methods, header, cookie, user_agent); a catch-all is path_prefix: /"}},
		{"path relative", func(g *config.Gate) { g.Rules[0].Path = "robots.txt" },
			[]string{`gate.rules[0].path: must start with /, got "robots.txt"`}},
		{"path", func(g *config.Gate) { g.Rules[0].Path = "/robots.txt" }, nil},
		{"path_prefix relative", func(g *config.Gate) { g.Rules[0].PathPrefix = "static/" },
			[]string{`gate.rules[0].path_prefix: must start with /, got "static/"`}},
		{"path_regex does not compile", func(g *config.Gate) { g.Rules[0].PathRegex = "^/stores/(locator" },
			[]string{"gate.rules[0].path_regex: invalid regular expression: missing closing ): `^/stores/(locator`"}},
		{"path_regex not RE2", func(g *config.Gate) { g.Rules[0].PathRegex = `^/(?!checkout)` },
			[]string{"gate.rules[0].path_regex: invalid regular expression: invalid or unsupported Perl syntax: `(?!`"}},
		{"path_regex", func(g *config.Gate) { g.Rules[0].PathRegex = "^/stores/locator" }, nil},
		{"host", func(g *config.Gate) { g.Rules[0].Host = "Shop.Example.com" }, nil},
		{"host wildcard", func(g *config.Gate) { g.Rules[0].Host = "*.example.com" }, nil},
		{"host with scheme", func(g *config.Gate) { g.Rules[0].Host = "https://shop.example.com" },
			[]string{`gate.rules[0].host: must be a host name such as shop.example.com, or *.example.com for its subdomains, got "https://shop.example.com"`}},
		{"host with port", func(g *config.Gate) { g.Rules[0].Host = "shop.example.com:8443" },
			[]string{`gate.rules[0].host: must be a host name such as shop.example.com, or *.example.com for its subdomains, got "shop.example.com:8443"`}},
		{"host wildcard inside", func(g *config.Gate) { g.Rules[0].Host = "shop.*.example.com" },
			[]string{`gate.rules[0].host: must be a host name such as shop.example.com, or *.example.com for its subdomains, got "shop.*.example.com"`}},
		{"host bare wildcard", func(g *config.Gate) { g.Rules[0].Host = "*" },
			[]string{`gate.rules[0].host: must be a host name such as shop.example.com, or *.example.com for its subdomains, got "*"`}},
		{"host double wildcard", func(g *config.Gate) { g.Rules[0].Host = "*.*.example.com" },
			[]string{`gate.rules[0].host: must be a host name such as shop.example.com, or *.example.com for its subdomains, got "*.*.example.com"`}},
		{"methods", func(g *config.Gate) { g.Rules[0].Methods = []string{"GET", "HEAD", "PROPFIND"} }, nil},
		{"method not a token", func(g *config.Gate) { g.Rules[0].Methods = []string{"GET", "GE T", ""} },
			[]string{`gate.rules[0].methods[1]: must be an HTTP method such as GET, got "GE T"`, `gate.rules[0].methods[2]: must be an HTTP method such as GET, got ""`}},
		{"header present", func(g *config.Gate) { g.Rules[0].Header = &config.NameValue{Name: "X-Preview"} }, nil},
		{"header equal", func(g *config.Gate) { g.Rules[0].Header = &config.NameValue{Name: "X-Preview", Value: "1"} }, nil},
		{"header regex", func(g *config.Gate) { g.Rules[0].Header = &config.NameValue{Name: "X-Preview", Regex: "^[01]$"} }, nil},
		{"header name required", func(g *config.Gate) { g.Rules[0].Header = &config.NameValue{Value: "1"} },
			[]string{"gate.rules[0].header.name: required"}},
		{"header name not a token", func(g *config.Gate) { g.Rules[0].Header = &config.NameValue{Name: "X Preview"} },
			[]string{`gate.rules[0].header.name: must be an HTTP header name (token characters), got "X Preview"`}},
		{"header user agent", func(g *config.Gate) { g.Rules[1].Header = &config.NameValue{Name: "user-agent", Regex: "Googlebot"} },
			[]string{"gate.rules[1].header.name: use user_agent to match the user agent (it never applies on dynamic paths)"}},
		{"header value and regex", func(g *config.Gate) { g.Rules[0].Header = &config.NameValue{Name: "X", Value: "1", Regex: "1"} },
			[]string{"gate.rules[0].header: value and regex are mutually exclusive"}},
		{"header regex does not compile", func(g *config.Gate) { g.Rules[0].Header = &config.NameValue{Name: "X", Regex: "[a"} },
			[]string{"gate.rules[0].header.regex: invalid regular expression: missing closing ]: `[a`"}},
		{"cookie present", func(g *config.Gate) { g.Rules[0].Cookie = &config.NameValue{Name: "vip"} }, nil},
		{"cookie name required", func(g *config.Gate) { g.Rules[2].Cookie = &config.NameValue{} },
			[]string{"gate.rules[2].cookie.name: required"}},
		{"cookie name not a token", func(g *config.Gate) { g.Rules[2].Cookie = &config.NameValue{Name: "a;b"} },
			[]string{`gate.rules[2].cookie.name: must be a cookie name (RFC 6265 token characters), got "a;b"`}},
		{"cookie value and regex", func(g *config.Gate) { g.Rules[2].Cookie = &config.NameValue{Name: "vip", Value: "1", Regex: "1"} },
			[]string{"gate.rules[2].cookie: value and regex are mutually exclusive"}},
		{"cookie regex does not compile", func(g *config.Gate) { g.Rules[2].Cookie = &config.NameValue{Name: "vip", Regex: "a**"} },
			[]string{"gate.rules[2].cookie.regex: invalid regular expression: invalid nested repetition operator: `**`"}},
		{"user_agent regex", func(g *config.Gate) { g.Rules[1].UserAgent = `(?:curl|wget)/\d` }, nil},
		{"user_agent regex does not compile", func(g *config.Gate) { g.Rules[1].UserAgent = "curl(" },
			[]string{"gate.rules[1].user_agent: invalid regular expression: missing closing ): `curl(`"}},
		{"all matchers in one rule", func(g *config.Gate) {
			g.Rules[0] = config.Rule{
				Path: "/a", PathPrefix: "/", PathRegex: "a", Host: "a.example", Methods: []string{"GET"},
				Header: &config.NameValue{Name: "X"}, Cookie: &config.NameValue{Name: "c"}, UserAgent: "x",
				Action: "block",
			}
		}, nil},

		// rules: action and room
		{"action required", func(g *config.Gate) { g.Rules[0].Action = "" },
			[]string{"gate.rules[0].action: required (queue, bypass or block)"}},
		{"action unknown", func(g *config.Gate) { g.Rules[0].Action = "allow" },
			[]string{`gate.rules[0].action: must be one of queue, bypass, block, got "allow"`}},
		{"action case", func(g *config.Gate) { g.Rules[0].Action = "Bypass" },
			[]string{`gate.rules[0].action: must be one of queue, bypass, block, got "Bypass"`}},
		{"block", func(g *config.Gate) { g.Rules[0].Action = "block" }, nil},
		{"queue without room", func(g *config.Gate) { g.Rules[2].Room = "" },
			[]string{"gate.rules[2].room: required for action queue"}},
		{"queue unknown room", func(g *config.Gate) { g.Rules[2].Room = "lunch" },
			[]string{`gate.rules[2].room: unknown room "lunch"`}},
		{"queue second room", func(g *config.Gate) {
			g.Rules = append([]config.Rule{{PathPrefix: "/vip/", Action: "queue", Room: "vip"}}, g.Rules...)
		}, nil},
		{"bypass with room", func(g *config.Gate) { g.Rules[0].Room = "launch" },
			[]string{"gate.rules[0].room: only allowed with action queue, got action bypass"}},
		{"block with room", func(g *config.Gate) { g.Rules[0].Action = "block"; g.Rules[0].Room = "launch" },
			[]string{"gate.rules[0].room: only allowed with action queue, got action block"}},
		{"no queue rule", func(g *config.Gate) { g.Rules = g.Rules[:2] },
			[]string{"gate.rules: no rule queues visitors"}},
		{"no rules", func(g *config.Gate) { g.Rules = nil },
			[]string{"gate.rules: no rule queues visitors"}},

		{"all problems in stable order", func(g *config.Gate) {
			g.Cookie.Name = "a b"
			g.DynamicPaths[0] = "login"
			g.Rules[0].PathRegex = "("
			g.Rules[1].Action = "allow"
			g.Rules[2].Room = "lunch"
		}, []string{
			`gate.cookie.name: must be a cookie name (RFC 6265 token characters), got "a b"`,
			`gate.dynamic_paths[0]: must start with /, got "login"`,
			"gate.rules[0].path_regex: invalid regular expression: missing closing ): `(`",
			`gate.rules[1].action: must be one of queue, bypass, block, got "allow"`,
			`gate.rules[2].room: unknown room "lunch"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			c.Gate = validGate()
			tt.mutate(c.Gate)
			got := errLines(c.Validate())
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Validate() lines:\n got: %q\nwant: %q", got, tt.want)
			}
		})
	}
}

func TestValidateRoomOnError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		onError string
		want    []string
	}{
		{"fail_closed", nil},
		{"fail_open", nil},
		{"", []string{`rooms[1].on_error: must be one of fail_closed, fail_open, got ""`}},
		{"open", []string{`rooms[1].on_error: must be one of fail_closed, fail_open, got "open"`}},
	} {
		c := validConfig()
		c.Rooms[1].OnError = tc.onError
		if got := errLines(c.Validate()); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("on_error %q: lines %q, want %q", tc.onError, got, tc.want)
		}
	}
}

// TestGateValidateAlone checks Gate.Validate, which package gate runs
// without the rooms: everything but room references is checked.
func TestGateValidateAlone(t *testing.T) {
	t.Parallel()
	g := validGate()
	g.Rules[2].Room = "any-room"
	if err := g.Validate(); err != nil {
		t.Errorf("Validate() = %v, want nil (rooms are not checked)", err)
	}
	g.Rules[2].Room = ""
	g.Rules[0].PathPrefix = "static"
	want := []string{
		`gate.rules[0].path_prefix: must start with /, got "static"`,
		"gate.rules[2].room: required for action queue",
	}
	if got := errLines(g.Validate()); !reflect.DeepEqual(got, want) {
		t.Errorf("Validate() lines %q, want %q", got, want)
	}
}

func TestParseGateErrors(t *testing.T) {
	t.Parallel()
	withGate := func(gate string) string { return minimal("gate:\n" + gate) }
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"gate not a mapping", minimal("gate: 1\n"), []string{`gate: expected a mapping, got "1"`}},
		{"empty gate", minimal("gate: {}\n"), []string{"gate.rules: no rule queues visitors"}},
		{"unknown key in gate", withGate("  rule: []\n  rules: [{path_prefix: /, action: queue, room: r1}]\n"),
			[]string{"gate.rule: unknown key"}},
		{"unknown key in cookie", withGate("  cookie: {sceure: true}\n  rules: [{path_prefix: /, action: queue, room: r1}]\n"),
			[]string{"gate.cookie.sceure: unknown key"}},
		{"unknown key in a rule", withGate("  rules: [{path_prefix: /, action: queue, room: r1, paht: /x}]\n"),
			[]string{"gate.rules[0].paht: unknown key"}},
		{"unknown key in a header", withGate("  rules: [{header: {name: X, values: [a]}, action: queue, room: r1}]\n"),
			[]string{"gate.rules[0].header.values: unknown key"}},
		{"secure not a bool", withGate("  cookie: {secure: yes please}\n  rules: [{path_prefix: /, action: queue, room: r1}]\n"),
			[]string{`gate.cookie.secure: expected true or false, got "yes please"`}},
		{"methods not a list", withGate("  rules: [{methods: GET, action: queue, room: r1}]\n"),
			[]string{`gate.rules[0].methods: expected a list, got "GET"`}},
		{"header not a mapping", withGate("  rules: [{header: X-Preview, action: queue, room: r1}]\n"),
			[]string{`gate.rules[0].header: expected a mapping, got "X-Preview"`}},
		{"rules not a list", withGate("  rules: {path_prefix: /, action: queue, room: r1}\n"),
			[]string{"gate.rules: expected a list, got a mapping"}},
		{"unknown room after decoding", withGate("  rules: [{path_prefix: /, action: queue, room: lunch}]\n"),
			[]string{`gate.rules[0].room: unknown room "lunch"`}},
		{"on_error unknown", edit(minimal(""), "{id: r1}", "{id: r1, on_error: fail_sometimes}"),
			[]string{`rooms[0].on_error: must be one of fail_closed, fail_open, got "fail_sometimes"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := config.Parse([]byte(tt.src), env(nil))
			if err == nil {
				t.Fatalf("Parse() = %+v, nil; want error %q", c, tt.want)
			}
			if got := errLines(err); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse() error lines:\n got: %q\nwant: %q", got, tt.want)
			}
		})
	}
}

// TestGateWarnings: a user_agent bypass before a block rule, or a queue
// rule for particular paths, that it could shadow outside dynamic_paths is
// reported, naming both rules by key; rules that cannot meet the same
// request, or meet only under dynamic_paths, are not. None stops Validate.
func TestGateWarnings(t *testing.T) {
	t.Parallel()
	bots := config.Rule{UserAgent: "good_bots", Action: "bypass"}
	catchAll := config.Rule{PathPrefix: "/", Action: "queue", Room: "launch"}
	admin := config.Rule{PathPrefix: "/admin/", Action: "block"}
	warns := func(i, j int, what string) string {
		return fmt.Sprintf("gate.rules[%d]: this user_agent bypass comes before gate.rules[%d] (%s), so ", i, j, what)
	}
	tests := []struct {
		name    string
		dynamic []string
		rules   []config.Rule
		want    []string // line prefixes
	}{
		{"good bots before a block", nil, []config.Rule{bots, admin, catchAll}, []string{warns(0, 1, "block, path_prefix /admin/")}},
		{"good bots after the block", nil, []config.Rule{admin, bots, catchAll}, nil},
		{"a user agent regex bypass too", nil, []config.Rule{{UserAgent: "(?i)monitor", Action: "bypass"}, admin, catchAll},
			[]string{warns(0, 1, "block, path_prefix /admin/")}},
		{"a block without a path", nil, []config.Rule{bots, {Methods: []string{"TRACE"}, Action: "block"}, catchAll}, []string{warns(0, 1, "block")}},
		{"a queue rule for particular paths", nil, []config.Rule{bots, {PathPrefix: "/drops/", Action: "queue", Room: "launch"}, catchAll},
			[]string{warns(0, 1, "queue, path_prefix /drops/")}},
		{"a queue rule for a regex", nil, []config.Rule{bots, {PathRegex: "^/drops/", Action: "queue", Room: "launch"}, catchAll},
			[]string{warns(0, 1, "queue, path_regex ^/drops/")}},
		{"each shadowed rule is named", nil, []config.Rule{bots, admin, {Path: "/wp-login.php", Action: "block"}, catchAll},
			[]string{warns(0, 1, "block, path_prefix /admin/"), warns(0, 2, "block, path /wp-login.php")}},
		{"the catch-all queue is what the bypass is for", nil, []config.Rule{bots, catchAll}, nil},
		{"a queue rule for a host is site-wide too", nil, []config.Rule{bots, {Host: "shop.example.com", Action: "queue", Room: "launch"}}, nil},
		{"the block is under a dynamic path", []string{"/admin"}, []config.Rule{bots, admin, catchAll}, nil},
		{"the queue is under a dynamic path, ignoring case", []string{"/CHECKOUT"}, []config.Rule{bots, {PathPrefix: "/checkout/", Action: "queue", Room: "launch"}, catchAll}, nil},
		{"the bypass is under a dynamic path", []string{"/admin"}, []config.Rule{{PathPrefix: "/admin/x", UserAgent: "good_bots", Action: "bypass"}, {Path: "/y", Action: "block"}, catchAll}, nil},
		{"other path prefixes", nil, []config.Rule{{PathPrefix: "/products/", UserAgent: "good_bots", Action: "bypass"}, admin, catchAll}, nil},
		{"a wider bypass prefix", nil, []config.Rule{{PathPrefix: "/ad", UserAgent: "good_bots", Action: "bypass"}, admin, catchAll},
			[]string{warns(0, 1, "block, path_prefix /admin/")}},
		{"an exact path outside the prefix", nil, []config.Rule{{Path: "/robots.txt", UserAgent: "good_bots", Action: "bypass"}, admin, catchAll}, nil},
		{"other hosts", nil, []config.Rule{{Host: "www.example.com", UserAgent: "good_bots", Action: "bypass"}, {Host: "admin.example.com", Action: "block"}, catchAll}, nil},
		{"a host under the wildcard", nil, []config.Rule{{Host: "a.example.com", UserAgent: "good_bots", Action: "bypass"}, {Host: "*.example.com", Action: "block"}, catchAll},
			[]string{warns(0, 1, "block, host *.example.com")}},
		{"a host outside the wildcard", nil, []config.Rule{{Host: "example.com", UserAgent: "good_bots", Action: "bypass"}, {Host: "*.example.com", Action: "block"}, catchAll}, nil},
		{"other methods", nil, []config.Rule{{Methods: []string{"GET", "HEAD"}, UserAgent: "good_bots", Action: "bypass"}, {Methods: []string{"post"}, Action: "block"}, catchAll}, nil},
		{"a user agent block", nil, []config.Rule{bots, {UserAgent: "sqlmap", Action: "block"}, catchAll}, nil},
		{"a bypass without a user agent", nil, []config.Rule{{PathPrefix: "/", Action: "bypass"}, admin, catchAll}, nil},
		{"a later bypass", nil, []config.Rule{bots, {PathPrefix: "/static/", Action: "bypass"}, catchAll}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := &config.Gate{DynamicPaths: tt.dynamic, Rules: tt.rules}
			g.ApplyDefaults()
			if err := g.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			got := g.Warnings()
			if len(got) != len(tt.want) {
				t.Fatalf("Warnings() = %q, want %d lines starting %q", got, len(tt.want), tt.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("warning %d = %q, want it to start %q", i, got[i], tt.want[i])
				}
			}
		})
	}
	var none *config.Gate
	if w := none.Warnings(); w != nil {
		t.Errorf("nil gate: %q", w)
	}
}

// TestDocumentedGateExample loads the gate example of docs/integrations.md as a reader would
// paste it: it must validate and draw no warning. The order it once had,
// good bots before the /admin/ block, which let a faked Googlebot into
// /admin/, must draw exactly the warning the documentation quotes.
func TestDocumentedGateExample(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../docs/integrations.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), "```yaml\ngate:\n")
	if !ok {
		t.Fatal("docs/integrations.md has no ```yaml block starting with gate:")
	}
	example, _, _ := strings.Cut(rest, "```")
	example = "gate:\n" + example
	rooms := func(src string) string {
		return edit(minimal(src), "rooms: [{id: r1}]", "rooms: [{id: r1}, {id: checkout}, {id: launch}]")
	}
	c, err := config.Parse([]byte(rooms(example)), env(nil))
	if err != nil {
		t.Fatalf("documented gate example: %v", err)
	}
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("documented gate example warns: %q", w)
	}

	lines := strings.Split(example, "\n")
	admin, bots := -1, -1
	for i, l := range lines {
		switch {
		case strings.Contains(l, "{path_prefix: /admin/, action: block}"):
			admin = i
		case strings.Contains(l, "{user_agent: good_bots, action: bypass}"):
			bots = i
		}
	}
	if admin < 0 || bots < 0 || admin > bots {
		t.Fatalf("documented gate example: want the /admin/ block before the good_bots bypass:\n%s", example)
	}
	lines[admin], lines[bots] = lines[bots], lines[admin]
	c, err = config.Parse([]byte(rooms(strings.Join(lines, "\n"))), env(nil))
	if err != nil {
		t.Fatalf("documented gate example, reordered: %v", err)
	}
	want := "gate.rules[2]: this user_agent bypass comes before gate.rules[3] (block, path_prefix /admin/), so any client that claims such a user agent skips that rule outside dynamic_paths; put the block rule first, or cover its paths with dynamic_paths"
	if w := c.Warnings(); len(w) != 1 || w[0] != want {
		t.Errorf("good bots before the block: Warnings() = %q, want [%q]", w, want)
	}
	readme := "`gate.rules[2]: this user_agent bypass comes\n  before gate.rules[3] (block, path_prefix /admin/) …`"
	if !strings.Contains(string(data), readme) {
		t.Errorf("docs/integrations.md no longer quotes the warning as %s", readme)
	}
}
