package e2e

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"testing"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/anteroom/anteroom/config"
)

// The names of Anteroom's keys in Redis are a deployment's data: a release
// that renamed a kind would not find what the instances before it wrote
// (every queue, token and signing key lost in a rolling upgrade). This
// runs a visitor through the queue to a refresh token and a second login,
// and a second visitor to a revoked grant, and pins the full name of every
// key the instance wrote, as the "State in Redis" table of docs/architecture.md gives
// them.
func TestRedisKeyNamesArePinned(t *testing.T) {
	e := newEnv(t, false, func(c *config.Config) { c.Limits.JoinsPerIPPerMinute = 600 })
	e.start()
	r := e.rp(clientID, secret, rpCallback)
	r.oauth.Scopes = append(r.oauth.Scopes, gooidc.ScopeOfflineAccess)
	b := e.browser()
	l := newLogin()
	waitURL := queue(t, b, r, l)
	queue(t, b, r, newLogin()) // the same ticket's second login
	e.advance(1)
	resp, _ := visit(t, b, http.MethodPost, waitURL+"/continue")
	code := codeFrom(t, resp, l)
	tok, err := r.oauth.Exchange(r.ctx, code, oauth2.VerifierOption(l.verifier))
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("exchange: %v (refresh token %q)", err, tok.RefreshToken)
	}
	// A second visitor's grant is revoked; the first one's tokens stay.
	code2, l2 := e.admittedCode(r)
	tok2, err := r.oauth.Exchange(r.ctx, code2, oauth2.VerifierOption(l2.verifier))
	if err != nil || tok2.RefreshToken == "" {
		t.Fatalf("second exchange: %v (refresh token %q)", err, tok2.RefreshToken)
	}
	if status := revoke(t, e, tok2.RefreshToken); status != http.StatusOK {
		t.Fatalf("revoke: %d", status)
	}
	// A room and a client created at run time (issue 16).
	if code, doc := e.admin(http.MethodPost, "/admin/v1/rooms", `{"id": "extra"}`); code != http.StatusCreated {
		t.Fatalf("create room: %d %v", code, doc)
	}
	if code, doc := e.admin(http.MethodPost, "/admin/v1/clients", `{"id": "extra-shop", "room": "extra", "redirect_uris": ["https://extra.example/cb"]}`); code != http.StatusCreated {
		t.Fatalf("create client: %d %v", code, doc)
	}

	const (
		room   = `anteroom:\{r:(launch|extra)\}:`
		id     = `[A-Za-z0-9_-]+`
		number = `[0-9a-z]+` // base 36 for buckets and windows
	)
	// kinds: the name of each kind of key, and whether this flow must
	// have written one.
	type kind struct {
		name     string
		re       *regexp.Regexp
		required bool
	}
	kinds := []kind{
		{"room", regexp.MustCompile(`^` + room + `room$`), true},
		{"tail", regexp.MustCompile(`^` + room + `tail$`), true},
		{"serving", regexp.MustCompile(`^` + room + `serving$`), true},
		{"active", regexp.MustCompile(`^` + room + `active$`), true},
		{"binding bucket", regexp.MustCompile(`^` + room + `b:` + number + `$`), true},
		{"ticket", regexp.MustCompile(`^` + room + `t:` + id + `$`), true},
		{"join limit", regexp.MustCompile(`^` + room + `ip:` + number + `$`), true},
		{"logins per ticket", regexp.MustCompile(`^` + room + `n:` + id + `$`), true},
		{"auth request", regexp.MustCompile(`^anteroom:ar:` + id + `$`), true},
		{"access token", regexp.MustCompile(`^anteroom:at:` + id + `$`), true},
		{"refresh token", regexp.MustCompile(`^anteroom:rt:[0-9a-f]{32}$`), true},
		{"revoked grant", regexp.MustCompile(`^anteroom:rg:` + id + `$`), true},
		{"signing keys", regexp.MustCompile(`^anteroom:keys$`), true},
		{"room definition", regexp.MustCompile(`^` + room + `def$`), true},
		{"runtime rooms", regexp.MustCompile(`^anteroom:catalog:rooms$`), true},
		{"runtime clients", regexp.MustCompile(`^anteroom:catalog:clients$`), true},
		{"catalog version", regexp.MustCompile(`^anteroom:catalog:version$`), true},
		{"audit log", regexp.MustCompile(`^anteroom:audit$`), true},
		// Written as time or the room's kind has them.
		{"lease", regexp.MustCompile(`^` + room + `lease$`), false},
		{"reached", regexp.MustCompile(`^` + room + `reached$`), false},
		{"liveness", regexp.MustCompile(`^` + room + `live:` + number + `$`), false},
		{"skipped", regexp.MustCompile(`^` + room + `skipped$`), false},
		{"returned", regexp.MustCompile(`^` + room + `returned$`), false},
		{"drawn", regexp.MustCompile(`^` + room + `drawn$`), false},
		{"arrivals", regexp.MustCompile(`^` + room + `arr:` + number + `$`), false},
		{"challenge mode", regexp.MustCompile(`^` + room + `challenge$`), false},
		// Priority lanes and scheduled events (issue 16).
		{"lane", regexp.MustCompile(`^` + room + `lane:[a-z0-9_-]+$`), false},
		{"priority code", regexp.MustCompile(`^` + room + `code:[0-9a-f]{32}$`), false},
		{"code counts", regexp.MustCompile(`^` + room + `codes$`), false},
		{"events", regexp.MustCompile(`^` + room + `events$`), false},
		// Only in a room with an identity provider (identity_e2e_test.go).
		{"person", personKey, false},
	}
	all, err := e.rdb.Keys(context.Background(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(all)
	seen := map[string]bool{}
	for _, k := range all {
		i := slices.IndexFunc(kinds, func(x kind) bool { return x.re.MatchString(k) })
		if i < 0 {
			t.Errorf("key %q is of no pinned kind", k)
			continue
		}
		seen[kinds[i].name] = true
	}
	for _, x := range kinds {
		if x.required && !seen[x.name] {
			t.Errorf("no %s key (%s) among %q", x.name, x.re, all)
		}
	}
}
