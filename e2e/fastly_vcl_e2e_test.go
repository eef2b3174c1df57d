package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anteroom/anteroom/config"
)

// falcoBinary returns falco (github.com/ysugimoto/falco, a Fastly VCL
// linter, test runner and interpreter) from ANTEROOM_FALCO or PATH, or
// skips the test without it unless ANTEROOM_TEST_FALCO=required.
func falcoBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("ANTEROOM_FALCO"); p != "" {
		return p
	}
	if p, err := exec.LookPath("falco"); err == nil {
		return p
	}
	if os.Getenv("ANTEROOM_TEST_FALCO") == "required" {
		t.Fatal("falco is not installed (ANTEROOM_TEST_FALCO=required; .ci/run builds it)")
	}
	t.Skip("falco is not installed (set ANTEROOM_FALCO, or ANTEROOM_TEST_FALCO=required to fail instead)")
	return ""
}

// vclLit writes s as a VCL long string, or reports that it cannot.
func vclLit(s string) (string, bool) {
	if strings.Contains(s, `"}`) || strings.ContainsAny(s, "\x00\r\n") {
		return "", false
	}
	for _, c := range []byte(s) {
		if c < 0x20 || c == 0x7f {
			return "", false
		}
	}
	return `{"` + s + `"}`, true
}

// vclSuite is a falco test directory: the generated anteroom.vcl, a main
// VCL that includes it with the keys in anteroom_keys, and test files.
type vclSuite struct {
	dir string
}

func newVCLSuite(t *testing.T, node string, config any, keys []fastlyDictionaryItem) vclSuite {
	t.Helper()
	dir := t.TempDir()
	cfg, _ := json.Marshal(config)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "../deploy/edge/fastly-vcl/generate.mjs", filepath.Join(dir, "config.json"))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("generate.mjs: %v\n%s", err, stderrOf(err))
	}
	if err := os.WriteFile(filepath.Join(dir, "anteroom.vcl"), out, 0o644); err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&table, "  %q: {\"%s\"},\n", k.Key, k.Value)
	}
	main := `backend F_anteroom {
  .host = "127.0.0.1";
  .port = "1";
}
backend F_origin {
  .host = "127.0.0.1";
  .port = "2";
}
table anteroom_keys {
` + table.String() + `}
include "anteroom";
sub vcl_recv {
#FASTLY recv
  set req.backend = F_origin;
  call anteroom_recv;
  return(lookup);
}
sub vcl_deliver {
#FASTLY deliver
  call anteroom_deliver;
  return(deliver);
}
sub vcl_error {
#FASTLY error
  call anteroom_error;
  return(deliver);
}
`
	if err := os.WriteFile(filepath.Join(dir, "main.vcl"), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	return vclSuite{dir: dir}
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

// run runs falco with args in the suite's directory and fails the test,
// with its output, when falco does not exit 0.
func (s vclSuite) run(t *testing.T, falco string, args ...string) string {
	t.Helper()
	cmd := exec.Command(falco, args...)
	cmd.Dir = s.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("falco %s: %v\n%s", strings.Join(args, " "), err, tail(string(out), 2000))
	}
	return string(out)
}

// vclKnownDifferences are the shared rule cases the VCL cannot pass in
// falco, each with the reason; they run with @skip and the report names
// them, so that a change in the count shows.
var vclKnownDifferences = map[string]string{
	"an escaped UTF-8 character is one character to a regex":             "PCRE reads bytes: . is one byte, not one UTF-8 character",
	"a raw UTF-8 character is one character to a regex":                  "PCRE reads bytes: . is one byte, not one UTF-8 character",
	"an invalid byte is one character to a regex":                        "falco's urldecode fails on a byte that is not UTF-8",
	"a truncated UTF-8 sequence is a character per byte":                 "falco's urldecode fails on a byte that is not UTF-8",
	"an invalid byte reads as U+FFFD":                                    "falco's urldecode fails on a byte that is not UTF-8",
	"U+FFFD itself":                                                      "falco's urldecode fails on a byte that is not UTF-8",
	"invalid escape never bypasses":                                      "falco refuses to set req.url with an invalid escape",
	"googlebot with a double slash":                                      "falco parses req.url as a URL: //host/a becomes /a; Fastly keeps it",
	"fragment never bypasses":                                            "falco parses req.url as a URL and drops a raw # and what follows",
	"leading double slash never bypasses (another host to a URL parser)": "falco parses req.url as a URL: //host/a becomes /a; Fastly keeps it",
}

// TestFastlyVCLRules generates the Fastly VCL from the shared rule cases'
// gate (gate/testdata/rules.json), lints it with falco and runs one falco
// unit test per case through vcl_recv: bypass passes, block is the 403
// error, queue is the redirect into the case's room.
func TestFastlyVCLRules(t *testing.T) {
	falco := falcoBinary(t)
	node := nodeBinary(t)
	raw, err := os.ReadFile("../gate/testdata/rules.json")
	if err != nil {
		t.Fatal(err)
	}
	var tab struct {
		Gate  json.RawMessage `json:"gate"`
		Cases []struct {
			Name      string            `json:"name"`
			Host      string            `json:"host"`
			Method    string            `json:"method"`
			Path      string            `json:"path"`
			UserAgent string            `json:"user_agent"`
			Headers   map[string]string `json:"headers"`
			Cookies   map[string]string `json:"cookies"`
			Want      struct{ Action, Room string }
		} `json:"cases"`
	}
	if err := json.Unmarshal(raw, &tab); err != nil {
		t.Fatal(err)
	}
	s := newVCLSuite(t, node, map[string]any{"issuer": "https://shop.example.com/_anteroom", "gate": tab.Gate}, nil)
	s.run(t, falco, "lint", "-I", ".", "main.vcl")

	var b strings.Builder
	written, skipped := 0, []string{}
	for i, c := range tab.Cases {
		var lines []string
		ok := true
		set := func(v, val string) {
			l, good := vclLit(val)
			ok = ok && good
			lines = append(lines, fmt.Sprintf("  set %s = %s;", v, l))
		}
		set("req.url", c.Path)
		set("req.http.Host", c.Host)
		if c.Method != "" {
			set("req.method", c.Method)
		}
		if c.UserAgent != "" {
			set("req.http.User-Agent", c.UserAgent)
		}
		for name, v := range c.Headers {
			set("req.http."+name, v)
		}
		if len(c.Cookies) > 0 {
			var parts []string
			for name, v := range c.Cookies {
				parts = append(parts, name+"="+v)
			}
			set("req.http.Cookie", strings.Join(parts, "; "))
		}
		if !ok {
			skipped = append(skipped, c.Name+": not writable as a VCL string")
			continue
		}
		lines = append(lines, `  testing.call_subroutine("vcl_recv");`)
		switch c.Want.Action {
		case "bypass":
			lines = append(lines, `  assert.not_error();`)
		case "block":
			lines = append(lines, `  assert.error(683);`)
		case "queue":
			lines = append(lines, fmt.Sprintf(`  assert.equal(req.http.X-Anteroom-Queue, %q);`, c.Want.Room))
		}
		name := strings.NewReplacer("\n", " ", "*/", "").Replace(c.Name)
		skip := ""
		if why, ok := vclKnownDifferences[c.Name]; ok {
			skip = "// @skip " + why + "\n"
			skipped = append(skipped, c.Name+": "+why)
		}
		fmt.Fprintf(&b, "%s// @scope: recv\n// @suite: %s\nsub test_rule_%d {\n%s\n}\n\n", skip, name, i, strings.Join(lines, "\n"))
		written++
	}
	if err := os.WriteFile(filepath.Join(s.dir, "rules.test.vcl"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := s.run(t, falco, "test", "-I", ".", "main.vcl")
	t.Logf("%d rule cases in falco, %d skipped: %q\n%s", written, len(skipped), skipped, tail(out, 5))
	if written < len(tab.Cases)*3/4 {
		t.Fatalf("only %d of %d cases could be written", written, len(tab.Cases))
	}
}

// TestFastlyVCLTokens runs the VCL on the real RS256 and ES256 session
// tokens of the edge fixture (deploy/edge/testdata/fixture.json, written
// by TestEdgeConnectors from real Anteroom instances) in falco, with the
// keys as `anteroom edge fastly-keys` writes them: the valid tokens pass
// with the visitor's headers, every forged variant goes to the queue
// (RFC 7519 §4.1.4 exp, §4.1.5 nbf, §4.1.1 iss, §4.1.3 aud; RFC 7515
// §4.1.1 alg, §4.1.11 crit), and the start URL is byte for byte
// Anteroom's own.
func TestFastlyVCLTokens(t *testing.T) {
	falco := falcoBinary(t)
	node := nodeBinary(t)
	raw, err := os.ReadFile(edgeFixturePath)
	if err != nil {
		t.Fatal(err)
	}
	var fx edgeFixture
	if err := json.Unmarshal(raw, &fx); err != nil {
		t.Fatal(err)
	}
	for _, in := range fx.Instances {
		t.Run(in.Alg, func(t *testing.T) {
			keys := fastlyKeyItems(t, in.JWKS)
			// launch fails open when no key fits; checkout fails closed.
			cfg := map[string]any{"issuer": in.Issuer, "gate": fx.Gate, "rooms": map[string]any{"launch": map[string]string{"on_error": "fail_open"}}}
			s := newVCLSuite(t, node, cfg, keys)
			s.run(t, falco, "lint", "-I", ".", "main.vcl")
			u, _ := url.Parse(in.Issuer)
			var b strings.Builder
			test := func(name, body string) {
				fmt.Fprintf(&b, "// @scope: recv\n// @suite: %s %s\nsub test_%d {\n  testing.fixed_time(%d);\n  set req.http.Host = \"shop.example.com\";\n%s\n}\n\n",
					in.Alg, name, strings.Count(b.String(), "sub test_"), in.NowMS/1000, body)
			}
			valid := 0
			for _, tok := range in.Tokens {
				room := tok.Room
				body := fmt.Sprintf("  set req.url = {\"%s\"};\n  set req.http.Cookie = {\"theme=dark; %s_%s=%s\"};\n  testing.call_subroutine(\"vcl_recv\");\n", tok.Path, in.CookieName, room, tok.Token)
				switch {
				case tok.Valid:
					valid++
					body += fmt.Sprintf("  assert.not_error();\n  assert.equal(req.http.X-Anteroom-Sub, %q);\n  assert.equal(req.http.X-Anteroom-Room, %q);\n  assert.equal(req.http.X-Anteroom-Position, \"%d\");\n  assert.is_notset(req.http.X-Anteroom-Fail-Open);", tok.Sub, room, tok.Position)
				case tok.Name == "unknown_kid":
					// A made-up kid while the edge has keys: to the queue,
					// even in a room that fails open.
					body += "  assert.error(681);\n  assert.is_notset(req.http.X-Anteroom-Fail-Open);\n  assert.is_notset(req.http.X-Anteroom-Sub);"
				default:
					body += "  assert.error(681);\n  assert.is_notset(req.http.X-Anteroom-Sub);"
				}
				test(tok.Name, body)
			}
			if valid != len(edgeValidTokens) {
				t.Fatalf("the fixture has %d valid tokens, want %d", valid, len(edgeValidTokens))
			}
			// An unknown kid in a room that fails closed goes to the queue.
			for _, tok := range in.Tokens {
				if tok.Name == "unknown_kid" {
					test("unknown kid, fail closed", fmt.Sprintf("  set req.url = \"/checkout/pay\";\n  set req.http.Cookie = {\"%s_checkout=%s\"};\n  testing.call_subroutine(\"vcl_recv\");\n  assert.error(681);", in.CookieName, tok.Token))
				}
			}
			for _, su := range in.StartURLs {
				if l, ok := vclLit(su.Target); ok {
					test("start url "+strings.ReplaceAll(su.Target, "\n", ""), fmt.Sprintf("  set req.url = %s;\n  testing.call_subroutine(\"vcl_recv\");\n  assert.error(681);\n  assert.equal(req.http.X-Anteroom-Start, {\"%s\"});", l, su.StartURL))
				}
			}
			// Scripts get 401 (as gate.Gate's wantsJSON decides).
			for _, h := range []string{`set req.http.X-Requested-With = "XMLHttpRequest";`, `set req.http.Sec-Fetch-Mode = "cors";`, `set req.http.Accept = "application/json";`} {
				test("script: "+h, "  set req.url = \"/products/x\";\n  "+h+"\n  testing.call_subroutine(\"vcl_recv\");\n  assert.error(682);")
			}
			test("navigation", "  set req.url = \"/products/x\";\n  set req.http.Sec-Fetch-Mode = \"navigate\";\n  set req.http.Accept = \"application/json\";\n  testing.call_subroutine(\"vcl_recv\");\n  assert.error(681);")
			// A client's own X-Anteroom-* never reach the origin.
			test("client headers", "  set req.url = \"/static/app.js\";\n  set req.http.X-Anteroom-Sub = \"mallory\";\n  set req.http.X-Anteroom-Fail-Open = \"1\";\n  testing.call_subroutine(\"vcl_recv\");\n  assert.not_error();\n  assert.is_notset(req.http.X-Anteroom-Sub);\n  assert.is_notset(req.http.X-Anteroom-Fail-Open);")
			// Anteroom's own paths go to Anteroom without the issuer's path.
			fmt.Fprintf(&b, "// @scope: recv\n// @suite: %s issuer path\nsub test_issuer_path {\n  set req.http.Host = %q;\n  set req.url = \"%s/gate/start?rd=%%2F\";\n  testing.call_subroutine(\"vcl_recv\");\n  assert.state(pass);\n  assert.equal(req.backend, F_anteroom);\n  assert.equal(req.url, \"/gate/start?rd=%%2F\");\n}\n\n", in.Alg, u.Host, u.Path)
			// The answers anteroom_error makes, with no-store.
			start := in.Issuer + "/gate/start?rd=%2Fproducts%2Fx"
			fmt.Fprintf(&b, `// @scope: error
// @suite: %[1]s redirect
sub test_error_redirect {
  set req.http.X-Anteroom-Start = {"%[2]s"};
  set obj.status = 681;
  testing.call_subroutine("vcl_error");
  assert.equal(obj.status, 302);
  assert.equal(obj.http.Location, {"%[2]s"});
  assert.equal(obj.http.Cache-Control, "no-cache, no-store, must-revalidate, max-age=0");
}

// @scope: error
// @suite: %[1]s script
sub test_error_json {
  set req.http.X-Anteroom-Start = {"%[2]s"};
  set obj.status = 682;
  testing.call_subroutine("vcl_error");
  assert.equal(obj.status, 401);
  assert.equal(obj.http.Content-Type, "application/json");
  assert.starts_with(testing.synthetic_body, {"{"error":"queue","start_url":"%[2]s"} {"""} "}");
  assert.equal(std.strlen(testing.synthetic_body), %[3]d);
  assert.equal(obj.http.Cache-Control, "no-cache, no-store, must-revalidate, max-age=0");
}

// @scope: error
// @suite: %[1]s block
sub test_error_block {
  set obj.status = 683;
  testing.call_subroutine("vcl_error");
  assert.equal(obj.status, 403);
}
`, in.Alg, start, len(`{"error":"queue","start_url":"`+start+"\"}\n"))
			if err := os.WriteFile(filepath.Join(s.dir, "tokens.test.vcl"), []byte(b.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			out := s.run(t, falco, "test", "-I", ".", "main.vcl")
			t.Log(tail(out, 2))
		})
	}
}

// TestFastlyVCLFailsOpenOnlyWithoutKeys: on_error: fail_open lets a
// request with a session cookie through only while anteroom_keys holds no
// keys at all (the edge's analogue of a JWKS that cannot be fetched); a
// room that fails closed queues it then too.
func TestFastlyVCLFailsOpenOnlyWithoutKeys(t *testing.T) {
	falco := falcoBinary(t)
	node := nodeBinary(t)
	raw, err := os.ReadFile(edgeFixturePath)
	if err != nil {
		t.Fatal(err)
	}
	var fx edgeFixture
	if err := json.Unmarshal(raw, &fx); err != nil {
		t.Fatal(err)
	}
	in := fx.Instances[0]
	cfg := map[string]any{"issuer": in.Issuer, "gate": fx.Gate, "rooms": map[string]any{"launch": map[string]string{"on_error": "fail_open"}}}
	s := newVCLSuite(t, node, cfg, nil)
	var b strings.Builder
	for _, tok := range in.Tokens {
		if tok.Name != "unknown_kid" {
			continue
		}
		if tok.Room != "launch" {
			t.Fatalf("the fixture's unknown_kid token is for room %q; this test fails open in launch", tok.Room)
		}
		fmt.Fprintf(&b, `// @scope: recv
// @suite: no keys, fail open
sub test_no_keys_fail_open {
  testing.fixed_time(%[1]d);
  set req.http.Host = "shop.example.com";
  set req.url = {"%[2]s"};
  set req.http.Cookie = {"%[3]s_launch=%[4]s"};
  testing.call_subroutine("vcl_recv");
  assert.not_error();
  assert.equal(req.http.X-Anteroom-Fail-Open, "1");
  assert.is_notset(req.http.X-Anteroom-Sub);
}

// @scope: recv
// @suite: no keys, fail closed
sub test_no_keys_fail_closed {
  testing.fixed_time(%[1]d);
  set req.http.Host = "shop.example.com";
  set req.url = "/checkout/pay";
  set req.http.Cookie = {"%[3]s_checkout=%[4]s"};
  testing.call_subroutine("vcl_recv");
  assert.error(681);
}
`, in.NowMS/1000, tok.Path, in.CookieName, tok.Token)
	}
	if b.Len() == 0 {
		t.Fatal("the fixture has no unknown_kid token")
	}
	if err := os.WriteFile(filepath.Join(s.dir, "nokeys.test.vcl"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Log(tail(s.run(t, falco, "test", "-I", ".", "main.vcl"), 2))
}

// falcoProxyTransport reads falco simulate's answers. With --proxy, falco
// v1.21.1 writes the whole response it made (status line, headers, body)
// as the body of a 200 (interpreter/handler.go sendResponse calls
// http.Response.Write on the ResponseWriter), so the client unwraps it.
type falcoProxyTransport struct{}

func (falcoProxyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read falco's answer: %w", err)
	}
	inner, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), req)
	if err != nil {
		return nil, fmt.Errorf("falco's answer is not a wrapped response: %w: %.200q", err, raw)
	}
	if code, err := strconv.Atoi(inner.Header.Get(falcoRedirectHeader)); err == nil {
		inner.StatusCode = code
		inner.Header.Del(falcoRedirectHeader)
	}
	return inner, nil
}

// falcoRedirectHeader carries a backend's redirect status through falco.
// falco v1.21.1 fetches from backends with http.DefaultClient, which
// follows redirects itself (interpreter/transport.go), where Fastly hands
// a backend's 302 to the browser; so the test puts a proxy in front of
// Anteroom that answers 200 with this header instead, and
// falcoProxyTransport restores the status.
const falcoRedirectHeader = "X-Test-Redirect-Status"

// serveFalcoBackend serves a proxy to addr on a new listener and returns
// its port; see falcoRedirectHeader.
func serveFalcoBackend(t *testing.T, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme = "http"
			r.Out.URL.Host = addr
		},
		ModifyResponse: func(resp *http.Response) error {
			if resp.StatusCode >= 300 && resp.StatusCode < 400 {
				resp.Header.Set(falcoRedirectHeader, strconv.Itoa(resp.StatusCode))
				resp.StatusCode = http.StatusOK
			}
			return nil
		},
	}
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// TestFastlyVCLSimulate serves the generated VCL with `falco simulate
// --proxy` in front of a real Anteroom and an origin, with the keys that
// `anteroom edge fastly-keys` writes from Anteroom's JWKS, and walks a
// visitor from the protected URL through the queue to the origin.
func TestFastlyVCLSimulate(t *testing.T) {
	falco := falcoBinary(t)
	node := nodeBinary(t)
	if err := redisServer.FlushAll(); err != nil {
		t.Fatal(err)
	}
	var reached atomic.Int64
	origin := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		fmt.Fprintf(w, "origin: %s sub=%s room=%s", r.URL.RequestURI(), r.Header.Get("X-Anteroom-Sub"), r.Header.Get("X-Anteroom-Room"))
	})}
	originLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = origin.Serve(originLn) }()
	t.Cleanup(func() { origin.Close() })

	siteAddr := freeAddr(t)
	site := "http://" + siteAddr
	insecure := false
	cfg := testConfig()
	cfg.Issuer = site + "/_anteroom"
	cfg.Gate = &config.Gate{
		Cookie:       config.GateCookie{Secure: &insecure},
		DynamicPaths: []string{"/checkout"},
		Rules: []config.Rule{
			{PathPrefix: "/static/", Action: "bypass"},
			{PathPrefix: "/", Action: "queue", Room: roomID},
		},
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	anteroomLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveApp(t, cfg, anteroomLn, nil)
	anteroom := "http://" + anteroomLn.Addr().String()
	resp, jwks := edgeGet(t, anteroom+"/keys", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("JWKS: %d", resp.StatusCode)
	}
	keys := fastlyKeyItems(t, []byte(jwks))
	s := newVCLSuite(t, node, map[string]any{"issuer": cfg.Issuer, "gate": cfg.Gate}, keys)
	main, _ := os.ReadFile(filepath.Join(s.dir, "main.vcl"))
	anteroomPort := serveFalcoBackend(t, anteroomLn.Addr().String())
	_, originPort, _ := net.SplitHostPort(originLn.Addr().String())
	_, sitePort, _ := net.SplitHostPort(siteAddr)
	main = []byte(strings.Replace(strings.Replace(string(main), `.port = "1";`, `.port = "`+anteroomPort+`";`, 1), `.port = "2";`, `.port = "`+originPort+`";`, 1))
	if err := os.WriteFile(filepath.Join(s.dir, "main.vcl"), main, 0o644); err != nil {
		t.Fatal(err)
	}
	// The port is falco's configuration file's; its -p flag takes no value here.
	if err := os.WriteFile(filepath.Join(s.dir, ".falco.yml"), []byte("simulator:\n  port: "+sitePort+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	sim := exec.Command(falco, "simulate", "--proxy", "-I", ".", "main.vcl")
	sim.Dir = s.dir
	sim.Stdout, sim.Stderr = &logs, &logs
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = sim.Process.Kill()
		_ = sim.Wait()
		if t.Failed() {
			t.Logf("falco simulate:\n%s", tail(logs.String(), 60))
		}
	})
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", siteAddr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if i == 100 {
			t.Fatalf("falco simulate does not listen on %s", siteAddr)
		}
		time.Sleep(100 * time.Millisecond) // start-up only
	}

	jar, _ := cookiejar.New(nil)
	b := &http.Client{Jar: jar, Timeout: 10 * time.Second, Transport: falcoProxyTransport{}}
	// The protected URL: the VCL sends the visitor to /gate/start, which it
	// routes to Anteroom, which shows the waiting page.
	resp, err = b.Get(site + "/shop?item=42")
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(resp)
	waitURL := resp.Request.URL.String()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(waitURL, site+"/_anteroom/wait/") || reached.Load() != 0 {
		t.Fatalf("expected the waiting page through falco, got %d at %s (origin reached %d times): %.300s", resp.StatusCode, waitURL, reached.Load(), body)
	}
	advanceOver(t, anteroom, roomID, 1)
	resp, err = b.Post(waitURL+"/continue", "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	body = readAll(resp)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != site+"/shop?item=42" || !strings.HasPrefix(body, "origin: /shop?item=42 sub=") || !strings.HasSuffix(body, "room="+roomID) {
		t.Fatalf("after admission: %d at %s: %.300s", resp.StatusCode, resp.Request.URL, body)
	}
	// The cookie alone lets the next request through; without it, a
	// script gets 401.
	before := reached.Load()
	if resp, err := b.Get(site + "/shop/basket"); err != nil || resp.StatusCode != http.StatusOK || reached.Load() != before+1 {
		t.Fatalf("second request: %v %v", resp, err)
	}
	// A tampered cookie goes back to the queue; a static file bypasses,
	// without a client's own X-Anteroom-Sub.
	siteURL, _ := url.Parse(site + "/")
	forgedJar, _ := cookiejar.New(nil)
	for _, c := range jar.Cookies(siteURL) {
		if c.Name == "anteroom_gate_"+roomID {
			v := []byte(c.Value)
			v[len(v)-5] ^= 1
			forgedJar.SetCookies(siteURL, []*http.Cookie{{Name: c.Name, Value: string(v)}})
		}
	}
	before = reached.Load()
	resp, err = (&http.Client{Jar: forgedJar, Timeout: 10 * time.Second, Transport: falcoProxyTransport{}}).Get(site + "/shop")
	if err != nil || !strings.HasPrefix(resp.Request.URL.String(), site+"/_anteroom/wait/") || reached.Load() != before {
		t.Fatalf("tampered cookie: %v %v", resp, err)
	}
	req, _ := http.NewRequest(http.MethodGet, site+"/static/app.js", nil)
	req.Header.Set("X-Anteroom-Sub", "forged")
	resp, err = (&http.Client{Timeout: 10 * time.Second, Transport: falcoProxyTransport{}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(resp); resp.StatusCode != http.StatusOK || body != "origin: /static/app.js sub= room=" {
		t.Fatalf("static: %d %q", resp.StatusCode, body)
	}
	req, _ = http.NewRequest(http.MethodGet, site+"/api/cart", nil)
	req.Header.Set("X-Requested-With", "XMLHttpRequest")
	resp, err = (&http.Client{Timeout: 10 * time.Second, Transport: falcoProxyTransport{}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body = readAll(resp)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"start_url":"`+site+`/_anteroom/gate/start?rd=%2Fapi%2Fcart"`) {
		t.Fatalf("script: %d %s", resp.StatusCode, body)
	}
}

// TestFastlyVCLExample lints the README's example: the committed
// anteroom.vcl (generate.test.js checks that it is generate.mjs's output
// for config.example.json) and main.vcl, with the backends and the
// dictionary a Fastly service declares itself.
func TestFastlyVCLExample(t *testing.T) {
	falco := falcoBinary(t)
	dir := t.TempDir()
	custom, err := os.ReadFile("../deploy/edge/fastly-vcl/anteroom.vcl")
	if err != nil {
		t.Fatal(err)
	}
	main, err := os.ReadFile("../deploy/edge/fastly-vcl/main.vcl")
	if err != nil {
		t.Fatal(err)
	}
	service := "backend F_anteroom {\n  .host = \"127.0.0.1\";\n  .port = \"1\";\n}\nbackend F_origin {\n  .host = \"127.0.0.1\";\n  .port = \"2\";\n}\ntable anteroom_keys {\n}\n" + string(main)
	if err := os.WriteFile(filepath.Join(dir, "anteroom.vcl"), custom, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "service.vcl"), []byte(service), 0o644); err != nil {
		t.Fatal(err)
	}
	vclSuite{dir: dir}.run(t, falco, "lint", "-I", ".", "service.vcl")
}
