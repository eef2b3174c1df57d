package config_test

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/anteroom/anteroom/config"
)

const (
	cookieKey    = "0123456789abcdef0123456789abcdef" // 32 bytes
	cookieKey2   = "fedcba9876543210fedcba9876543210"
	adminToken   = "admin-token-16ch"
	shopSecret   = "shop-secret-0123456789"
	designConfig = `issuer: https://queue.example.com
listen: 127.0.0.1:8080
redis: {url: redis://127.0.0.1:6379/0}   # or {addrs: [...]} for Cluster, {master_name, addrs} for Sentinel
secrets:
  cookie_keys: ["${ANTEROOM_COOKIE_KEY}"]  # ≥32 bytes; first encodes, all decode (rotation)
admin: {token: "${ANTEROOM_ADMIN_TOKEN}"}
rooms:
  - id: launch
    name: Product launch
    admission: {rate_per_minute: 600, max_active: 2000}   # omit both: manual (admin API only)
    session_ttl: 30m
    max_wait: 6h
clients:
  - id: shop
    secret: "${SHOP_CLIENT_SECRET}"      # omit for a public client: PKCE S256 then required
    redirect_uris: [https://shop.example.com/oauth2/callback]
    post_logout_redirect_uris: [https://shop.example.com/]
    room: launch
`
)

// env returns a lookup function over m, standing in for os.LookupEnv.
func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

var designEnv = map[string]string{
	"ANTEROOM_COOKIE_KEY":   cookieKey,
	"ANTEROOM_ADMIN_TOKEN":  adminToken,
	"SHOP_CLIENT_SECRET":    shopSecret,
	"UNUSED_BUT_HARMLESS_X": "x",
}

func ptr[T any](v T) *T { return &v }

// errLines splits a joined error into its lines; nil gives none.
func errLines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

func TestParseDesignExample(t *testing.T) {
	t.Parallel()
	got, err := config.Parse([]byte(designConfig), env(designEnv))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := &config.Config{
		Issuer: "https://queue.example.com",
		Listen: "127.0.0.1:8080",
		Redis: config.Redis{
			URL:            "redis://127.0.0.1:6379/0",
			DialTimeout:    config.Duration(2 * time.Second),
			ReadTimeout:    config.Duration(time.Second),
			WriteTimeout:   config.Duration(time.Second),
			RequestTimeout: config.Duration(3 * time.Second),
		},
		Secrets: config.Secrets{CookieKeys: []string{cookieKey}},
		Signing: config.Signing{Algorithm: "RS256", PublishAhead: config.Duration(2 * time.Hour)},
		Admin:   config.Admin{Token: adminToken},
		Rooms: []config.Room{{
			ID:         "launch",
			Name:       "Product launch",
			State:      "open",
			Admission:  config.Admission{RatePerMinute: ptr(600.0), MaxActive: ptr(2000)},
			SessionTTL: config.Duration(30 * time.Minute),
			MaxWait:    config.Duration(6 * time.Hour),
			OnError:    "fail_closed",
			Challenge:  config.Challenge{Mode: "off", MaxNumber: config.DefaultChallengeMaxNumber, JoinsPerSecond: config.DefaultChallengeJoinsPerSecond},
		}},
		Clients: []config.Client{{
			ID:                     "shop",
			Secret:                 shopSecret,
			RedirectURIs:           []string{"https://shop.example.com/oauth2/callback"},
			PostLogoutRedirectURIs: []string{"https://shop.example.com/"},
			Room:                   "launch",
		}},
		Limits: config.Limits{ClientIPHeader: "x-forwarded-for", LoginsPerTicket: 50},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse mismatch\n got: %+v\nwant: %+v", got, want)
	}
	if got.Rooms[0].Admission.Manual() {
		t.Error("Manual() = true for a room with rate and capacity")
	}
	if got.Clients[0].Public() {
		t.Error("Public() = true for a client with a secret")
	}
	if err := got.RequireRedis(); err != nil {
		t.Errorf("RequireRedis: %v", err)
	}
}

func TestParseMinimalGetsDefaults(t *testing.T) {
	t.Parallel()
	const src = `
issuer: http://localhost:8080
secrets: {cookie_keys: ["` + cookieKey + `"]}
rooms: [{id: r1}]
clients: [{id: spa, redirect_uris: ["http://127.0.0.1:3000/cb"], room: r1}]
`
	c, err := config.Parse([]byte(src), env(nil))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	r := c.Rooms[0]
	if c.Listen != "127.0.0.1:8080" || r.Name != "r1" || r.State != "open" ||
		r.SessionTTL.D() != 30*time.Minute || r.MaxWait.D() != 6*time.Hour || r.OnError != "fail_closed" {
		t.Errorf("defaults not applied: listen=%q room=%+v", c.Listen, r)
	}
	if c.Gate != nil {
		t.Errorf("Gate = %+v with no gate key, want nil (gate disabled)", c.Gate)
	}
	if c.Redis.DialTimeout.D() != 2*time.Second || c.Redis.ReadTimeout.D() != time.Second ||
		c.Redis.WriteTimeout.D() != time.Second || c.Redis.RequestTimeout.D() != 3*time.Second {
		t.Errorf("redis defaults not applied: %+v", c.Redis)
	}
	if !r.Admission.Manual() {
		t.Error("Manual() = false for a room without rate or capacity")
	}
	if !c.Clients[0].Public() {
		t.Error("Public() = false for a client without a secret")
	}
	if c.Redis.Configured() {
		t.Error("Configured() = true with no redis section")
	}
	if err := c.RequireRedis(); err == nil || err.Error() != "redis: url or addrs is required" {
		t.Errorf("RequireRedis() = %v, want redis: url or addrs is required", err)
	}
}

func TestApplyDefaultsKeepsSetValues(t *testing.T) {
	t.Parallel()
	c := &config.Config{
		Listen: ":9000",
		Redis:  config.Redis{DialTimeout: config.Duration(5 * time.Second)},
		Rooms: []config.Room{{
			ID: "a", Name: "A", State: "paused",
			SessionTTL: config.Duration(time.Hour), MaxWait: config.Duration(2 * time.Hour),
		}},
	}
	c.ApplyDefaults()
	r := c.Rooms[0]
	if c.Listen != ":9000" || c.Redis.DialTimeout.D() != 5*time.Second || r.Name != "A" ||
		r.State != "paused" || r.SessionTTL.D() != time.Hour || r.MaxWait.D() != 2*time.Hour {
		t.Errorf("ApplyDefaults overwrote set values: %+v", c)
	}
	if c.Redis.ReadTimeout.D() != time.Second {
		t.Errorf("ReadTimeout = %v, want 1s", c.Redis.ReadTimeout)
	}
}

// validConfig is a Config that passes Validate after ApplyDefaults; each
// validation case breaks exactly one thing in it.
func validConfig() *config.Config {
	c := &config.Config{
		Issuer:  "https://queue.example.com",
		Redis:   config.Redis{URL: "redis://127.0.0.1:6379/0"},
		Secrets: config.Secrets{CookieKeys: []string{cookieKey, cookieKey2}},
		Admin:   config.Admin{Token: adminToken},
		Rooms: []config.Room{
			{ID: "launch", Admission: config.Admission{RatePerMinute: ptr(600.0)}},
			{ID: "vip"},
		},
		Clients: []config.Client{
			{ID: "shop", Secret: shopSecret, RedirectURIs: []string{"https://shop.example.com/cb"}, Room: "launch"},
			{ID: "spa", RedirectURIs: []string{"https://spa.example.com/cb"}, Room: "vip"},
		},
	}
	c.ApplyDefaults()
	return c
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(c *config.Config)
		want   []string // exact error lines; nil means valid
	}{
		{"valid base", func(c *config.Config) {}, nil},

		// issuer
		{"issuer required", func(c *config.Config) { c.Issuer = "" },
			[]string{"issuer: required"}},
		{"issuer not absolute", func(c *config.Config) { c.Issuer = "queue.example.com" },
			[]string{`issuer: must be an absolute URL, got "queue.example.com"`}},
		{"issuer http non-loopback", func(c *config.Config) { c.Issuer = "http://queue.example.com" },
			[]string{"issuer: must use https (http is allowed only for localhost and loopback addresses)"}},
		{"issuer http localhost", func(c *config.Config) { c.Issuer = "http://localhost:8080" }, nil},
		{"issuer http 127.0.0.1", func(c *config.Config) { c.Issuer = "http://127.0.0.1:8080" }, nil},
		{"issuer http ipv6 loopback", func(c *config.Config) { c.Issuer = "http://[::1]:8080" }, nil},
		{"issuer other scheme", func(c *config.Config) { c.Issuer = "ftp://queue.example.com" },
			[]string{`issuer: must use https, got scheme "ftp"`}},
		{"issuer query", func(c *config.Config) { c.Issuer = "https://queue.example.com?x=1" },
			[]string{"issuer: must not have a query"}},
		{"issuer fragment", func(c *config.Config) { c.Issuer = "https://queue.example.com#x" },
			[]string{"issuer: must not have a fragment"}},
		{"issuer user info", func(c *config.Config) { c.Issuer = "https://u:p@queue.example.com" },
			[]string{"issuer: must not contain user info"}},
		{"issuer trailing slash", func(c *config.Config) { c.Issuer = "https://queue.example.com/" },
			[]string{"issuer: must not end with /: RPs compare the issuer byte for byte"}},
		{"issuer with path", func(c *config.Config) { c.Issuer = "https://shop.example.com/_anteroom" }, nil},

		// listen
		{"listen required", func(c *config.Config) { c.Listen = "" },
			[]string{"listen: required"}},
		{"listen not host:port", func(c *config.Config) { c.Listen = "8080" },
			[]string{`listen: must be host:port, got "8080"`}},
		{"listen port not numeric", func(c *config.Config) { c.Listen = "127.0.0.1:http" },
			[]string{`listen: port must be a number from 0 to 65535, got "http"`}},
		{"listen port out of range", func(c *config.Config) { c.Listen = "127.0.0.1:65536" },
			[]string{`listen: port must be a number from 0 to 65535, got "65536"`}},
		{"listen all interfaces", func(c *config.Config) { c.Listen = ":0" }, nil},

		// debug
		{"debug listen loopback", func(c *config.Config) { c.Debug.Listen = "127.0.0.1:6060" }, nil},
		{"debug listen ipv6 loopback", func(c *config.Config) { c.Debug.Listen = "[::1]:6060" }, nil},
		{"debug listen not host:port", func(c *config.Config) { c.Debug.Listen = "6060" },
			[]string{`debug.listen: must be host:port, got "6060"`}},
		{"debug listen all interfaces", func(c *config.Config) { c.Debug.Listen = ":6060" },
			[]string{`debug.listen: must be a loopback address (127.0.0.1, ::1 or localhost), got ""`}},
		{"debug listen public", func(c *config.Config) { c.Debug.Listen = "10.0.0.1:6060" },
			[]string{`debug.listen: must be a loopback address (127.0.0.1, ::1 or localhost), got "10.0.0.1"`}},

		// ops
		{"ops listen loopback", func(c *config.Config) { c.Ops.Listen = "127.0.0.1:9090" }, nil},
		{"ops listen all interfaces", func(c *config.Config) { c.Ops.Listen = ":9090" }, nil},
		{"ops listen free port", func(c *config.Config) { c.Ops.Listen = "127.0.0.1:0"; c.Listen = "127.0.0.1:0" }, nil},
		{"ops listen not host:port", func(c *config.Config) { c.Ops.Listen = "9090" },
			[]string{`ops.listen: must be host:port, got "9090"`}},
		{"ops listen port not numeric", func(c *config.Config) { c.Ops.Listen = "127.0.0.1:ops" },
			[]string{`ops.listen: port must be a number from 0 to 65535, got "ops"`}},
		{"ops listen same as listen", func(c *config.Config) { c.Ops.Listen = "127.0.0.1:8080" },
			[]string{"ops.listen: must differ from listen (127.0.0.1:8080): the point is a listener the public proxy does not reach"}},
		{"ops listen overlaps listen on all interfaces", func(c *config.Config) { c.Ops.Listen = ":8080" },
			[]string{"ops.listen: must differ from listen (127.0.0.1:8080): the point is a listener the public proxy does not reach"}},
		{"ops listen same as debug", func(c *config.Config) { c.Ops.Listen = "127.0.0.1:6060"; c.Debug.Listen = "127.0.0.1:6060" },
			[]string{"ops.listen: must differ from debug.listen (127.0.0.1:6060)"}},

		// redis
		{"redis url and addrs", func(c *config.Config) { c.Redis.Addrs = []string{"10.0.0.1:6379"} },
			[]string{"redis: url and addrs are mutually exclusive"}},
		{"redis url scheme", func(c *config.Config) { c.Redis.URL = "http://127.0.0.1:6379" },
			[]string{`redis.url: scheme must be redis or rediss, got "http"`}},
		{"redis url unix", func(c *config.Config) { c.Redis.URL = "unix:///run/redis.sock" },
			[]string{`redis.url: scheme must be redis or rediss, got "unix"`}},
		{"redis url bad db", func(c *config.Config) { c.Redis.URL = "redis://127.0.0.1:6379/abc" },
			[]string{`redis.url: invalid database number: "abc"`}},
		{"redis url query", func(c *config.Config) { c.Redis.URL = "redis://127.0.0.1:6379/0?dial_timeout=3s" },
			[]string{"redis.url: query parameters are not supported: use the redis.* keys"}},
		{"redis url rediss", func(c *config.Config) { c.Redis.URL = "rediss://u:p@redis.example.com:6380/1" }, nil},
		{"redis nothing configured", func(c *config.Config) { c.Redis.URL = "" }, nil},
		{"redis master_name without addrs", func(c *config.Config) { c.Redis.URL = ""; c.Redis.MasterName = "mymaster" },
			[]string{"redis.master_name: requires redis.addrs (the Sentinel addresses)"}},
		{"redis sentinel", func(c *config.Config) {
			c.Redis.URL = ""
			c.Redis.MasterName = "mymaster"
			c.Redis.Addrs = []string{"10.0.0.1:26379", "[::1]:26379"}
		}, nil},
		{"redis addr without port", func(c *config.Config) { c.Redis.URL = ""; c.Redis.Addrs = []string{"10.0.0.1:6379", "10.0.0.2"} },
			[]string{`redis.addrs[1]: must be host:port, got "10.0.0.2"`}},
		{"redis addr without host", func(c *config.Config) { c.Redis.URL = ""; c.Redis.Addrs = []string{":6379"} },
			[]string{`redis.addrs[0]: must be host:port, got ":6379"`}},
		{"redis addr port zero", func(c *config.Config) { c.Redis.URL = ""; c.Redis.Addrs = []string{"h:0"} },
			[]string{`redis.addrs[0]: must be host:port, got "h:0"`}},
		{"redis dial_timeout", func(c *config.Config) { c.Redis.DialTimeout = 0 },
			[]string{"redis.dial_timeout: must be > 0"}},
		{"redis read_timeout", func(c *config.Config) { c.Redis.ReadTimeout = config.Duration(-time.Second) },
			[]string{"redis.read_timeout: must be > 0"}},
		{"redis write_timeout", func(c *config.Config) { c.Redis.WriteTimeout = 0 },
			[]string{"redis.write_timeout: must be > 0"}},
		{"redis request_timeout", func(c *config.Config) { c.Redis.RequestTimeout = config.Duration(-time.Second) },
			[]string{"redis.request_timeout: must be > 0"}},
		{"redis pool_size", func(c *config.Config) { c.Redis.PoolSize = -1 },
			[]string{"redis.pool_size: must be >= 0"}},

		// secrets
		{"cookie keys required", func(c *config.Config) { c.Secrets.CookieKeys = nil },
			[]string{"secrets.cookie_keys: at least one key is required"}},
		{"cookie key short", func(c *config.Config) { c.Secrets.CookieKeys[1] = "twelve bytes" },
			[]string{"secrets.cookie_keys[1]: must be at least 32 bytes, got 12"}},
		{"cookie key duplicate", func(c *config.Config) { c.Secrets.CookieKeys = append(c.Secrets.CookieKeys, cookieKey) },
			[]string{"secrets.cookie_keys[2]: duplicate of secrets.cookie_keys[0]"}},

		// admin
		{"admin token short", func(c *config.Config) { c.Admin.Token = "short" },
			[]string{"admin.token: must be at least 16 characters, got 5"}},
		{"admin token empty", func(c *config.Config) { c.Admin.Token = "" }, nil},

		// rooms
		{"rooms required", func(c *config.Config) { c.Rooms = nil; c.Clients = c.Clients[:0] },
			[]string{"rooms: at least one room is required", "clients: at least one client is required"}},
		{"room id required", func(c *config.Config) { c.Rooms[1].ID = "" },
			[]string{"rooms[1].id: required", `clients[1].room: unknown room "vip"`}},
		{"room id pattern", func(c *config.Config) { c.Rooms[1].ID = "VIP"; c.Clients[1].Room = "VIP" },
			[]string{`rooms[1].id: must match ^[a-z0-9][a-z0-9_-]{0,31}$ (it appears in Redis keys and cookie names), got "VIP"`}},
		{"room id too long", func(c *config.Config) {
			c.Rooms[1].ID = strings.Repeat("a", 33)
			c.Clients[1].Room = c.Rooms[1].ID
		}, []string{`rooms[1].id: must match ^[a-z0-9][a-z0-9_-]{0,31}$ (it appears in Redis keys and cookie names), got "` + strings.Repeat("a", 33) + `"`}},
		{"room id 32 chars", func(c *config.Config) {
			c.Rooms[1].ID = "a" + strings.Repeat("_-", 15) + "z"
			c.Clients[1].Room = c.Rooms[1].ID
		}, nil},
		{"room id duplicate", func(c *config.Config) { c.Rooms[1].ID = "launch" },
			[]string{`rooms[1].id: duplicate room id "launch" (also rooms[0])`, `clients[1].room: unknown room "vip"`}},
		{"room state", func(c *config.Config) { c.Rooms[0].State = "shut" },
			[]string{`rooms[0].state: must be one of open, paused, closed, passthrough, got "shut"`}},
		{"room state passthrough", func(c *config.Config) { c.Rooms[0].State = "passthrough" }, nil},
		{"rate zero", func(c *config.Config) { c.Rooms[0].Admission.RatePerMinute = ptr(0.0) },
			[]string{"rooms[0].admission.rate_per_minute: must be > 0"}},
		{"rate negative", func(c *config.Config) { c.Rooms[0].Admission.RatePerMinute = ptr(-1.0) },
			[]string{"rooms[0].admission.rate_per_minute: must be > 0"}},
		{"rate NaN", func(c *config.Config) { c.Rooms[0].Admission.RatePerMinute = ptr(math.NaN()) },
			[]string{"rooms[0].admission.rate_per_minute: must be > 0"}},
		{"rate too high", func(c *config.Config) { c.Rooms[0].Admission.RatePerMinute = ptr(1e6 + 1) },
			[]string{"rooms[0].admission.rate_per_minute: must be <= 1000000"}},
		{"rate at maximum", func(c *config.Config) { c.Rooms[0].Admission.RatePerMinute = ptr(1e6) }, nil},
		{"rate fractional", func(c *config.Config) { c.Rooms[0].Admission.RatePerMinute = ptr(0.5) }, nil},
		{"max_active zero", func(c *config.Config) { c.Rooms[0].Admission.MaxActive = ptr(0) },
			[]string{"rooms[0].admission.max_active: must be >= 1"}},
		{"max_active one", func(c *config.Config) { c.Rooms[0].Admission.MaxActive = ptr(1) }, nil},
		{"session_ttl too short", func(c *config.Config) { c.Rooms[1].SessionTTL = config.Duration(59 * time.Second) },
			[]string{"rooms[1].session_ttl: must be at least 1m, got 59s"}},
		{"max_wait too short", func(c *config.Config) { c.Rooms[0].MaxWait = config.Duration(30 * time.Second) },
			[]string{"rooms[0].max_wait: must be at least 1m, got 30s"}},
		{"room name too long", func(c *config.Config) { c.Rooms[0].Name = strings.Repeat("x", 201) },
			[]string{"rooms[0].name: must be at most 200 characters, got 201"}},
		{"room name 200 multibyte characters", func(c *config.Config) { c.Rooms[0].Name = strings.Repeat("é", 200) }, nil},

		// clients
		{"clients required", func(c *config.Config) { c.Clients = nil },
			[]string{"clients: at least one client is required"}},
		// A gate-only deployment: the gate brings a client per room.
		{"no clients with a gate", func(c *config.Config) { c.Clients = nil; c.Gate = validGate() }, nil},
		{"client id required", func(c *config.Config) { c.Clients[0].ID = "" },
			[]string{"clients[0].id: required"}},
		{"client id pattern", func(c *config.Config) { c.Clients[0].ID = "shop:eu" },
			[]string{`clients[0].id: must match ^[A-Za-z0-9._~-]{1,128}$, got "shop:eu"`}},
		{"client id duplicate", func(c *config.Config) { c.Clients[1].ID = "shop" },
			[]string{`clients[1].id: duplicate client id "shop" (also clients[0])`}},
		{"client secret short", func(c *config.Config) { c.Clients[0].Secret = "s3cret" },
			[]string{"clients[0].secret: must be at least 16 characters, got 6"}},
		{"redirect_uris required", func(c *config.Config) { c.Clients[0].RedirectURIs = nil },
			[]string{"clients[0].redirect_uris: at least one redirect URI is required"}},
		{"redirect uri relative", func(c *config.Config) { c.Clients[0].RedirectURIs = []string{"/cb"} },
			[]string{`clients[0].redirect_uris[0]: must be an absolute URL, got "/cb"`}},
		{"redirect uri custom scheme", func(c *config.Config) { c.Clients[0].RedirectURIs = []string{"com.example.app:/cb"} },
			[]string{`clients[0].redirect_uris[0]: must use http or https, got scheme "com.example.app"`}},
		{"redirect uri no host", func(c *config.Config) { c.Clients[0].RedirectURIs = []string{"https:///cb"} },
			[]string{`clients[0].redirect_uris[0]: must be an absolute URL, got "https:///cb"`}},
		{"redirect uri fragment", func(c *config.Config) {
			c.Clients[0].RedirectURIs = []string{"https://shop.example.com/cb", "https://shop.example.com/cb#x"}
		}, []string{"clients[0].redirect_uris[1]: must not have a fragment"}},
		{"redirect uri duplicate", func(c *config.Config) {
			c.Clients[0].RedirectURIs = []string{"https://shop.example.com/cb", "https://shop.example.com/cb"}
		}, []string{"clients[0].redirect_uris[1]: duplicate of clients[0].redirect_uris[0]"}},
		{"public client http", func(c *config.Config) { c.Clients[1].RedirectURIs = []string{"http://spa.example.com/cb"} },
			[]string{"clients[1].redirect_uris[0]: a public client must use https (http is allowed only for localhost and loopback addresses)"}},
		{"public client http loopback", func(c *config.Config) { c.Clients[1].RedirectURIs = []string{"http://127.0.0.1:51234/cb"} }, nil},
		{"confidential client http", func(c *config.Config) { c.Clients[0].RedirectURIs = []string{"http://shop.internal/cb"} }, nil},
		{"post logout uri not http", func(c *config.Config) { c.Clients[0].PostLogoutRedirectURIs = []string{"javascript:alert(1)"} },
			[]string{`clients[0].post_logout_redirect_uris[0]: must use http or https, got scheme "javascript"`}},
		{"post logout uri fragment", func(c *config.Config) {
			c.Clients[0].PostLogoutRedirectURIs = []string{"https://shop.example.com/", "https://shop.example.com/#bye"}
		}, []string{"clients[0].post_logout_redirect_uris[1]: must not have a fragment"}},
		{"client room required", func(c *config.Config) { c.Clients[0].Room = "" },
			[]string{"clients[0].room: required"}},
		{"client room unknown", func(c *config.Config) { c.Clients[0].Room = "lunch" },
			[]string{`clients[0].room: unknown room "lunch"`}},

		{"all problems in stable order", func(c *config.Config) {
			c.Issuer = ""
			c.Rooms[0].State = "x"
			c.Admin.Token = "x"
			c.Clients[1].Room = "nope"
			c.Listen = ""
		}, []string{
			"issuer: required",
			"listen: required",
			"admin.token: must be at least 16 characters, got 1",
			`rooms[0].state: must be one of open, paused, closed, passthrough, got "x"`,
			`clients[1].room: unknown room "nope"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			tt.mutate(c)
			got := errLines(c.Validate())
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Validate() lines:\n got: %q\nwant: %q", got, tt.want)
			}
		})
	}
}

func TestRedisURLErrorHidesPassword(t *testing.T) {
	t.Parallel()
	c := validConfig()
	c.Redis.URL = "redis://user:hunter2@bad host:6379"
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate() = nil for an unparsable redis.url")
	}
	if !strings.HasPrefix(err.Error(), "redis.url: ") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Validate() = %q, want a redis.url error without the password", err)
	}
}

// minimal wraps a YAML fragment into an otherwise valid file, so that each
// case below exercises just the fragment.
func minimal(extra string) string {
	return `issuer: https://queue.example.com
secrets: {cookie_keys: ["` + cookieKey + `"]}
rooms: [{id: r1}]
clients: [{id: c1, secret: "` + shopSecret + `", redirect_uris: ["https://a.example/cb"], room: r1}]
` + extra
}

// edit replaces old with new in s, failing loudly if old is absent so that
// a case cannot silently test the unedited file.
func edit(s, old, new string) string {
	if !strings.Contains(s, old) {
		panic("edit: " + old + " not found")
	}
	return strings.Replace(s, old, new, 1)
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		env  map[string]string
		want []string // exact error lines
	}{
		{"empty file", "", nil, []string{"config is empty"}},
		{"only comments", "# nothing here\n", nil, []string{"config is empty"}},
		{"empty document", "---\n", nil, []string{"config is empty"}},
		{"null document", "~\n", nil, []string{"config is empty"}},
		{"two documents", minimal("") + "---\nissuer: https://other.example\n", nil,
			[]string{"config must be a single YAML document, found more than one"}},
		{"top level list", "- issuer: x\n", nil, []string{"config must be a YAML mapping, got a list"}},

		{"unknown top-level key", minimal("gates: {}\n"), nil, []string{"gates: unknown key"}},
		{"unknown key in a room", `issuer: https://queue.example.com
secrets: {cookie_keys: ["` + cookieKey + `"]}
rooms:
  - id: r0
  - id: r1
    admision: {rate_per_minute: 5}
clients: [{id: c1, secret: "` + shopSecret + `", redirect_uris: ["https://a.example/cb"], room: r1}]
`, nil, []string{"rooms[1].admision: unknown key"}},
		{"unknown key nested in a room", edit(minimal(""), "rooms: [{id: r1}]", "rooms: [{id: r1, admission: {rate: 5}}]"), nil,
			[]string{"rooms[0].admission.rate: unknown key"}},
		{"unknown key in a list element", edit(minimal(""), "room: r1}", "room: r1, redirect_uri: x}"), nil,
			[]string{"clients[0].redirect_uri: unknown key"}},
		{"unknown key in redis", minimal("redis: {url: redis://h, tls: true}\n"), nil,
			[]string{"redis.tls: unknown key"}},
		{"several unknown keys", minimal("queue: 1\nlisten: x:1\nlsiten: y\n"), nil,
			[]string{"queue: unknown key", "lsiten: unknown key"}},
		{"duplicate key", minimal("listen: a:1\nlisten: b:2\n"), nil, []string{"listen: duplicate key"}},

		{"bad duration", edit(minimal(""), "{id: r1}", "{id: r1, session_ttl: 30 minutes}"), nil,
			[]string{`rooms[0].session_ttl: invalid duration "30 minutes" (want e.g. 90s, 30m, 1h30m)`}},
		{"duration without unit", minimal("redis: {url: redis://h, dial_timeout: 30}\n"), nil,
			[]string{`redis.dial_timeout: invalid duration "30" (want e.g. 90s, 30m, 1h30m)`}},
		{"duration as list", edit(minimal(""), "{id: r1}", "{id: r1, max_wait: [1h]}"), nil,
			[]string{"rooms[0].max_wait: invalid duration: expected a string such as 30m"}},
		{"rate not a number", edit(minimal(""), "{id: r1}", "{id: r1, admission: {rate_per_minute: fast}}"), nil,
			[]string{`rooms[0].admission.rate_per_minute: expected a number, got "fast"`}},
		{"max_active not an integer", edit(minimal(""), "{id: r1}", "{id: r1, admission: {max_active: 2.5}}"), nil,
			[]string{`rooms[0].admission.max_active: expected an integer, got "2.5"`}},
		{"pool_size not an integer", minimal("redis: {url: redis://h, pool_size: many}\n"), nil,
			[]string{`redis.pool_size: expected an integer, got "many"`}},
		{"require_pkce not a bool", edit(minimal(""), "room: r1}", "room: r1, require_pkce: maybe}"), nil,
			[]string{`clients[0].require_pkce: expected true or false, got "maybe"`}},
		{"cookie_keys not a list", edit(minimal(""), `{cookie_keys: ["`+cookieKey+`"]}`, `{cookie_keys: "`+cookieKey+`"}`), nil,
			[]string{`secrets.cookie_keys: expected a list, got "` + cookieKey + `"`}},
		{"rooms not a list", edit(minimal(""), "rooms: [{id: r1}]", "rooms: {id: r1}"), nil,
			[]string{"rooms: expected a list, got a mapping"}},
		{"redis not a mapping", minimal("redis: redis://h\n"), nil,
			[]string{`redis: expected a mapping, got "redis://h"`}},
		{"issuer not a string", edit(minimal(""), "issuer: https://queue.example.com", "issuer: [a]"), nil,
			[]string{"issuer: expected a string, got a list"}},
		{"validation after decoding", edit(minimal(""), "room: r1}", "room: lunch}"), nil,
			[]string{`clients[0].room: unknown room "lunch"`}},
		{"yaml syntax error", "issuer: [unclosed\n", nil, []string{"yaml: line 1: did not find expected ',' or ']'"}},

		{"unset variable", designConfig, map[string]string{"ANTEROOM_ADMIN_TOKEN": adminToken, "SHOP_CLIENT_SECRET": shopSecret},
			[]string{"secrets.cookie_keys[0]: environment variable ANTEROOM_COOKIE_KEY is not set"}},
		{"all unset variables", designConfig, nil, []string{
			"secrets.cookie_keys[0]: environment variable ANTEROOM_COOKIE_KEY is not set",
			"admin.token: environment variable ANTEROOM_ADMIN_TOKEN is not set",
			"clients[0].secret: environment variable SHOP_CLIENT_SECRET is not set",
		}},
		{"two unset in one value", edit(minimal(""), "https://a.example/cb", "https://${HOST}/${PATH}"), nil, []string{
			"clients[0].redirect_uris[0]: environment variable HOST is not set",
			"clients[0].redirect_uris[0]: environment variable PATH is not set",
		}},
		{"invalid reference", minimal("admin: {token: \"${1TOKEN}\"}\n"), nil,
			[]string{"admin.token: invalid environment variable reference ${1TOKEN}"}},
		{"unterminated reference", minimal("admin: {token: \"${TOKEN\"}\n"), nil,
			[]string{"admin.token: unterminated ${ (write $$ for a literal $)"}},
		{"keys are not substituted", minimal("${KEY}: x\n"), map[string]string{"KEY": "listen"},
			[]string{"${KEY}: unknown key"}},
		{"substituted rate still validated", edit(minimal(""), "rooms: [{id: r1}]", "rooms:\n  - id: r1\n    admission:\n      rate_per_minute: ${RATE}"),
			map[string]string{"RATE": "0"}, []string{"rooms[0].admission.rate_per_minute: must be > 0"}},
		{"substituted rate must be a number", edit(minimal(""), "rooms: [{id: r1}]", "rooms:\n  - id: r1\n    admission:\n      rate_per_minute: ${RATE}"),
			map[string]string{"RATE": "lots"}, []string{`rooms[0].admission.rate_per_minute: expected a number, got "lots"`}},

		{"alias cycle through merge", edit(minimal(""), "rooms: [{id: r1}]", "rooms: [&x {<<: *x, id: r1}]"), nil,
			[]string{"rooms[0].<<: alias *x refers to itself"}},
		{"merge of a scalar", edit(minimal(""), "rooms: [{id: r1}]", "rooms: [{<<: 5, id: r1}]"), nil,
			[]string{`rooms[0].<<: expected a mapping or a list of mappings, got "5"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := config.Parse([]byte(tt.src), env(tt.env))
			if err == nil {
				t.Fatalf("Parse() = %+v, nil; want error %q", c, tt.want)
			}
			if c != nil {
				t.Errorf("Parse() returned a config with an error")
			}
			if got := errLines(err); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse() error lines:\n got: %q\nwant: %q", got, tt.want)
			}
		})
	}
}

func TestParseEnvSubstitution(t *testing.T) {
	t.Parallel()
	vars := map[string]string{
		"HOST":  "shop.example.com",
		"PORT":  "8443",
		"RATE":  "120.5",
		"CAP":   "50",
		"TTL":   "45m",
		"PKCE":  "true",
		"EMPTY": "",
		"TRICK": "a: b\n- c # not a comment",
	}
	// Block style: in flow style ({...}) a plain ${X} would end the flow
	// mapping at its }, so there it must be quoted.
	src := `issuer: https://queue.example.com
listen: 127.0.0.1:${PORT}
secrets: {cookie_keys: ["` + cookieKey + `"]}
admin:
  token: "${TRICK}"
rooms:
  - id: r1
    message: "Price: $$5, pa$word, ${HOST}:${PORT}${EMPTY}"
    admission:
      rate_per_minute: ${RATE}
      max_active: "${CAP}"
    session_ttl: ${TTL}
clients:
  - id: c1
    secret: "` + shopSecret + `"
    redirect_uris: ["https://${HOST}:${PORT}/cb"]
    room: r1
    require_pkce: ${PKCE}
`
	c, err := config.Parse([]byte(src), env(vars))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"mixed text and two references", c.Clients[0].RedirectURIs[0], "https://shop.example.com:8443/cb"},
		{"$$ and lone $", c.Rooms[0].Message, "Price: $5, pa$word, shop.example.com:8443"},
		{"plain scalar", c.Listen, "127.0.0.1:8443"},
		{"value is never parsed as YAML", c.Admin.Token, vars["TRICK"]},
		{"number from plain reference", *c.Rooms[0].Admission.RatePerMinute, 120.5},
		{"number from quoted reference", *c.Rooms[0].Admission.MaxActive, 50},
		{"duration from reference", c.Rooms[0].SessionTTL.D(), 45 * time.Minute},
		{"bool from reference", c.Clients[0].RequirePKCE, true},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s: got %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}
}

func TestParseStringsKeepTheirText(t *testing.T) {
	t.Parallel()
	// Plain scalars that YAML would resolve to numbers or booleans are
	// strings as written when the field is a string.
	src := strings.Replace(minimal("admin: {token: 0x0123456789abcdef}\n"), "{id: r1}", "{id: r1, name: 1e3, message: true}", 1)
	c, err := config.Parse([]byte(src), env(nil))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if c.Admin.Token != "0x0123456789abcdef" || c.Rooms[0].Name != "1e3" || c.Rooms[0].Message != "true" {
		t.Errorf("token=%q name=%q message=%q", c.Admin.Token, c.Rooms[0].Name, c.Rooms[0].Message)
	}
}

func TestParseAnchorsAndMergeKeys(t *testing.T) {
	t.Parallel()
	src := `issuer: https://queue.example.com
secrets: {cookie_keys: ["` + cookieKey + `"]}
rooms:
  - &base
    id: a
    admission: {rate_per_minute: 60, max_active: 10}
    max_wait: 2h
  - <<: *base
    id: b
    admission: {max_active: 5}
clients:
  - id: c1
    secret: "` + shopSecret + `"
    redirect_uris: &uris ["https://a.example/cb"]
    room: a
  - {id: c2, secret: "` + shopSecret + `", redirect_uris: *uris, room: b}
`
	c, err := config.Parse([]byte(src), env(nil))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	b, ok := c.Room("b")
	if !ok {
		t.Fatal(`Room("b") not found`)
	}
	if b.MaxWait.D() != 2*time.Hour {
		t.Errorf("merged max_wait = %v, want 2h", b.MaxWait)
	}
	// An explicit key replaces the merged value as a whole.
	if b.Admission.RatePerMinute != nil || b.Admission.MaxActive == nil || *b.Admission.MaxActive != 5 {
		t.Errorf("admission = %+v, want only max_active 5", b.Admission)
	}
	if got := c.Clients[1].RedirectURIs; !reflect.DeepEqual(got, []string{"https://a.example/cb"}) {
		t.Errorf("aliased redirect_uris = %q", got)
	}
}

func TestLookups(t *testing.T) {
	t.Parallel()
	c := validConfig()
	r, ok := c.Room("vip")
	if !ok || r.ID != "vip" {
		t.Fatalf(`Room("vip") = %v, %v`, r, ok)
	}
	r.State = "closed"
	if c.Rooms[1].State != "closed" {
		t.Error("Room returned a copy, want a pointer into Rooms")
	}
	if r, ok := c.Room("lunch"); ok || r != nil {
		t.Errorf(`Room("lunch") = %v, %v; want nil, false`, r, ok)
	}
	cl, ok := c.Client("spa")
	if !ok || cl.ID != "spa" || !cl.Public() {
		t.Fatalf(`Client("spa") = %+v, %v`, cl, ok)
	}
	if cl, ok := c.Client("nope"); ok || cl != nil {
		t.Errorf(`Client("nope") = %v, %v; want nil, false`, cl, ok)
	}
}

func TestRedisOptions(t *testing.T) {
	t.Parallel()
	timeouts := config.Redis{
		DialTimeout:  config.Duration(3 * time.Second),
		ReadTimeout:  config.Duration(2 * time.Second),
		WriteTimeout: config.Duration(4 * time.Second),
		PoolSize:     7,
	}
	with := func(f func(r *config.Redis)) config.Redis {
		r := timeouts
		f(&r)
		return r
	}

	t.Run("url", func(t *testing.T) {
		t.Parallel()
		o, err := with(func(r *config.Redis) { r.URL = "redis://alice:pw@10.0.0.5:6380/3" }).Options()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(o.Addrs, []string{"10.0.0.5:6380"}) || o.DB != 3 || o.Username != "alice" ||
			o.Password != "pw" || o.TLSConfig != nil || o.MasterName != "" || o.IsClusterMode {
			t.Errorf("options = %+v", o)
		}
		if o.DialTimeout != 3*time.Second || o.ReadTimeout != 2*time.Second || o.WriteTimeout != 4*time.Second || o.PoolSize != 7 {
			t.Errorf("timeouts/pool = %v %v %v %d", o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolSize)
		}
		if !o.ContextTimeoutEnabled {
			t.Error("ContextTimeoutEnabled = false: request deadlines would not reach Redis calls")
		}
		if o.DialerRetries != 1 {
			t.Errorf("DialerRetries = %d, want 1 (go-redis retries the command already)", o.DialerRetries)
		}
	})
	t.Run("url credentials overridden", func(t *testing.T) {
		t.Parallel()
		o, err := with(func(r *config.Redis) {
			r.URL = "redis://alice:pw@h"
			r.Username = "bob"
			r.Password = "secret"
		}).Options()
		if err != nil {
			t.Fatal(err)
		}
		if o.Username != "bob" || o.Password != "secret" || o.Addrs[0] != "h:6379" {
			t.Errorf("username=%q password=%q addrs=%q", o.Username, o.Password, o.Addrs)
		}
	})
	t.Run("rediss", func(t *testing.T) {
		t.Parallel()
		o, err := with(func(r *config.Redis) { r.URL = "rediss://redis.example.com:6380" }).Options()
		if err != nil {
			t.Fatal(err)
		}
		if o.TLSConfig == nil {
			t.Fatal("TLSConfig = nil for rediss://")
		}
		if o.TLSConfig.ServerName != "redis.example.com" {
			t.Errorf("ServerName = %q", o.TLSConfig.ServerName)
		}
	})
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		o, err := with(func(r *config.Redis) { r.Addrs = []string{"10.0.0.1:6379"}; r.Password = "pw" }).Options()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(o.Addrs, []string{"10.0.0.1:6379"}) || !o.IsClusterMode || o.MasterName != "" ||
			o.Password != "pw" || o.PoolSize != 7 || o.ReadTimeout != 2*time.Second {
			t.Errorf("options = %+v", o)
		}
	})
	t.Run("sentinel", func(t *testing.T) {
		t.Parallel()
		o, err := with(func(r *config.Redis) {
			r.Addrs = []string{"10.0.0.1:26379", "10.0.0.2:26379"}
			r.MasterName = "mymaster"
		}).Options()
		if err != nil {
			t.Fatal(err)
		}
		if o.MasterName != "mymaster" || o.IsClusterMode || len(o.Addrs) != 2 || o.DialTimeout != 3*time.Second {
			t.Errorf("options = %+v", o)
		}
	})
	t.Run("errors", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			r    config.Redis
			want string
		}{
			{config.Redis{}, "redis: url or addrs is required"},
			{config.Redis{URL: "redis://h", Addrs: []string{"h:1"}}, "redis: url and addrs are mutually exclusive"},
			{config.Redis{URL: "redis://h/x/y"}, "redis.url: invalid URL path: /x/y"},
		} {
			if _, err := tc.r.Options(); err == nil || err.Error() != tc.want {
				t.Errorf("Options(%+v) error = %v, want %q", tc.r, err, tc.want)
			}
		}
	})
}

func TestDuration(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{30 * time.Minute, "30m"},
		{6 * time.Hour, "6h"},
		{90 * time.Minute, "1h30m"},
		{time.Hour + 5*time.Second, "1h0m5s"},
		{90 * time.Second, "1m30s"},
		{1500 * time.Millisecond, "1.5s"},
		{0, "0s"},
	} {
		if got := config.Duration(tc.d).String(); got != tc.want {
			t.Errorf("Duration(%v).String() = %q, want %q", tc.d, got, tc.want)
		}
	}
	out, err := yaml.Marshal(struct {
		D config.Duration `yaml:"d"`
	}{config.Duration(90 * time.Minute)})
	if err != nil || string(out) != "d: 1h30m\n" {
		t.Errorf("Marshal = %q, %v; want %q", out, err, "d: 1h30m\n")
	}
	var back struct {
		D config.Duration `yaml:"d"`
	}
	if err := yaml.Unmarshal(out, &back); err != nil || back.D.D() != 90*time.Minute {
		t.Errorf("Unmarshal(%q) = %v, %v", out, back.D, err)
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()

	good := filepath.Join(dir, "anteroom.yaml")
	if err := os.WriteFile(good, []byte(minimal("listen: 0.0.0.0:9090\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(good)
	if err != nil {
		t.Fatalf("Load(%s): %v", good, err)
	}
	if c.Listen != "0.0.0.0:9090" || c.Rooms[0].ID != "r1" {
		t.Errorf("Load = %+v", c)
	}

	missing := filepath.Join(dir, "missing.yaml")
	_, err = config.Load(missing)
	if err == nil || !strings.Contains(err.Error(), missing) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v; want an os.ErrNotExist error naming %s", err, missing)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(minimal("queue: 1\nlisten: nope\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = config.Load(bad)
	want := []string{bad + ": queue: unknown key"}
	if got := errLines(err); !reflect.DeepEqual(got, want) {
		t.Errorf("Load(bad) lines = %q, want %q", got, want)
	}

	invalid := filepath.Join(dir, "invalid.yaml")
	if err := os.WriteFile(invalid, []byte(minimal("listen: nope\nadmin: {token: x}\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = config.Load(invalid)
	want = []string{
		invalid + `: listen: must be host:port, got "nope"`,
		invalid + ": admin.token: must be at least 16 characters, got 1",
	}
	if got := errLines(err); !reflect.DeepEqual(got, want) {
		t.Errorf("Load(invalid) lines = %q, want %q", got, want)
	}
}
