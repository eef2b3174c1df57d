package gate_test

import (
	"bytes"
	"encoding/json"
	"net/url"
	"os"
	"path"
	"reflect"
	"strings"
	"testing"

	"github.com/anteroom/anteroom/config"
	"github.com/anteroom/anteroom/gate"
)

const (
	browserUA   = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
	googlebotUA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
)

// req is a GET from a browser to shop.example.com; options change it.
func req(path string, opts ...func(*gate.Request)) gate.Request {
	r := gate.Request{Host: "shop.example.com", Method: "GET", Path: path, UserAgent: browserUA}
	for _, o := range opts {
		o(&r)
	}
	return r
}

func ua(s string) func(*gate.Request)     { return func(r *gate.Request) { r.UserAgent = s } }
func host(s string) func(*gate.Request)   { return func(r *gate.Request) { r.Host = s } }
func method(s string) func(*gate.Request) { return func(r *gate.Request) { r.Method = s } }

// headers serves headers from m, with names compared case-insensitively
// as HTTP does.
func headers(m map[string]string) func(*gate.Request) {
	return func(r *gate.Request) {
		r.Header = func(name string) string {
			for k, v := range m {
				if strings.EqualFold(k, name) {
					return v
				}
			}
			return ""
		}
	}
}

func cookies(m map[string]string) func(*gate.Request) {
	return func(r *gate.Request) {
		r.Cookie = func(name string) (string, bool) {
			v, ok := m[name]
			return v, ok
		}
	}
}

func queue(room string, rule int) gate.Decision {
	return gate.Decision{Action: gate.ActionQueue, Room: room, Rule: rule}
}
func bypass(rule int) gate.Decision { return gate.Decision{Action: gate.ActionBypass, Rule: rule} }
func block(rule int) gate.Decision  { return gate.Decision{Action: gate.ActionBlock, Rule: rule} }

var noMatch = gate.Decision{Action: gate.ActionBypass, Rule: -1}

// designRules are the design document's example rules.
var designRules = []config.Rule{
	{PathPrefix: "/static/", Action: "bypass"},
	{PathRegex: "^/stores/locator", Action: "bypass"},
	{UserAgent: "good_bots", Action: "bypass"},
	{PathPrefix: "/", Action: "queue", Room: "launch"},
}

var designDynamic = []string{"/login", "/checkout", "/account"}

// q is a queue rule for room, to follow the rule under test so that every
// gate compiles (a gate must queue somewhere).
func q(room string, r config.Rule) config.Rule {
	r.Action, r.Room = "queue", room
	return r
}

func compile(t testing.TB, dynamic []string, rules ...config.Rule) *gate.Rules {
	t.Helper()
	rs, err := gate.Compile(&config.Gate{DynamicPaths: dynamic, Rules: rules})
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return rs
}

func TestDecide(t *testing.T) {
	t.Parallel()
	catchAll := config.Rule{PathPrefix: "/", Action: "queue", Room: "launch"}
	// only is a gate whose one rule under test queues in room "x", so that
	// a match is told apart from the no-match bypass.
	only := func(r config.Rule) []config.Rule { return []config.Rule{q("x", r)} }
	hit := queue("x", 0)

	tests := []struct {
		name    string
		dynamic []string
		rules   []config.Rule
		req     gate.Request
		want    gate.Decision
	}{
		// path, exact
		{"path exact", nil, only(config.Rule{Path: "/robots.txt"}), req("/robots.txt"), hit},
		{"path exact with query", nil, only(config.Rule{Path: "/robots.txt"}), req("/robots.txt?x=1"), hit},
		{"path exact longer", nil, only(config.Rule{Path: "/robots.txt"}), req("/robots.txt/x"), noMatch},
		{"path exact trailing slash", nil, only(config.Rule{Path: "/a"}), req("/a/"), noMatch},
		{"queue path exact ignores case", nil, only(config.Rule{Path: "/a"}), req("/A"), hit},
		{"bypass path exact is case-sensitive", nil, []config.Rule{{Path: "/a", Action: "bypass"}, {PathPrefix: "/", Action: "queue", Room: "x"}}, req("/A"),
			gate.Decision{Action: gate.ActionQueue, Room: "x", Rule: 1}},
		{"queue path prefix ignores case", nil, only(config.Rule{PathPrefix: "/checkout/"}), req("/CHECKOUT/pay"), hit},
		{"queue path regex ignores case", nil, only(config.Rule{PathRegex: "^/cart$"}), req("/Cart"), hit},
		{"path exact decoded", nil, only(config.Rule{Path: "/a b"}), req("/a%20b"), hit},

		// path prefix
		{"path prefix", nil, only(config.Rule{PathPrefix: "/static/"}), req("/static/a.js"), hit},
		{"path prefix itself", nil, only(config.Rule{PathPrefix: "/static/"}), req("/static/"), hit},
		{"path prefix without its slash", nil, only(config.Rule{PathPrefix: "/static/"}), req("/static"), noMatch},
		{"path prefix is a string prefix", nil, only(config.Rule{PathPrefix: "/static"}), req("/staticfiles"), hit},
		{"path prefix catch-all", nil, only(config.Rule{PathPrefix: "/"}), req("/"), hit},
		{"query is not the path", nil, only(config.Rule{PathPrefix: "/static/"}), req("/?/static/"), noMatch},

		// path regex
		{"path regex", nil, only(config.Rule{PathRegex: "^/stores/locator"}), req("/stores/locator/berlin"), hit},
		{"path regex anchored", nil, only(config.Rule{PathRegex: "^/stores/locator"}), req("/en/stores/locator"), noMatch},
		{"path regex unanchored", nil, only(config.Rule{PathRegex: `\.pdf$`}), req("/docs/a.pdf"), hit},
		{"path regex sees no query", nil, only(config.Rule{PathRegex: `\.pdf$`}), req("/docs/a.pdf?x=1"), hit},
		{"path regex query does not match", nil, only(config.Rule{PathRegex: `x=1`}), req("/docs?x=1"), noMatch},

		// host
		{"host exact", nil, only(config.Rule{Host: "shop.example.com"}), req("/"), hit},
		{"host exact other", nil, only(config.Rule{Host: "shop.example.com"}), req("/", host("blog.example.com")), noMatch},
		{"host ignores case", nil, only(config.Rule{Host: "Shop.Example.COM"}), req("/", host("SHOP.example.com")), hit},
		{"host ignores port", nil, only(config.Rule{Host: "shop.example.com"}), req("/", host("shop.example.com:8443")), hit},
		{"host ignores trailing dot", nil, only(config.Rule{Host: "shop.example.com"}), req("/", host("shop.example.com.")), hit},
		{"host suffix is not a match", nil, only(config.Rule{Host: "example.com"}), req("/", host("evilexample.com")), noMatch},
		{"host wildcard one label", nil, only(config.Rule{Host: "*.example.com"}), req("/", host("shop.example.com")), hit},
		{"host wildcard two labels", nil, only(config.Rule{Host: "*.example.com"}), req("/", host("a.b.example.com:443")), hit},
		{"host wildcard not apex", nil, only(config.Rule{Host: "*.example.com"}), req("/", host("example.com")), noMatch},
		{"host wildcard not a longer label", nil, only(config.Rule{Host: "*.example.com"}), req("/", host("shopexample.com")), noMatch},
		{"host wildcard empty label", nil, only(config.Rule{Host: "*.example.com"}), req("/", host(".example.com")), noMatch},
		{"host ipv6 literal", nil, only(config.Rule{Host: "shop.example.com"}), req("/", host("[::1]:8080")), noMatch},

		// methods
		{"method in list", nil, only(config.Rule{Methods: []string{"POST", "PUT"}}), req("/", method("PUT")), hit},
		{"method not in list", nil, only(config.Rule{Methods: []string{"POST", "PUT"}}), req("/"), noMatch},
		{"method ignores case", nil, only(config.Rule{Methods: []string{"post"}}), req("/", method("Post")), hit},

		// header
		{"header present", nil, only(config.Rule{Header: &config.NameValue{Name: "X-Preview"}}),
			req("/", headers(map[string]string{"X-Preview": "anything"})), hit},
		{"header absent", nil, only(config.Rule{Header: &config.NameValue{Name: "X-Preview"}}), req("/"), noMatch},
		{"header empty is absent", nil, only(config.Rule{Header: &config.NameValue{Name: "X-Preview"}}),
			req("/", headers(map[string]string{"X-Preview": ""})), noMatch},
		{"header name lower-case in config", nil, only(config.Rule{Header: &config.NameValue{Name: "x-preview"}}),
			req("/", func(r *gate.Request) {
				// Strict about the canonical form, as http.Header is.
				r.Header = func(name string) string {
					if name == "X-Preview" {
						return "1"
					}
					return ""
				}
			}), hit},
		{"header equal", nil, only(config.Rule{Header: &config.NameValue{Name: "X-Preview", Value: "1"}}),
			req("/", headers(map[string]string{"X-Preview": "1"})), hit},
		{"header not equal", nil, only(config.Rule{Header: &config.NameValue{Name: "X-Preview", Value: "1"}}),
			req("/", headers(map[string]string{"X-Preview": "11"})), noMatch},
		{"header regex", nil, only(config.Rule{Header: &config.NameValue{Name: "Accept", Regex: "^application/json"}}),
			req("/", headers(map[string]string{"Accept": "application/json; q=1"})), hit},
		{"header regex no match", nil, only(config.Rule{Header: &config.NameValue{Name: "Accept", Regex: "^application/json"}}),
			req("/", headers(map[string]string{"Accept": "text/html, application/json"})), noMatch},
		{"header with nil func", nil, only(config.Rule{Header: &config.NameValue{Name: "X-Preview"}}),
			gate.Request{Path: "/"}, noMatch},

		// cookie
		{"cookie present", nil, only(config.Rule{Cookie: &config.NameValue{Name: "vip"}}),
			req("/", cookies(map[string]string{"vip": ""})), hit},
		{"cookie absent", nil, only(config.Rule{Cookie: &config.NameValue{Name: "vip"}}),
			req("/", cookies(map[string]string{"other": "1"})), noMatch},
		{"cookie name is case-sensitive", nil, only(config.Rule{Cookie: &config.NameValue{Name: "vip"}}),
			req("/", cookies(map[string]string{"VIP": "1"})), noMatch},
		{"cookie equal", nil, only(config.Rule{Cookie: &config.NameValue{Name: "vip", Value: "gold"}}),
			req("/", cookies(map[string]string{"vip": "gold"})), hit},
		{"cookie not equal", nil, only(config.Rule{Cookie: &config.NameValue{Name: "vip", Value: "gold"}}),
			req("/", cookies(map[string]string{"vip": "silver"})), noMatch},
		{"cookie regex", nil, only(config.Rule{Cookie: &config.NameValue{Name: "vip", Regex: "^[0-9]{4}$"}}),
			req("/", cookies(map[string]string{"vip": "2024"})), hit},
		{"cookie regex no match", nil, only(config.Rule{Cookie: &config.NameValue{Name: "vip", Regex: "^[0-9]{4}$"}}),
			req("/", cookies(map[string]string{"vip": "20245"})), noMatch},
		{"cookie with nil func", nil, only(config.Rule{Cookie: &config.NameValue{Name: "vip"}}), req("/"), noMatch},

		// user agent
		{"user agent regex", nil, only(config.Rule{UserAgent: `curl/\d`}), req("/", ua("curl/8.5.0")), hit},
		{"user agent regex ignores case", nil, only(config.Rule{UserAgent: `curl/\d`}), req("/", ua("CURL/8.5.0")), hit},
		{"user agent regex no match", nil, only(config.Rule{UserAgent: `curl/\d`}), req("/"), noMatch},
		{"user agent good bots", nil, only(config.Rule{UserAgent: "good_bots"}), req("/", ua(googlebotUA)), hit},
		{"user agent good bots browser", nil, only(config.Rule{UserAgent: "good_bots"}), req("/"), noMatch},
		{"user agent empty", nil, only(config.Rule{UserAgent: "good_bots"}), req("/", ua("")), noMatch},
		{"user agent rule refused on dynamic path", []string{"/checkout"}, only(config.Rule{UserAgent: `curl/\d`}),
			req("/checkout/pay", ua("curl/8.5.0")), noMatch},
		{"dynamic path ignores case", []string{"/checkout"}, only(config.Rule{UserAgent: "good_bots"}),
			req("/CheckOut", ua(googlebotUA)), noMatch},
		{"dynamic path is a string prefix", []string{"/login"}, only(config.Rule{UserAgent: "good_bots"}),
			req("/login.php", ua(googlebotUA)), noMatch},
		{"dynamic path decoded", []string{"/login"}, only(config.Rule{UserAgent: "good_bots"}),
			req("/%6Cogin", ua(googlebotUA)), noMatch},
		{"other rules apply on dynamic paths", []string{"/checkout"}, only(config.Rule{PathPrefix: "/checkout"}),
			req("/checkout", ua(googlebotUA)), hit},

		// AND within a rule
		{"and: all match", nil, only(config.Rule{PathPrefix: "/api/", Methods: []string{"POST"}, Host: "*.example.com",
			Header: &config.NameValue{Name: "X-Requested-With", Value: "XMLHttpRequest"}}),
			req("/api/cart", method("POST"), headers(map[string]string{"X-Requested-With": "XMLHttpRequest"})), hit},
		{"and: method fails", nil, only(config.Rule{PathPrefix: "/api/", Methods: []string{"POST"}, Host: "*.example.com",
			Header: &config.NameValue{Name: "X-Requested-With", Value: "XMLHttpRequest"}}),
			req("/api/cart", headers(map[string]string{"X-Requested-With": "XMLHttpRequest"})), noMatch},
		{"and: header fails", nil, only(config.Rule{PathPrefix: "/api/", Methods: []string{"POST"}, Host: "*.example.com",
			Header: &config.NameValue{Name: "X-Requested-With", Value: "XMLHttpRequest"}}),
			req("/api/cart", method("POST")), noMatch},
		{"and: path fails", nil, only(config.Rule{PathPrefix: "/api/", Methods: []string{"POST"}, Host: "*.example.com",
			Header: &config.NameValue{Name: "X-Requested-With", Value: "XMLHttpRequest"}}),
			req("/cart", method("POST"), headers(map[string]string{"X-Requested-With": "XMLHttpRequest"})), noMatch},
		{"and: path and regex", nil, only(config.Rule{PathPrefix: "/docs/", PathRegex: `\.pdf$`}), req("/docs/a.pdf"), hit},
		{"and: path and regex fails", nil, only(config.Rule{PathPrefix: "/docs/", PathRegex: `\.pdf$`}), req("/files/a.pdf"), noMatch},
		{"and: user agent and path", nil, only(config.Rule{PathPrefix: "/feed", UserAgent: "good_bots"}), req("/feed.xml", ua(googlebotUA)), hit},
		{"and: cookie and host", nil, only(config.Rule{Host: "shop.example.com", Cookie: &config.NameValue{Name: "vip"}}),
			req("/", host("blog.example.com"), cookies(map[string]string{"vip": "1"})), noMatch},

		// order and actions
		{"first match wins", nil, []config.Rule{
			{PathPrefix: "/a/", Action: "block"},
			{PathPrefix: "/a/b/", Action: "bypass"},
			catchAll,
		}, req("/a/b/c"), block(0)},
		{"later rule when earlier fails", nil, []config.Rule{
			{PathPrefix: "/a/b/", Action: "bypass"},
			{PathPrefix: "/a/", Action: "block"},
			catchAll,
		}, req("/a/b/c"), bypass(0)},
		{"falls through to catch-all", nil, []config.Rule{
			{PathPrefix: "/a/", Action: "block"},
			catchAll,
		}, req("/b"), queue("launch", 1)},
		{"no match bypasses", nil, []config.Rule{q("launch", config.Rule{PathPrefix: "/shop/"})}, req("/blog/"), noMatch},
		{"block", nil, []config.Rule{{PathPrefix: "/wp-admin", Action: "block"}, catchAll}, req("/wp-admin/x.php"), block(0)},
		{"several rooms: first", nil, []config.Rule{
			q("checkout", config.Rule{PathPrefix: "/checkout"}),
			q("launch", config.Rule{PathPrefix: "/drops/"}),
		}, req("/checkout/pay"), queue("checkout", 0)},
		{"several rooms: second", nil, []config.Rule{
			q("checkout", config.Rule{PathPrefix: "/checkout"}),
			q("launch", config.Rule{PathPrefix: "/drops/"}),
		}, req("/drops/sneaker"), queue("launch", 1)},
		{"several rooms: neither", nil, []config.Rule{
			q("checkout", config.Rule{PathPrefix: "/checkout"}),
			q("launch", config.Rule{PathPrefix: "/drops/"}),
		}, req("/about"), noMatch},

		// the design document's rules
		{"design: static bypass", designDynamic, designRules, req("/static/app.css"), bypass(0)},
		{"design: store locator exception", designDynamic, designRules, req("/stores/locator?lat=1&lng=2"), bypass(1)},
		{"design: store page queues", designDynamic, designRules, req("/stores/berlin"), queue("launch", 3)},
		{"design: good bot on products", designDynamic, designRules, req("/products/shoe", ua(googlebotUA)), bypass(2)},
		{"design: good bot on checkout", designDynamic, designRules, req("/checkout/pay", ua(googlebotUA)), queue("launch", 3)},
		{"design: spoofed bot on login", designDynamic, designRules,
			req("/login?next=/checkout", ua("Mozilla/5.0 (compatible; bingbot/2.0)")), queue("launch", 3)},
		{"design: spoofed bot on account", designDynamic, designRules, req("/account", ua("Slackbot-LinkExpanding 1.0")), queue("launch", 3)},
		{"design: browser on products", designDynamic, designRules, req("/products/shoe"), queue("launch", 3)},

		// paths that must never bypass
		{"traversal", designDynamic, designRules, req("/static/../checkout"), queue("launch", 3)},
		{"traversal encoded dots", designDynamic, designRules, req("/static/%2e%2e/checkout"), queue("launch", 3)},
		{"traversal encoded upper-case", designDynamic, designRules, req("/static/%2E%2E/checkout"), queue("launch", 3)},
		{"traversal encoded slashes", designDynamic, designRules, req("/static%2F..%2Fcheckout"), queue("launch", 3)},
		{"traversal encoded slash lower-case", designDynamic, designRules, req("/static%2f..%2fcheckout"), queue("launch", 3)},
		{"traversal trailing", designDynamic, designRules, req("/static/.."), queue("launch", 3)},
		{"traversal with parameter", designDynamic, designRules, req("/static/..;/checkout"), queue("launch", 3)},
		{"traversal backslash", designDynamic, designRules, req(`/static\..\checkout`), queue("launch", 3)},
		{"traversal encoded backslash", designDynamic, designRules, req("/static%5C..%5Ccheckout"), queue("launch", 3)},
		{"dot segment", designDynamic, designRules, req("/static/./a.js"), queue("launch", 3)},
		{"empty segment", designDynamic, designRules, req("/static//a.js"), queue("launch", 3)},
		{"parameter-only segment", designDynamic, designRules, req("/static/;x/a.js"), queue("launch", 3)},
		{"parameter on a name", designDynamic, designRules, req("/static/a.js;jsessionid=1"), queue("launch", 3)},
		{"parameter on a directory", designDynamic, designRules, req("/static;x/a.js"), queue("launch", 3)},
		{"encoded parameter", designDynamic, designRules, req("/static/a.js%3Bx"), queue("launch", 3)},
		{"fragment", designDynamic, designRules, req("/static/a.js#x"), queue("launch", 3)},
		{"empty segment then traversal", designDynamic, designRules, req("/static//../app/"), queue("launch", 3)},
		{"leading double slash", designDynamic, designRules, req("//evil.example/static/a.js"), queue("launch", 3)},
		{"leading slash backslash", designDynamic, designRules, req(`/\evil.example/static/a.js`), queue("launch", 3)},
		{"encoded leading double slash", designDynamic, designRules, req("/%2F%2Fevil.example/static/a.js"), queue("launch", 3)},
		{"double encoding", designDynamic, designRules, req("/static/%252e%252e/checkout"), queue("launch", 3)},
		{"invalid escape", designDynamic, designRules, req("/static/%zz"), queue("launch", 3)},
		{"truncated escape", designDynamic, designRules, req("/static/a%2"), queue("launch", 3)},
		{"encoded NUL", designDynamic, designRules, req("/static/a.js%00.html"), queue("launch", 3)},
		{"no leading slash", designDynamic, designRules, req("static/a.js"), queue("launch", 3)},
		{"empty path", designDynamic, designRules, req(""), queue("launch", 3)},
		{"absolute form", designDynamic, designRules, req("http://shop.example.com/static/a.js"), queue("launch", 3)},
		{"regex exception with traversal", designDynamic, designRules, req("/stores/locator/../../checkout"), queue("launch", 3)},
		{"good bot with traversal", designDynamic, designRules, req("/products/../checkout", ua(googlebotUA)), queue("launch", 3)},
		{"good bot with double slash", designDynamic, designRules, req("//checkout/pay", ua(googlebotUA)), queue("launch", 3)},
		{"good bot with absolute form", designDynamic, designRules, req("https://shop.example.com/checkout", ua(googlebotUA)), queue("launch", 3)},
		{"encoded letter is canonical", designDynamic, designRules, req("/static/a%2Ejs"), bypass(0)},
		{"encoded percent is canonical", designDynamic, designRules, req("/static/100%25.png"), bypass(0)},
		{"dots in a name are canonical", designDynamic, designRules, req("/static/...a/b..c"), bypass(0)},

		// non-canonical paths still meet queue and block rules in either form
		{"traversal meets a block rule", nil, []config.Rule{
			{PathPrefix: "/static/", Action: "bypass"},
			{PathPrefix: "/admin/", Action: "block"},
			catchAll,
		}, req("/static/../admin/users"), block(1)},
		{"traversal meets a room", nil, []config.Rule{
			{PathPrefix: "/static/", Action: "bypass"},
			q("checkout", config.Rule{PathPrefix: "/checkout"}),
		}, req("/static/%2e%2e/checkout/pay"), queue("checkout", 1)},
		{"traversal as written meets a room", nil, []config.Rule{
			{PathPrefix: "/static/", Action: "bypass"},
			q("static", config.Rule{PathPrefix: "/static/"}),
		}, req("/static/../checkout"), queue("static", 1)},
		{"traversal matching nothing", nil, []config.Rule{
			{PathPrefix: "/static/", Action: "bypass"},
			q("checkout", config.Rule{PathPrefix: "/checkout"}),
		}, req("/static/../about"), noMatch},
		{"a parameter does not hide a blocked directory", nil, []config.Rule{
			{PathPrefix: "/admin/", Action: "block"},
			catchAll,
		}, req("/admin;x/users"), block(0)},
		{"a parameter does not hide an exact queue path", nil, []config.Rule{
			q("checkout", config.Rule{Path: "/cart"}),
		}, req("/cart;jsessionid=1"), queue("checkout", 0)},
		{"a fragment does not hide a room from a regex bypass", nil, []config.Rule{
			{PathRegex: `\.png$`, Action: "bypass"},
			q("checkout", config.Rule{Path: "/checkout"}),
		}, req("/checkout#.png"), queue("checkout", 1)},
		{"bypass rule without a path skipped too", nil, []config.Rule{
			{Host: "shop.example.com", Action: "bypass"},
			catchAll,
		}, req("/a/../b"), queue("launch", 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rs := compile(t, tt.dynamic, tt.rules...)
			if got := rs.Decide(tt.req); got != tt.want {
				t.Errorf("Decide(%q) = %+v, want %+v", tt.req.Path, got, tt.want)
			}
		})
	}
}

func TestCompile(t *testing.T) {
	t.Parallel()
	if rs, err := gate.Compile(nil); err == nil || rs != nil {
		t.Errorf("Compile(nil) = %v, %v; want an error", rs, err)
	}

	g := &config.Gate{
		DynamicPaths: []string{"login"},
		Rules: []config.Rule{
			{PathRegex: "(", Action: "bypass"},
			{UserAgent: "good_bots", Action: "bypass", Room: "launch"},
		},
	}
	_, err := gate.Compile(g)
	want := []string{
		`gate.dynamic_paths[0]: must start with /, got "login"`,
		"gate.rules[0].path_regex: invalid regular expression: missing closing ): `(`",
		"gate.rules[1].room: only allowed with action queue, got action bypass",
		"gate.rules: no rule queues visitors",
	}
	if err == nil || !reflect.DeepEqual(strings.Split(err.Error(), "\n"), want) {
		t.Errorf("Compile() error = %v\nwant lines %q", err, want)
	}

	// Defaults are applied to a copy, and rooms are not checked here.
	g = &config.Gate{Rules: []config.Rule{{PathPrefix: "/", Action: "queue", Room: "not-checked-here"}}}
	if _, err := gate.Compile(g); err != nil {
		t.Fatalf("Compile() = %v", err)
	}
	if g.Cookie != (config.GateCookie{}) {
		t.Errorf("Compile modified its argument: cookie = %+v", g.Cookie)
	}
}

func TestActionString(t *testing.T) {
	t.Parallel()
	for a, want := range map[gate.Action]string{
		gate.ActionBypass: "bypass", gate.ActionQueue: "queue", gate.ActionBlock: "block", gate.Action(7): "Action(7)",
	} {
		if got := a.String(); got != want {
			t.Errorf("Action(%d).String() = %q, want %q", int(a), got, want)
		}
	}
	if (gate.Decision{}).Action != gate.ActionBypass {
		t.Error("zero Action is not ActionBypass")
	}
}

func TestIsGoodBot(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ua   string
		want bool
	}{
		{googlebotUA, true},
		{"Googlebot-Image/1.0", true},
		{"Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", true},
		{"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0 Safari/537.36", true},
		{"DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)", true},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)", true},
		{"Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)", true},
		{"Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)", true},
		{"Mozilla/5.0 (compatible; Yahoo! Slurp; http://help.yahoo.com/help/us/ysearch/slurp)", true},
		{"facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", true},
		{"Twitterbot/1.0", true},
		{"LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)", true},
		{"Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", true},
		{"Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)", true},
		{"GOOGLEBOT", true},
		{"googlebot", true},
		{strings.Repeat("x", 600) + " Googlebot/2.1", true}, // longer than the stack buffer
		{strings.Repeat("x", 600), false},
		{browserUA, false},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", false},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0", false},
		{"curl/8.5.0", false},
		{"Google", false},
		{"", false},
	} {
		if got := gate.IsGoodBot(tc.ua); got != tc.want {
			t.Errorf("IsGoodBot(%.60q) = %v, want %v", tc.ua, got, tc.want)
		}
	}
}

// sharedTable is testdata/rules.json, the rule cases every implementation
// of the matcher (this one and the edge connectors') must pass.
type sharedTable struct {
	Comment string       `json:"comment"`
	Rooms   []string     `json:"rooms"`
	Gate    *config.Gate `json:"gate"`
	Cases   []struct {
		Name      string            `json:"name"`
		Host      string            `json:"host"`
		Method    string            `json:"method"`
		Path      string            `json:"path"`
		UserAgent string            `json:"user_agent"`
		Headers   map[string]string `json:"headers"`
		Cookies   map[string]string `json:"cookies"`
		Want      struct {
			Action string `json:"action"`
			Room   string `json:"room"`
		} `json:"want"`
	} `json:"cases"`
}

func loadSharedTable(t testing.TB) *sharedTable {
	t.Helper()
	data, err := os.ReadFile("testdata/rules.json")
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields() // a misspelt key must not silently drop a matcher
	var tab sharedTable
	if err := dec.Decode(&tab); err != nil {
		t.Fatalf("testdata/rules.json: %v", err)
	}
	return &tab
}

// TestSharedTable runs testdata/rules.json. Its gate is validated as part
// of a whole Config, so that its rooms are checked too.
func TestSharedTable(t *testing.T) {
	t.Parallel()
	tab := loadSharedTable(t)
	if len(tab.Cases) < 30 {
		t.Errorf("shared table has %d cases, want at least 30", len(tab.Cases))
	}
	c := &config.Config{
		Issuer:  "https://shop.example.com/_anteroom",
		Secrets: config.Secrets{CookieKeys: []string{strings.Repeat("k", 32)}},
		Gate:    tab.Gate,
	}
	for _, id := range tab.Rooms {
		c.Rooms = append(c.Rooms, config.Room{ID: id})
	}
	c.Clients = []config.Client{{ID: "gate-test", RedirectURIs: []string{"https://shop.example.com/cb"}, Room: tab.Rooms[0]}}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("testdata/rules.json does not validate:\n%v", err)
	}
	rs, err := gate.Compile(tab.Gate)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, tc := range tab.Cases {
		if names[tc.Name] {
			t.Errorf("duplicate case name %q", tc.Name)
		}
		names[tc.Name] = true
		r := gate.Request{Host: tc.Host, Method: tc.Method, Path: tc.Path, UserAgent: tc.UserAgent}
		if r.Method == "" {
			r.Method = "GET"
		}
		headers(tc.Headers)(&r)
		cookies(tc.Cookies)(&r)
		got := rs.Decide(r)
		if got.Action.String() != tc.Want.Action || got.Room != tc.Want.Room {
			t.Errorf("%s: Decide(%s %s%s) = %s %q (rule %d), want %s %q",
				tc.Name, r.Method, tc.Host, tc.Path, got.Action, got.Room, got.Rule, tc.Want.Action, tc.Want.Room)
		}
	}
}

// TestDecideAllocations holds Decide to no allocations for the common
// case: a path without escapes.
func TestDecideAllocations(t *testing.T) {
	rs := compile(t, designDynamic, designRules...)
	reqs := []gate.Request{
		req("/products/red-shoe?colour=red"),
		req("/static/app.js"),
		req("/products/red-shoe", ua(googlebotUA)),
		req("/checkout/pay", ua(googlebotUA)),
	}
	for _, r := range reqs {
		if n := testing.AllocsPerRun(100, func() { rs.Decide(r) }); n > 0 {
			t.Errorf("Decide(%q, %q) allocates %.0f times, want 0", r.Path, r.UserAgent, n)
		}
	}
}

func BenchmarkDecide(b *testing.B) {
	rs := compile(b, designDynamic, designRules...)
	cookieRules := append([]config.Rule{
		{Cookie: &config.NameValue{Name: "vip", Regex: "^[0-9a-f]{32}$"}, Host: "*.example.com", Action: "queue", Room: "vip"},
		{Header: &config.NameValue{Name: "X-Preview", Value: "1"}, Methods: []string{"GET", "HEAD"}, Action: "bypass"},
	}, designRules...)
	rsMany := compile(b, designDynamic, cookieRules...)
	for _, bc := range []struct {
		name string
		rs   *gate.Rules
		req  gate.Request
	}{
		{"browser/product", rs, req("/products/red-shoe?colour=red")},
		{"browser/static", rs, req("/static/js/app.3f9a.js")},
		{"browser/locator", rs, req("/stores/locator?zip=10001")},
		{"goodbot/product", rs, req("/products/red-shoe", ua(googlebotUA))},
		{"goodbot/checkout", rs, req("/checkout/pay", ua(googlebotUA))},
		{"escaped", rs, req("/products/red%20shoe")},
		{"traversal", rs, req("/static/../checkout/pay")},
		{"header-cookie", rsMany, req("/products/red-shoe",
			headers(map[string]string{"X-Preview": "0"}), cookies(map[string]string{"vip": "nope"}))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bc.rs.Decide(bc.req)
			}
		})
	}
}

// FuzzDecide checks that Decide never panics, that its decision is
// consistent with the rules, and the property user-agent rules exist for:
// under a dynamic path, a good bot's user agent gets exactly the decision
// a browser's does.
func FuzzDecide(f *testing.F) {
	tab := loadSharedTable(f)
	for _, tc := range tab.Cases {
		f.Add(tc.Host, tc.Method, tc.Path, tc.UserAgent, "")
	}
	f.Add("shop.example.com", "GET", "/static/%2e%2e/checkout", googlebotUA, "/pay")
	f.Add("", "", "", "", "")
	f.Add("[::1", "get", "%", "\x00", "/..;/")

	rs, err := gate.Compile(tab.Gate)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, host, method, path, userAgent, suffix string) {
		r := gate.Request{Host: host, Method: method, Path: path, UserAgent: userAgent}
		headers(map[string]string{"Accept": userAgent, "X-Preview-Token": suffix})(&r)
		cookies(map[string]string{"early_access": suffix})(&r)
		d := rs.Decide(r)
		checkDecision(t, tab.Gate, r, d)
		if again := rs.Decide(r); again != d {
			t.Fatalf("Decide(%q) = %+v, then %+v", r.Path, d, again)
		}
		// A path that reaches a queue or a block once a backend has
		// normalised it is never waved through as written.
		if clean, changed := normalise(path); changed && d.Action == gate.ActionBypass {
			cr := r
			// clean is decoded already: escaped again where Decide would
			// otherwise decode it a second time or cut it at ? or #.
			cr.Path = strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23").Replace(clean)
			if cd := rs.Decide(cr); cd.Action != gate.ActionBypass {
				t.Fatalf("Decide(%q) = %+v, but its normalised form %q gets %+v", path, d, clean, cd)
			}
		}

		// Under each dynamic path, in any letter case, with anything
		// after it: the user agent must make no difference.
		for _, dyn := range tab.Gate.DynamicPaths {
			for _, prefix := range []string{dyn, strings.ToUpper(dyn)} {
				r.Path = prefix + suffix
				r.UserAgent = googlebotUA
				bot := rs.Decide(r)
				r.UserAgent = browserUA
				browser := rs.Decide(r)
				r.UserAgent = userAgent
				other := rs.Decide(r)
				if bot != browser || other != browser {
					t.Fatalf("path %q: good bot got %+v, fuzzed user agent %q got %+v, browser got %+v",
						r.Path, bot, userAgent, other, browser)
				}
				checkDecision(t, tab.Gate, r, bot)
			}
		}
	})
}

// checkDecision checks that d is what rule d.Rule of g says, and that a
// path with a dot segment was not let through by a rule.
func checkDecision(t *testing.T, g *config.Gate, r gate.Request, d gate.Decision) {
	t.Helper()
	if d.Rule == -1 {
		if d != noMatch {
			t.Fatalf("Decide(%+v) = %+v: no rule but not a plain bypass", r, d)
		}
		return
	}
	if d.Rule < 0 || d.Rule >= len(g.Rules) {
		t.Fatalf("Decide(%+v) = %+v: rule index out of range", r, d)
	}
	cr := g.Rules[d.Rule]
	if d.Action.String() != cr.Action || d.Room != cr.Room {
		t.Fatalf("Decide(%+v) = %+v, but rule %d is %+v", r, d, d.Rule, cr)
	}
	p, _, _ := strings.Cut(r.Path, "?")
	if d.Action == gate.ActionBypass && (strings.Contains(p, "/../") || strings.Contains(p, "/./") ||
		strings.Contains(strings.ToLower(p), "%2f") || strings.Contains(p, "//") ||
		strings.ContainsAny(p, `;#\`) || strings.Contains(strings.ToLower(p), "%3b")) {
		t.Fatalf("Decide(%q) = %+v: a non-canonical path matched a bypass rule", r.Path, d)
	}
}

// normalise is what a lenient backend may make of a request target,
// written independently of the gate's own normalisation: the query goes,
// a fragment goes, the path is percent-decoded once (unless an escape is
// invalid), a backslash is a separator, every segment's ;parameters are
// ignored, and dot and empty segments are resolved. changed reports
// whether that gave another path.
func normalise(target string) (clean string, changed bool) {
	p, _, _ := strings.Cut(target, "?")
	p, _, _ = strings.Cut(p, "#")
	if i := strings.Index(p, "://"); i >= 0 && !strings.HasPrefix(p, "/") {
		rest := p[i+3:]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			p = rest[j:]
		} else {
			p = "/"
		}
	}
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	if u, err := url.PathUnescape(p); err == nil {
		p = u
	}
	segs := strings.Split(strings.ReplaceAll(p, `\`, "/"), "/")
	for i, s := range segs {
		segs[i], _, _ = strings.Cut(s, ";")
	}
	joined := strings.Join(segs, "/")
	clean = path.Clean(joined)
	if strings.HasSuffix(joined, "/") || strings.HasSuffix(joined, "/.") || strings.HasSuffix(joined, "/..") {
		if clean != "/" {
			clean += "/"
		}
	}
	plain, _, _ := strings.Cut(target, "?")
	return clean, clean != plain
}
