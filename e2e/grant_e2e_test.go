package e2e

// Grant revocation, refresh-token rotation with a "used" mark, and the
// refresh token's id for RFC 7009 revocation: the cases where revoking too
// much or too little would hurt.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"
)

// rtKey is the Redis key of a refresh token (oidc.refreshTokenKey).
func rtKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "anteroom:rt:" + hex.EncodeToString(sum[:16])
}

// offlineTokens admits a new visitor and exchanges the code for tokens with
// a refresh token; it returns the access and refresh tokens.
func offlineTokens(t *testing.T, e *env, r *rp) (access, refresh string) {
	t.Helper()
	l := newLogin()
	code := e.admitted(r.authURL(l, oauth2.SetAuthURLParam("scope", "openid offline_access")), l)
	status, doc, _ := e.tokenCall(clientID, secret, codeForm(code, l.verifier))
	access, _ = doc["access_token"].(string)
	refresh, _ = doc["refresh_token"].(string)
	if status != http.StatusOK || access == "" || refresh == "" {
		t.Fatalf("code exchange: %d %v", status, doc)
	}
	return access, refresh
}

// envWithHook starts an instance whose Redis client runs hook.
func envWithHook(t *testing.T, hook redis.Hook) *env {
	t.Helper()
	e := newEnv(t, false, nil)
	rdb := redis.NewClient(&redis.Options{Addr: redisServer.Addr()})
	t.Cleanup(func() { rdb.Close() })
	rdb.AddHook(hook)
	e.startOn(rdb)
	return e
}

// failAccessTokenWrites fails, while armed, the pipeline that stores a new
// access token: the store failing between the refresh token's "used" mark
// and the new tokens (in a Cluster the two keys live on different nodes).
type failAccessTokenWrites struct{ armed atomic.Bool }

func (h *failAccessTokenWrites) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *failAccessTokenWrites) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return next
}
func (h *failAccessTokenWrites) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if h.armed.Load() {
			for _, c := range cmds {
				if args := c.Args(); len(args) > 1 && strings.EqualFold(c.Name(), "set") {
					if k, _ := args[1].(string); strings.HasPrefix(k, "anteroom:at:") {
						h.armed.Store(false)
						err := errors.New("injected: node of the access token's slot unreachable")
						for _, c := range cmds {
							c.SetErr(err)
						}
						return err
					}
				}
			}
		}
		return next(ctx, cmds)
	}
}

// A refresh that fails after the old token was marked used answers 503
// temporarily_unavailable with Retry-After, which tells the client to try
// again. The retry presents the same refresh token: it must not count as a
// reuse (which would revoke the grant), so a failed rotation puts the
// token back as it was.
func TestRefreshRetriedAfterAStoreFailureKeepsTheGrant(t *testing.T) {
	hook := &failAccessTokenWrites{}
	e := envWithHook(t, hook)
	access, refresh := offlineTokens(t, e, e.rp(clientID, secret, rpCallback))

	hook.armed.Store(true)
	status, doc, hdr := e.tokenCall(clientID, secret, refreshForm(refresh))
	if status != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Fatalf("refresh while the store fails: %d %v, want 503 with Retry-After", status, doc)
	}
	// The client does as it was told.
	if status, doc, _ := e.tokenCall(clientID, secret, refreshForm(refresh)); status != http.StatusOK {
		t.Errorf("the retried refresh: %d %v, want 200", status, doc)
	}
	if active := introspect(t, e, access); active != true {
		t.Errorf("the grant's access token after a retried refresh: active=%v", active)
	}
}

// replaySetGet, while armed, sends a SET … GET twice and answers with the
// second reply: what the caller sees when the first reply was lost and
// go-redis sent the command again.
type replaySetGet struct{ armed atomic.Bool }

func (h *replaySetGet) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *replaySetGet) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		args := cmd.Args()
		if h.armed.Load() && strings.EqualFold(cmd.Name(), "set") && strings.EqualFold(fmt.Sprint(args[len(args)-1]), "get") {
			h.armed.Store(false)
			if err := next(ctx, cmd); err != nil {
				return err
			}
		}
		return next(ctx, cmd)
	}
}
func (h *replaySetGet) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// A rotation whose SET … GET reply was lost and which go-redis sent again
// finds the used mark it wrote itself: that is no reuse, and the refresh
// succeeds without revoking anything.
func TestRefreshWhoseRotationWasSentTwiceKeepsTheGrant(t *testing.T) {
	hook := &replaySetGet{}
	e := envWithHook(t, hook)
	access, refresh := offlineTokens(t, e, e.rp(clientID, secret, rpCallback))

	hook.armed.Store(true)
	status, doc, _ := e.tokenCall(clientID, secret, refreshForm(refresh))
	next, _ := doc["refresh_token"].(string)
	if status != http.StatusOK || next == "" || hook.armed.Load() {
		t.Fatalf("refresh whose rotation was sent twice: %d %v (replayed: %v)", status, doc, !hook.armed.Load())
	}
	if active := introspect(t, e, access); active != true {
		t.Errorf("the grant's access token after a rotation sent twice: active=%v", active)
	}
	if status, doc, _ := e.tokenCall(clientID, secret, refreshForm(next)); status != http.StatusOK {
		t.Errorf("the new refresh token: %d %v", status, doc)
	}
}

// The library looks a code or refresh token up before it checks that the
// presenting client is the one it was issued to (and, for a public client,
// before PKCE). A second use revokes the grant only once those checks
// passed: whoever sees a spent code or a rotated-out refresh token of the
// confidential client (Referer, history, logs) cannot revoke its grant by
// naming the public client, with no secret and no verifier (RFC 6749
// §10.5, §6).
func TestAnotherClientCannotRevokeAConfidentialClientsGrant(t *testing.T) {
	e := negativeEnv(t)
	r := e.rp(clientID, secret, rpCallback)

	t.Run("spent code", func(t *testing.T) {
		l := newLogin()
		code := e.admitted(r.authURL(l), l)
		_, doc, _ := e.tokenCall(clientID, secret, codeForm(code, l.verifier))
		access, _ := doc["access_token"].(string)
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {publicRP}, "client_id": {publicAppID}}
		if status, doc, _ := e.tokenCall(publicAppID, "", form); status == http.StatusOK {
			t.Fatalf("the public client redeemed another client's code: %v", doc)
		}
		if active := introspect(t, e, access); active != true {
			t.Errorf("the confidential client's token after the public client named its spent code: active=%v", active)
		}
	})
	t.Run("rotated-out refresh token", func(t *testing.T) {
		_, old := offlineTokens(t, e, r)
		status, doc, _ := e.tokenCall(clientID, secret, refreshForm(old))
		access, _ := doc["access_token"].(string)
		if status != http.StatusOK {
			t.Fatalf("refresh: %d %v", status, doc)
		}
		form := refreshForm(old)
		form.Set("client_id", publicAppID)
		if status, doc, _ := e.tokenCall(publicAppID, "", form); status == http.StatusOK {
			t.Fatalf("the public client refreshed another client's token: %v", doc)
		}
		if active := introspect(t, e, access); active != true {
			t.Errorf("the confidential client's token after the public client named its old refresh token: active=%v", active)
		}
	})
}

// /revoke revokes the token presented (RFC 7009: "the token that the
// client wants to get revoked"), not a refresh token named by its Redis
// key, which is how GetRefreshTokenInfo names one to RevokeToken.
func TestRevokeWantsTheTokenNotItsStorageKey(t *testing.T) {
	e := negativeEnv(t)
	r := e.rp(clientID, secret, rpCallback)
	_, refresh := offlineTokens(t, e, r)
	if status := revoke(t, e, rtKey(refresh)); status != http.StatusOK {
		t.Fatalf("revoke: %d", status)
	}
	if status, doc, _ := e.tokenCall(clientID, secret, refreshForm(refresh)); status != http.StatusOK {
		t.Errorf("refresh token after revoking a string that is not it: %d %v", status, doc)
	}
}

// prevTokenRecord is tokenRecord as the release before grants (65e5600)
// decodes it; its readToken accepts a record that decodes, whose exp is
// ahead and whose ticket's session is live, and its
// CreateAccessAndRefreshTokens then DELs the key and mints new tokens.
type prevTokenRecord struct {
	ClientID string    `json:"client_id"`
	Scopes   []string  `json:"scopes"`
	Expires  time.Time `json:"exp"`
	AuthTime time.Time `json:"auth_time"`
	Queue    struct {
		Subject string `json:"sub"`
	} `json:"queue"`
	AccessID string `json:"access_id,omitempty"`
}

// Rotation overwrites the old refresh token with a "used" mark. During a
// rolling upgrade an instance of the previous release (which knows no
// "used") must read that mark as dead, or a stolen rotated-out token would
// be accepted there once more, minting tokens without a grant: the mark's
// exp is zero, its real expiry in a field of its own.
func TestRotatedOutRefreshTokenIsDeadToThePreviousRelease(t *testing.T) {
	e := negativeEnv(t)
	r := e.rp(clientID, secret, rpCallback)
	_, old := offlineTokens(t, e, r)
	if status, doc, _ := e.tokenCall(clientID, secret, refreshForm(old)); status != http.StatusOK {
		t.Fatalf("refresh: %d %v", status, doc)
	}
	raw, err := e.rdb.Get(context.Background(), rtKey(old)).Bytes()
	if errors.Is(err, redis.Nil) {
		return // deleted: the previous release refuses it
	}
	if err != nil {
		t.Fatal(err)
	}
	var prev prevTokenRecord
	if json.Unmarshal(raw, &prev) == nil && prev.ClientID == clientID && e.clock.Now().Before(prev.Expires) {
		t.Errorf("the rotated-out refresh token's record reads as a live refresh token to the previous release: %s", raw)
	}
}

// A refresh token minted by the previous release has no grant. Its first
// rotation gives the chain one, so that reusing the rotated-out token
// revokes its successors (RFC 9700 §4.14.2) for grants that started before
// the upgrade too.
func TestReuseOfAPreviousReleaseRefreshTokenRevokesItsSuccessors(t *testing.T) {
	e := negativeEnv(t)
	r := e.rp(clientID, secret, rpCallback)
	_, old := offlineTokens(t, e, r)
	// Make the stored record what the previous release wrote: no grant.
	ctx := context.Background()
	raw, err := e.rdb.Get(ctx, rtKey(old)).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	delete(rec, "grant")
	legacy, _ := json.Marshal(rec)
	if err := e.rdb.SetArgs(ctx, rtKey(old), legacy, redis.SetArgs{Mode: "XX", KeepTTL: true}).Err(); err != nil {
		t.Fatal(err)
	}

	status, doc, _ := e.tokenCall(clientID, secret, refreshForm(old))
	access, _ := doc["access_token"].(string)
	next, _ := doc["refresh_token"].(string)
	if status != http.StatusOK {
		t.Fatalf("refresh of the previous release's token: %d %v", status, doc)
	}
	if status, doc, _ := e.tokenCall(clientID, secret, refreshForm(old)); status != http.StatusBadRequest {
		t.Fatalf("reuse: %d %v", status, doc)
	}
	if active := introspect(t, e, access); active != false {
		t.Errorf("access token rotated from a reused refresh token: active=%v", active)
	}
	if status, _, _ := e.tokenCall(clientID, secret, refreshForm(next)); status == http.StatusOK {
		t.Errorf("refresh token rotated from a reused refresh token still refreshes")
	}
}
