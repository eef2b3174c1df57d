package operator

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/anteroom/anteroom/waitingroom"
)

// Fuzz targets for what the operator's side parses from a request itself:
// the admin API's bodies and the dashboard's cookie. Each checks a
// property, not only the absence of a panic. CI runs each for a few
// seconds (.ci/fuzz); docs/security.md gives the command for a long run.

var fuzzRoom = waitingroom.Room{ID: "launch", Name: "Launch", State: waitingroom.StateOpen,
	SessionTTL: 30 * time.Minute, MaxWait: 6 * time.Hour}

// fuzzSite is a Server over an in-process miniredis with the room
// "launch" (manual) and an admin token; one per fuzzing process.
func fuzzSite(f *testing.F) (http.Handler, *waitingroom.Store) {
	f.Helper()
	m := miniredis.NewMiniRedis()
	if err := m.Start(); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(m.Close)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	f.Cleanup(func() { rdb.Close() })
	store, err := waitingroom.NewStore(rdb, []waitingroom.Room{fuzzRoom})
	if err != nil {
		f.Fatal(err)
	}
	if err := store.Seed(context.Background()); err != nil {
		f.Fatal(err)
	}
	s, err := New(Options{Issuer: testIssuer, Store: store, Cache: waitingroom.NewCache(store, time.Second),
		CookieSecrets: [][]byte{testSecret(1)}, AdminToken: fuzzAdminToken})
	if err != nil {
		f.Fatal(err)
	}
	mux := http.NewServeMux()
	s.Register(mux)
	return mux, store
}

const fuzzAdminToken = "admin-token-0123456789"

// FuzzAdminAPIBodies: the admin API answers a body it cannot take with 400
// and changes nothing, never 5xx; a body it takes is exactly one JSON
// object of known fields, and the room then says what the body said.
func FuzzAdminAPIBodies(f *testing.F) {
	h, store := fuzzSite(f)
	for _, s := range []string{
		`{"state":"paused"}`, `{"state":"open","rate_per_minute":30}`, `{"max_active":5}`, `{"rate_per_minute":0,"max_active":0}`,
		`{"count":3}`, `{"count":1000000}`, `{"count":1000001}`, `{"count":0}`, `{"count":1.5}`, `{"count":"2"}`,
		`{"state":"asleep"}`, `{"rate_per_minute":-1}`, `{"rate_per_minute":1e400}`, `{"colour":"red"}`,
		`{"state":"paused"} {"state":"open"}`, `{"state":"paused"}x`, `[]`, `null`, ``, `{"STATE":"closed"}`,
	} {
		f.Add(true, []byte(s))
		f.Add(false, []byte(s))
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, patch bool, body []byte) {
		before, err := store.Status(ctx, "launch")
		if err != nil {
			t.Fatal(err)
		}
		method, path := http.MethodPost, "/admin/v1/rooms/launch/advance"
		if patch {
			method, path = http.MethodPatch, "/admin/v1/rooms/launch"
		}
		r := httptest.NewRequest(method, path, bytes.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+fuzzAdminToken)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		after, err := store.Status(ctx, "launch")
		if err != nil {
			t.Fatal(err)
		}
		switch w.Code {
		case http.StatusBadRequest:
			if before.State != after.State || before.Policy != after.Policy || before.Serving != after.Serving {
				t.Fatalf("%s %q refused, but the room changed from %+v to %+v", method, body, before, after)
			}
			return
		case http.StatusOK:
		default:
			t.Fatalf("%s %q: %d %s", method, body, w.Code, w.Body)
		}
		if !json.Valid(body) {
			t.Fatalf("%s took %q, which is not one JSON value", method, body)
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
			t.Fatalf("%s took %q, which is not a JSON object", method, body)
		}
		if !patch {
			n, err := strconv.ParseInt(string(fields["count"]), 10, 64)
			if err != nil || n < 1 || n > 1_000_000 || len(fields) != 1 {
				t.Fatalf("advance took %q", body)
			}
			if after.Serving < before.Serving || after.Serving > after.Tail {
				t.Fatalf("advance %q moved serving from %d to %d (tail %d)", body, before.Serving, after.Serving, after.Tail)
			}
			return
		}
		for k, v := range fields {
			var want any
			switch k {
			case "state":
				var s *waitingroom.State
				_ = json.Unmarshal(v, &s)
				if s != nil && after.State != *s {
					t.Fatalf("patch %q left state %q", body, after.State)
				}
			case "rate_per_minute":
				var rate *float64
				_ = json.Unmarshal(v, &rate)
				if rate != nil && after.Policy.RatePerMinute != *rate {
					t.Fatalf("patch %q left rate %v", body, after.Policy.RatePerMinute)
				}
			case "max_active":
				var n *int
				_ = json.Unmarshal(v, &n)
				if n != nil && after.Policy.MaxActive != *n {
					t.Fatalf("patch %q left max_active %v", body, after.Policy.MaxActive)
				}
			default:
				t.Fatalf("patch took %q with the unknown field %q (%v)", body, k, want)
			}
		}
		// Put the room back, so the next input starts from the same place.
		if err := store.SetState(ctx, "launch", before.State); err != nil {
			t.Fatal(err)
		}
		if err := store.SetPolicy(ctx, "launch", before.Policy); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzAdminSessionCookie: the dashboard's cookie verifies only when it
// carries an expiry that Anteroom signed, and only before that expiry.
func FuzzAdminSessionCookie(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	a := newAdminSessions([][]byte{testSecret(1), testSecret(2)}, fuzzAdminToken, true, "/admin/")
	issued := map[string]bool{}
	for _, d := range []time.Duration{time.Hour, adminSessionTTL, -time.Hour} {
		v := a.value(a.tokens[0], now.Add(d))
		issued[v[:strings.LastIndexByte(v, '.')]] = true
		f.Add(v)
	}
	f.Add("v2.99999999999.admin.")
	f.Add("v2.-1.admin.AAAA")
	f.Fuzz(func(t *testing.T, v string) {
		if a.valid(v, now) == nil {
			return
		}
		payload := v[:strings.LastIndexByte(v, '.')]
		if !issued[payload] {
			t.Fatalf("%q verifies, but its payload %q was never signed", v, payload)
		}
		exp, _, _ := strings.Cut(strings.TrimPrefix(payload, "v2."), ".")
		expires, _ := strconv.ParseInt(exp, 10, 64)
		if !now.Before(time.Unix(expires, 0)) {
			t.Fatalf("%q verifies after its expiry", v)
		}
	})
}
