//go:build unix

package e2e

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/anteroom/anteroom/config"
	"github.com/anteroom/anteroom/gate"
	"github.com/anteroom/anteroom/keys"
)

// These tests hold the edge connectors under deploy/edge (JavaScript for
// CloudFront, Cloudflare and Fastly) to what Anteroom's own gate does.
// Real Anteroom instances, one signing RS256 and one ES256, issue gate
// session cookies through the real flow (/gate/start → /wait → continue →
// /gate/callback); the negative variants are signed with the same key and
// library; every token's verdict is Anteroom's own /gate/auth answer, not
// an assumption; and Go's rule matcher decides a few thousand generated
// requests. All of it goes into a fixture that node --test deploy/edge
// reads, so the JavaScript verifies exactly what Go signs and decides
// exactly as Go decides.

// edgeFixture is the file the JavaScript suites read
// (ANTEROOM_EDGE_FIXTURE, or deploy/edge/testdata/fixture.json).
type edgeFixture struct {
	Comment   string          `json:"comment"`
	Gate      json.RawMessage `json:"gate"`
	Instances []edgeInstance  `json:"instances"`
	Decisions []edgeDecision  `json:"decisions"`
}

// edgeInstance is what one Anteroom instance issued.
type edgeInstance struct {
	Alg        string          `json:"alg"`
	Issuer     string          `json:"issuer"`
	NowMS      int64           `json:"now_ms"`
	CookieName string          `json:"cookie_name"`
	JWKS       json.RawMessage `json:"jwks"`
	Tokens     []edgeToken     `json:"tokens"`
	StartURLs  []edgeStartURL  `json:"start_urls"`
}

// edgeToken is a gate session token and Anteroom's verdict on it when it
// is the cookie of Room, on a path that Room protects.
type edgeToken struct {
	Name     string `json:"name"`
	Room     string `json:"room"`
	Path     string `json:"path"`
	Token    string `json:"token"`
	Valid    bool   `json:"valid"`
	Sub      string `json:"sub,omitempty"`
	Position int64  `json:"position,omitempty"`
}

// edgeStartURL is the start_url Anteroom's /gate/start gives a script for
// Target.
type edgeStartURL struct {
	Target   string `json:"target"`
	StartURL string `json:"start_url"`
}

// edgeDecision is one generated request and Go's decision on it.
type edgeDecision struct {
	Host      string            `json:"host"`
	Method    string            `json:"method"`
	Path      string            `json:"path"`
	UserAgent string            `json:"user_agent"`
	Headers   map[string]string `json:"headers,omitempty"`
	Cookies   map[string]string `json:"cookies,omitempty"`
	Action    string            `json:"action"`
	Room      string            `json:"room,omitempty"`
}

// Tokens Anteroom must accept; every other variant must be refused.
var edgeValidTokens = []string{"valid", "valid_checkout", "resigned", "nbf_within_leeway", "audience_list"}

const edgeFixturePath = "../deploy/edge/testdata/fixture.json"

func TestEdgeConnectors(t *testing.T) {
	node := nodeBinary(t)
	tab := readSharedRules(t)
	fx := edgeFixture{
		Comment: "Written by TestEdgeConnectors (e2e/edge_e2e_test.go) from real Anteroom instances; " +
			"regenerate with ANTEROOM_EDGE_FIXTURE_UPDATE=1 go test -run TestEdgeConnectors ./e2e.",
		Gate: tab.gateJSON,
	}
	for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.ES256} {
		fx.Instances = append(fx.Instances, edgeInstanceFor(t, alg, tab))
	}
	rs, err := gate.Compile(tab.gate)
	if err != nil {
		t.Fatal(err)
	}
	fx.Decisions = edgeDecisions(rs)

	data := fx.encode(t)
	path := filepath.Join(t.TempDir(), "fixture.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if os.Getenv("ANTEROOM_EDGE_FIXTURE_UPDATE") == "1" {
		if err := os.WriteFile(edgeFixturePath, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	checkCommittedFixture(t, fx)

	cmd := exec.Command(node, "--test", "deploy/edge")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "ANTEROOM_EDGE_FIXTURE="+path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test deploy/edge: %v\n%s", err, out)
	}
	// A run that found no tests also exits 0.
	if m := regexp.MustCompile(`(?m)^# pass (\d+)$`).FindStringSubmatch(string(out)); m == nil || m[1] == "0" {
		t.Fatalf("node --test deploy/edge ran no tests:\n%s", out)
	}
	t.Logf("node --test deploy/edge:\n%s", tail(string(out), 8))
}

// encode writes the fixture as JSON with one token, start URL and
// decision per line, so that a regenerated fixture diffs readably.
func (fx edgeFixture) encode(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	line := func(prefix string, v any, suffix string) {
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(prefix)
		b.Write(data)
		b.WriteString(suffix)
	}
	comma := func(i, n int) string {
		if i < n-1 {
			return ",\n"
		}
		return "\n"
	}
	line(`{"comment": `, fx.Comment, ",\n")
	line(` "gate": `, fx.Gate, ",\n")
	b.WriteString(` "instances": [` + "\n")
	for i, in := range fx.Instances {
		tokens, starts := in.Tokens, in.StartURLs
		in.Tokens, in.StartURLs = nil, nil
		head, _ := json.Marshal(in)
		b.Write(head[:len(head)-1])
		b.WriteString(`, "tokens": [` + "\n")
		for j, tok := range tokens {
			line("  ", tok, comma(j, len(tokens)))
		}
		b.WriteString(`  ], "start_urls": [` + "\n")
		for j, su := range starts {
			line("  ", su, comma(j, len(starts)))
		}
		b.WriteString("  ]}" + comma(i, len(fx.Instances)))
	}
	b.WriteString(` ],` + "\n" + ` "decisions": [` + "\n")
	for i, d := range fx.Decisions {
		line("  ", d, comma(i, len(fx.Decisions)))
	}
	b.WriteString(" ]}\n")
	return b.Bytes()
}

// nodeBinary returns node (20 or later), or skips the test without it
// unless ANTEROOM_TEST_NODE=required.
func nodeBinary(t *testing.T) string {
	t.Helper()
	skip := func(msg string) {
		if os.Getenv("ANTEROOM_TEST_NODE") == "required" {
			t.Fatalf("%s (ANTEROOM_TEST_NODE=required)", msg)
		}
		t.Skipf("%s (set ANTEROOM_TEST_NODE=required to fail instead)", msg)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		skip("node is not installed")
	}
	out, err := exec.Command(node, "--version").Output()
	major, _ := strconv.Atoi(strings.SplitN(strings.TrimPrefix(strings.TrimSpace(string(out)), "v"), ".", 2)[0])
	if err != nil || major < 20 {
		skip(fmt.Sprintf("node %s is too old: the edge connectors need 20 or later", strings.TrimSpace(string(out))))
	}
	return node
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// sharedRules is gate/testdata/rules.json's gate: the rules both the Go
// gate's tests and the edge's read.
type sharedRules struct {
	gate     *config.Gate
	gateJSON json.RawMessage
	rooms    []string
}

func readSharedRules(t *testing.T) sharedRules {
	t.Helper()
	data, err := os.ReadFile("../gate/testdata/rules.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Rooms []string        `json:"rooms"`
		Gate  json.RawMessage `json:"gate"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var g config.Gate
	if err := json.Unmarshal(doc.Gate, &g); err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, doc.Gate); err != nil {
		t.Fatal(err)
	}
	return sharedRules{gate: &g, gateJSON: compact.Bytes(), rooms: doc.Rooms}
}

// edgeInstanceFor runs an Anteroom instance whose signing key is alg, with
// the shared rules as its gate and its issuer under a path prefix (a small
// proxy strips it, as nginx or a CDN would), and collects its tokens.
func edgeInstanceFor(t *testing.T, alg jose.SignatureAlgorithm, tab sharedRules) edgeInstance {
	t.Helper()
	if err := redisServer.FlushAll(); err != nil {
		t.Fatal(err)
	}
	if alg != jose.RS256 {
		// An instance signs with the key set it finds in Redis, so an
		// ES256 deployment is one whose first key was made ES256.
		box, err := keys.NewBox([][]byte{[]byte(cookieKey)}, "signing keys")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := keys.NewManager(context.Background(), redisServer.Client(t), box, keys.Options{Algorithm: alg}); err != nil {
			t.Fatal(err)
		}
	}
	clock := newClock()
	proxyLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	appLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + proxyLn.Addr().String()
	anteroom := "http://" + appLn.Addr().String()

	insecure := false
	g := *tab.gate
	g.Cookie.Secure = &insecure // plain http in the test
	cfg := testConfig()
	cfg.Issuer = base + "/_anteroom"
	cfg.Rooms = nil
	for _, id := range tab.rooms {
		cfg.Rooms = append(cfg.Rooms, config.Room{ID: id, SessionTTL: config.Duration(30 * time.Minute), MaxWait: config.Duration(time.Hour)})
	}
	cfg.Gate = &g
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a := serveApp(t, cfg, appLn, clock.Now)
	serveStripPrefix(t, proxyLn, appLn.Addr().String(), "/_anteroom")

	inst := edgeInstance{Alg: string(alg), Issuer: cfg.Issuer, CookieName: cfg.Gate.Cookie.Name}
	if key := a.Keys().Signing(); key.Algorithm != alg {
		t.Fatalf("instance signs with %s, want %s", key.Algorithm, alg)
	}
	resp, body := edgeGet(t, base+"/_anteroom/keys", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("JWKS: %d %s", resp.StatusCode, body)
	}
	inst.JWKS = json.RawMessage(body)

	launch := edgeLogin(t, base, anteroom, "launch", "/products/red-shoe?colour=red")
	checkout := edgeLogin(t, base, anteroom, "checkout", "/checkout/pay")
	inst.NowMS = clock.Now().UnixMilli()
	inst.Tokens = edgeVariants(t, a.Keys().Signing(), launch, checkout, clock.Now())

	// Anteroom's own verdict on every token, through /gate/auth.
	for i := range inst.Tokens {
		tok := &inst.Tokens[i]
		resp, _ := edgeGet(t, anteroom+"/gate/auth", map[string]string{
			"Host": "shop.example.com", "X-Original-URI": tok.Path,
			"Cookie": cfg.Gate.Cookie.Name + "_" + tok.Room + "=" + tok.Token,
		})
		switch resp.StatusCode {
		case http.StatusNoContent:
			tok.Valid = true
			tok.Sub = resp.Header.Get("X-Anteroom-Sub")
			tok.Position, _ = strconv.ParseInt(resp.Header.Get("X-Anteroom-Position"), 10, 64)
		case http.StatusUnauthorized:
		default:
			t.Fatalf("%s %s: /gate/auth answered %d", alg, tok.Name, resp.StatusCode)
		}
		if want := slices.Contains(edgeValidTokens, tok.Name); tok.Valid != want {
			t.Errorf("%s %s: Anteroom says valid=%v, want %v", alg, tok.Name, tok.Valid, want)
		}
	}

	// The start URL Anteroom gives a script, for targets that need escaping.
	for _, target := range []string{"/products/red-shoe?colour=red&size=42", "/checkout/pay?q=%C3%A9t%C3%A9+x&y=1*'()!~", "/products/a%20b;c=d", "/search?q=a b&c=d/e"} {
		resp, body := edgeGet(t, anteroom+"/gate/start", map[string]string{
			"Host": "shop.example.com", "X-Original-URI": target, "X-Requested-With": "XMLHttpRequest",
		})
		var doc struct {
			StartURL string `json:"start_url"`
		}
		if resp.StatusCode != http.StatusUnauthorized || json.Unmarshal([]byte(body), &doc) != nil || doc.StartURL == "" {
			t.Fatalf("gate/start for a script: %d %s", resp.StatusCode, body)
		}
		inst.StartURLs = append(inst.StartURLs, edgeStartURL{Target: target, StartURL: doc.StartURL})
	}
	return inst
}

// serveStripPrefix serves a reverse proxy on ln that sends requests to
// addr without prefix, keeping the Host header, as deploy/nginx does.
func serveStripPrefix(t *testing.T, ln net.Listener, addr, prefix string) {
	t.Helper()
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.Out.URL.Scheme = "http"
		r.Out.URL.Host = addr
		r.Out.URL.Path = strings.TrimPrefix(r.In.URL.Path, prefix)
		r.Out.URL.RawPath = ""
		r.Out.Host = r.In.Host
	}}
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
}

func edgeGet(t *testing.T, u string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// edgeLogin goes through the gate's real flow for a visitor who asked for
// target on shop.example.com, which room protects, and returns the
// session cookie Anteroom sets.
func edgeLogin(t *testing.T, base, anteroom, room, target string) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	// Follow redirects within Anteroom; stop at the return to the site.
	b := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if !strings.HasPrefix(req.URL.Path, "/_anteroom/") {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	req, _ := http.NewRequest(http.MethodGet, base+"/_anteroom/gate/start", nil)
	req.Host = "shop.example.com" // the rules are per host; the browser's Host is the site's
	req.Header.Set("X-Original-URI", target)
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36")
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// A browser's Host is the URL's; here it is not, so file the flow
	// cookie under the URL by hand.
	jar.SetCookies(req.URL, resp.Cookies())
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, base+"/_anteroom/authorize?") {
		t.Fatalf("gate/start %s: %d to %q", target, resp.StatusCode, loc)
	}
	resp, body := visit(t, b, http.MethodGet, loc)
	waitURL := resp.Request.URL.String()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(waitURL, base+"/_anteroom/wait/") {
		t.Fatalf("%s: expected the waiting page, got %d at %s: %.300s", room, resp.StatusCode, waitURL, body)
	}
	req, _ = http.NewRequest(http.MethodPost, anteroom+"/admin/v1/rooms/"+room+"/advance", strings.NewReader(`{"count":1}`))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("advance %s: %v %v", room, resp, err)
	}
	resp, body = visit(t, b, http.MethodPost, waitURL+"/continue")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != target {
		t.Fatalf("%s: after continue: %d to %q at %s: %.300s", room, resp.StatusCode, resp.Header.Get("Location"), resp.Request.URL.Path, body)
	}
	u, _ := url.Parse(base + "/")
	for _, c := range jar.Cookies(u) {
		if c.Name == "anteroom_gate_"+room {
			return c.Value
		}
	}
	t.Fatalf("%s: no gate session cookie", room)
	return ""
}

// edgeVariants returns the genuine tokens and variants of them: re-signed
// with the instance's key (through go-jose, as gate.signedWith signs) with
// one claim changed, or forged in the ways verifiers get wrong.
func edgeVariants(t *testing.T, key keys.Key, launch, checkout string, now time.Time) []edgeToken {
	t.Helper()
	const launchPath, checkoutPath = "/products/red-shoe", "/checkout/pay"
	claims := func() map[string]any {
		parts := strings.Split(launch, ".")
		raw, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		var c map[string]any
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	with := func(change func(map[string]any)) map[string]any {
		c := claims()
		change(c)
		return c
	}
	sign := func(k crypto.Signer, alg jose.SignatureAlgorithm, kid string, extra map[jose.HeaderKey]any, c map[string]any) string {
		opts := (&jose.SignerOptions{}).WithType("JWT")
		for h, v := range extra {
			opts = opts.WithHeader(h, v)
		}
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: k, KeyID: kid}}, opts)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jwt.Signed(signer).Claims(c).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	resign := func(c map[string]any) string { return sign(key.Private, key.Algorithm, key.ID, nil, c) }
	secs := func(d time.Duration) int64 { return now.Add(d).Unix() }
	b64 := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	parts := strings.Split(launch, ".")

	// Another key of the same kind, which Anteroom never published.
	var other crypto.Signer
	var err error
	if key.Algorithm == jose.ES256 {
		other, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	} else {
		other, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		t.Fatal(err)
	}
	thumb, _ := (&jose.JSONWebKey{Key: other.Public()}).Thumbprint(crypto.SHA256)
	otherKID := base64.RawURLEncoding.EncodeToString(thumb)

	hs256 := func(secret []byte) string {
		h := b64(map[string]any{"alg": "HS256", "kid": key.ID, "typ": "JWT"})
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(h + "." + parts[1]))
		return h + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	}
	spki, _ := x509.MarshalPKIXPublicKey(key.Private.Public())
	publicPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki})
	publicJWK, _ := key.Public.MarshalJSON()

	tampered := with(func(c map[string]any) { c["queue_position"] = 424242 })
	toks := []edgeToken{
		{Name: "valid", Token: launch},
		{Name: "valid_checkout", Room: "checkout", Path: checkoutPath, Token: checkout},
		{Name: "resigned", Token: resign(claims())},
		{Name: "expired", Token: resign(with(func(c map[string]any) { c["exp"] = secs(-time.Second) }))},
		{Name: "expires_now", Token: resign(with(func(c map[string]any) { c["exp"] = now.Unix() }))},
		{Name: "no_exp", Token: resign(with(func(c map[string]any) { delete(c, "exp") }))},
		{Name: "exp_as_string", Token: resign(with(func(c map[string]any) { c["exp"] = strconv.FormatInt(secs(time.Hour), 10) }))},
		{Name: "not_yet_valid", Token: resign(with(func(c map[string]any) { c["nbf"] = secs(5 * time.Minute) }))},
		{Name: "nbf_within_leeway", Token: resign(with(func(c map[string]any) { c["nbf"] = secs(30 * time.Second) }))},
		{Name: "issued_in_future", Token: resign(with(func(c map[string]any) { c["iat"] = secs(5 * time.Minute) }))},
		{Name: "wrong_room", Token: resign(with(func(c map[string]any) { c["room"] = "checkout" }))},
		{Name: "checkout_cookie_for_launch", Token: checkout},
		{Name: "wrong_issuer", Token: resign(with(func(c map[string]any) { c["iss"] = "https://evil.example.com/_anteroom" }))},
		{Name: "issuer_trailing_slash", Token: resign(with(func(c map[string]any) { c["iss"] = c["iss"].(string) + "/" }))},
		{Name: "wrong_audience", Token: resign(with(func(c map[string]any) { c["aud"] = "gate-launch" }))},
		{Name: "audience_list", Token: resign(with(func(c map[string]any) { c["aud"] = []string{"other", gate.Audience} }))},
		{Name: "no_subject", Token: resign(with(func(c map[string]any) { delete(c, "sub") }))},
		{Name: "tampered", Token: parts[0] + "." + b64(tampered) + "." + parts[2]},
		{Name: "truncated_signature", Token: launch[:len(launch)-4]},
		{Name: "alg_none", Token: b64(map[string]any{"alg": "none", "typ": "JWT"}) + "." + parts[1] + "."},
		{Name: "alg_none_with_kid", Token: b64(map[string]any{"alg": "none", "kid": key.ID, "typ": "JWT"}) + "." + parts[1] + "." + parts[2]},
		{Name: "hs256_public_key_pem", Token: hs256(publicPEM)},
		{Name: "hs256_public_jwk", Token: hs256(publicJWK)},
		{Name: "unknown_kid", Token: sign(other, key.Algorithm, otherKID, nil, claims())},
		{Name: "spoofed_kid", Token: sign(other, key.Algorithm, key.ID, nil, claims())},
		{Name: "critical_header", Token: sign(key.Private, key.Algorithm, key.ID, map[jose.HeaderKey]any{"crit": []string{"exp"}}, claims())},
		{Name: "other_alg_in_header", Token: b64(map[string]any{"alg": map[jose.SignatureAlgorithm]string{jose.RS256: "ES256", jose.ES256: "RS256"}[key.Algorithm], "kid": key.ID, "typ": "JWT"}) + "." + parts[1] + "." + parts[2]},
		{Name: "header_not_json", Token: base64.RawURLEncoding.EncodeToString([]byte("{")) + "." + parts[1] + "." + parts[2]},
	}
	if key.Algorithm == jose.RS256 {
		// The same RSA key under another algorithm it could sign with.
		toks = append(toks, edgeToken{Name: "ps256_same_key", Token: sign(key.Private, jose.PS256, key.ID, nil, claims())})
	} else {
		// A valid ECDSA signature in ASN.1 DER instead of JOSE's r||s.
		sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
		der, err := ecdsa.SignASN1(rand.Reader, key.Private.(*ecdsa.PrivateKey), sum[:])
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, edgeToken{Name: "es256_der_signature", Token: parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(der)})
	}
	for i := range toks {
		if toks[i].Room == "" {
			toks[i].Room, toks[i].Path = "launch", launchPath
		}
	}
	return toks
}

// edgeDecisions generates requests from pieces that exercise every corner
// of the rules (case, escapes, dot segments, hosts, bots, headers,
// cookies, characters that Go's regexp folds) and records Go's decision
// on each, with a fixed seed so the list is the same on every run.
func edgeDecisions(rs *gate.Rules) []edgeDecision {
	r := mathrand.New(mathrand.NewPCG(8, 2026))
	pick := func(xs []string) string { return xs[r.IntN(len(xs))] }
	hosts := []string{"shop.example.com", "SHOP.Example.COM:443", "shop.example.com.", "img.old.example.com", "A.B.OLD.example.com:8443",
		"old.example.com", ".old.example.com", "staging.example.com", "blog.example.org", "[::1]:8080", "", "shop.example.com:x"}
	browser := "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
	methods := []string{"GET", "GET", "POST", "head", "Post", "PUT", ""}
	segments := []string{"static", "STATIC", "Static", "checkout", "CHECKOUT", "login", "login.php", "account", "stores", "locator",
		"internal", "api", "cart", "robots.txt", "products", "red-shoe", "app.js", "..", ".", "", "%2e%2e", "%2E", "%2e",
		"..;", ";x", "a%2fb", "a%2Fb", "a%5cb", `a\b`, "%25", "%252e%252e", "%zz", "a%2", "%00", "%0d", "%0a", "%c3%a9",
		"%ff", "%e2%82", "é", "bytes", "%c3%a9%ff", "ſtatic", "%63heckout", "a%20b", "~user", "x;y=1", "static;v=1", "%3bx", "a#b", "..%3b"}
	userAgents := []string{browser, browser, browser,
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "GOOGLEBOT", "Slackbot-LinkExpanding 1.0",
		"sqlmap/1.7.2#stable", "Mozilla/5.00 (Nikto/2.1.6)", "ni\u212ato/2", "\u017fqlmap", "MASSCAN/1.3", "curl/8.5.0", "", "yeti/1.1", "Yeti"}
	queries := []string{"", "", "?x=1", "?/static/", "?a=%2e%2e/"}
	var out []edgeDecision
	for range 2000 {
		n := 1 + r.IntN(4)
		segs := make([]string, n)
		for i := range segs {
			segs[i] = pick(segments)
		}
		path := "/" + strings.Join(segs, "/")
		switch r.IntN(12) {
		case 0:
			path = "http://shop.example.com" + path
		case 1:
			path = strings.TrimPrefix(path, "/")
		case 2:
			path += "/"
		}
		path += pick(queries)
		d := edgeDecision{Host: pick(hosts), Method: pick(methods), Path: path, UserAgent: pick(userAgents)}
		if r.IntN(3) == 0 {
			d.Headers = map[string]string{"X-Preview-Token": pick([]string{"letmein", "LETMEIN", ""}), "Accept": pick([]string{"application/json", "text/html", "application/jsonx", ""})}
		}
		if r.IntN(3) == 0 {
			d.Cookies = map[string]string{pick([]string{"early_access", "Early_Access"}): pick([]string{"AB12CD", "ab12cd", "AB12CD7", ""})}
		}
		req := gate.Request{Host: d.Host, Method: d.Method, Path: d.Path, UserAgent: d.UserAgent,
			Header: func(name string) string {
				for k, v := range d.Headers {
					if strings.EqualFold(k, name) {
						return v
					}
				}
				return ""
			},
			Cookie: func(name string) (string, bool) { v, ok := d.Cookies[name]; return v, ok },
		}
		dec := rs.Decide(req)
		d.Action, d.Room = dec.Action.String(), dec.Room
		out = append(out, d)
	}
	return out
}

// checkCommittedFixture checks that deploy/edge/testdata/fixture.json,
// which node --test alone reads, still matches what Anteroom produces: the
// same rules, the same generated decisions and the same token variants
// with the same verdicts (its keys and tokens differ, being new each run).
func checkCommittedFixture(t *testing.T, fx edgeFixture) {
	t.Helper()
	data, err := os.ReadFile(edgeFixturePath)
	if err != nil {
		t.Fatalf("%v (write it with ANTEROOM_EDGE_FIXTURE_UPDATE=1)", err)
	}
	var old edgeFixture
	if err := json.Unmarshal(data, &old); err != nil {
		t.Fatal(err)
	}
	shape := func(f edgeFixture) []string {
		var s []string
		for _, in := range f.Instances {
			for _, tok := range in.Tokens {
				s = append(s, fmt.Sprintf("%s %s %s valid=%v", in.Alg, tok.Name, tok.Room, tok.Valid))
			}
			for _, su := range in.StartURLs {
				s = append(s, in.Alg+" start "+su.Target)
			}
		}
		return s
	}
	var oldGate bytes.Buffer
	_ = json.Compact(&oldGate, old.Gate)
	if !bytes.Equal(oldGate.Bytes(), fx.Gate) || !reflect.DeepEqual(old.Decisions, fx.Decisions) || !slices.Equal(shape(old), shape(fx)) {
		t.Errorf("%s is out of date: regenerate it with ANTEROOM_EDGE_FIXTURE_UPDATE=1 go test -run TestEdgeConnectors ./cmd/anteroom", edgeFixturePath)
	}
}
