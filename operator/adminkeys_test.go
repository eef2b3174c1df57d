package operator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/anteroom/anteroom/internal/testredis"
	"github.com/anteroom/anteroom/keys"
	"github.com/anteroom/anteroom/waitingroom"
)

// fakeKeys publishes a signing key "new" and a retiring key "old"; Retire
// fails with err when set, and knows only "old".
type fakeKeys struct {
	err     error
	retired []string
}

var keyStart = time.Unix(1_800_000_000, 0)

func (f *fakeKeys) Status() []keys.PublishedKey {
	return []keys.PublishedKey{
		{Key: keys.Key{ID: "new", Algorithm: jose.ES256, NotBefore: keyStart}, State: keys.StateSigning},
		{Key: keys.Key{ID: "old", Algorithm: jose.RS256, NotBefore: keyStart.Add(-time.Hour), NotAfter: keyStart.Add(time.Hour)}, State: keys.StateRetiring},
	}
}

func (f *fakeKeys) Retire(_ context.Context, kid string) (keys.Key, error) {
	if f.err != nil {
		return keys.Key{}, f.err
	}
	if kid != "old" {
		return keys.Key{}, fmt.Errorf("retire signing key %s: %w", kid, keys.ErrUnknownKey)
	}
	f.retired = append(f.retired, kid)
	return keys.Key{ID: "new"}, nil
}

// keysSite serves the admin API with signing keys k (nil: none).
func keysSite(t *testing.T, k SigningKeys) http.Handler {
	t.Helper()
	store, err := waitingroom.NewStore(testredis.Start(t).Client(t), []waitingroom.Room{{ID: "launch", Name: "Launch",
		State: waitingroom.StateOpen, SessionTTL: 30 * time.Minute, MaxWait: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Issuer: testIssuer, Store: store, Cache: waitingroom.NewCache(store, time.Second),
		CookieSecrets: [][]byte{testSecret(1)}, AdminToken: fuzzAdminToken, Keys: k}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.Register(mux)
	return mux
}

func adminCall(h http.Handler, method, path, token string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestAdminKeysListsAndRetires(t *testing.T) {
	k := &fakeKeys{}
	h := keysSite(t, k)

	for _, c := range []struct{ method, path string }{{http.MethodGet, "/admin/v1/keys"}, {http.MethodPost, "/admin/v1/keys/old/retire"}} {
		if w := adminCall(h, c.method, c.path, ""); w.Code != http.StatusUnauthorized {
			t.Fatalf("%s %s without a token: %d", c.method, c.path, w.Code)
		}
		if w := adminCall(h, c.method, c.path, "wrong-token-0123456789"); w.Code != http.StatusUnauthorized {
			t.Fatalf("%s %s with a wrong token: %d", c.method, c.path, w.Code)
		}
	}
	if len(k.retired) != 0 {
		t.Fatalf("a refused call retired %v", k.retired)
	}

	w := adminCall(h, http.MethodGet, "/admin/v1/keys", fuzzAdminToken)
	want := fmt.Sprintf(`{"keys":[{"kid":"new","alg":"ES256","state":"signing","not_before":%d,"not_after":null},`+
		`{"kid":"old","alg":"RS256","state":"retiring","not_before":%d,"not_after":%d}]}`+"\n",
		keyStart.Unix(), keyStart.Add(-time.Hour).Unix(), keyStart.Add(time.Hour).Unix())
	if w.Code != http.StatusOK || w.Body.String() != want || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("list: %d %s, want %s", w.Code, w.Body, want)
	}

	w = adminCall(h, http.MethodPost, "/admin/v1/keys/old/retire", fuzzAdminToken)
	if w.Code != http.StatusOK || w.Body.String() != `{"retired":"old","signing":"new"}`+"\n" || len(k.retired) != 1 {
		t.Fatalf("retire: %d %s (retired %v)", w.Code, w.Body, k.retired)
	}
	w = adminCall(h, http.MethodPost, "/admin/v1/keys/nope/retire", fuzzAdminToken)
	var doc apiError
	if w.Code != http.StatusNotFound || json.Unmarshal(w.Body.Bytes(), &doc) != nil || doc.Code != "not_found" {
		t.Fatalf("retire an unknown key: %d %s", w.Code, w.Body)
	}
	if w := adminCall(h, http.MethodGet, "/admin/v1/keys/old/retire", fuzzAdminToken); w.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET on retire: %d", w.Code)
	}

	// Redis failing: try again later, nothing retired.
	k.err = errors.New("retire signing key old: read anteroom:keys: dial tcp: connection refused")
	w = adminCall(h, http.MethodPost, "/admin/v1/keys/old/retire", fuzzAdminToken)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" ||
		json.Unmarshal(w.Body.Bytes(), &doc) != nil || doc.Code != "temporarily_unavailable" {
		t.Fatalf("retire with Redis down: %d Retry-After=%q %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
}

func TestAdminKeysWithoutKeys(t *testing.T) {
	h := keysSite(t, nil)
	for _, c := range []struct{ method, path string }{{http.MethodGet, "/admin/v1/keys"}, {http.MethodPost, "/admin/v1/keys/old/retire"}} {
		if w := adminCall(h, c.method, c.path, fuzzAdminToken); w.Code != http.StatusNotFound {
			t.Fatalf("%s %s with no signing keys: %d", c.method, c.path, w.Code)
		}
	}
}
