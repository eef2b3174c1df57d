package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"

	"github.com/anteroom/anteroom/config"
	"github.com/anteroom/anteroom/internal/testredis"
)

// Issue 16: rooms and clients created at run time through the admin API,
// on two instances sharing one Redis, with named admin tokens and the audit
// log. The same suite runs on a single redis-server and on a Cluster.

const (
	viewerName  = "auditor"
	viewerToken = "viewer-token-0123456789"
	runtimeRoom = "drop"
	runtimeApp  = "drop-shop"
)

func TestRuntimeRoomsAndClients(t *testing.T) {
	if err := redisServer.FlushAll(); err != nil {
		t.Fatal(err)
	}
	runtimeSuite(t, redisServer.Client(t))
}

func TestRuntimeRoomsAndClientsOnCluster(t *testing.T) {
	c := testredis.StartCluster(t)
	rdb := c.Client(t)
	testredis.FailOnCrossSlot(t, rdb)
	runtimeSuite(t, rdb)
}

// adminCall makes an admin API call with token ("" : none) through the load
// balancer and returns the status and body.
func (e *env) adminCall(method, path, token, body string) (int, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest(method, issuer+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Transport: e.transport()}).Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// description is the error_description of an admin API error body.
func description(body []byte) string {
	var e struct {
		D string `json:"error_description"`
	}
	_ = json.Unmarshal(body, &e)
	return e.D
}

func runtimeSuite(t *testing.T, rdb redis.UniversalClient) {
	cfg := testConfig()
	cfg.Admin.Tokens = []config.AdminToken{{Name: viewerName, Token: viewerToken, Role: "viewer"}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, cfg: cfg, rdb: rdb, clock: newClock()}
	_, addrA := e.start()
	_, addrB := e.start()

	// On instance A, an operator creates a room and a client for it. The
	// body is the file's room, and errors name its keys as the file's do.
	e.route(addrA)
	if code, body := e.adminCall(http.MethodPost, "/admin/v1/rooms", adminToken, `{"id": "`+runtimeRoom+`", "admission": {"rate_per_minute": -1}}`); code != http.StatusBadRequest ||
		!strings.Contains(description(body), "admission.rate_per_minute: must be > 0") {
		t.Fatalf("invalid room: %d %s", code, body)
	}
	// The file wins: its room cannot be replaced through the API.
	if code, body := e.adminCall(http.MethodPost, "/admin/v1/rooms", adminToken, `{"id": "`+roomID+`"}`); code != http.StatusConflict ||
		!strings.Contains(string(body), "configuration file") {
		t.Fatalf("room of the file: %d %s", code, body)
	}
	code, body := e.adminCall(http.MethodPost, "/admin/v1/rooms", adminToken, `{"id": "`+runtimeRoom+`", "name": "The Drop", "message": "Limited edition"}`)
	if code != http.StatusCreated {
		t.Fatalf("create room: %d %s", code, body)
	}
	code, body = e.adminCall(http.MethodPost, "/admin/v1/clients", adminToken, `{"id": "`+runtimeApp+`", "room": "`+runtimeRoom+`", "redirect_uris": ["`+rpCallback+`"]}`)
	if code != http.StatusCreated {
		t.Fatalf("create client: %d %s", code, body)
	}
	created := time.Now()
	var client struct {
		Secret string         `json:"client_secret"`
		Def    map[string]any `json:"definition"`
	}
	if err := json.Unmarshal(body, &client); err != nil || len(client.Secret) < 40 {
		t.Fatalf("the secret is not shown at creation: %s", body)
	}
	// Shown once: never again, nor stored.
	for _, path := range []string{"/admin/v1/clients/" + runtimeApp, "/admin/v1/clients"} {
		if _, b := e.adminCall(http.MethodGet, path, adminToken, ""); bytes.Contains(b, []byte(client.Secret)) || bytes.Contains(b, []byte("secret_hash")) {
			t.Fatalf("GET %s shows the secret: %s", path, b)
		}
	}
	if raw, _ := rdb.HGet(t.Context(), "anteroom:catalog:clients", runtimeApp).Result(); strings.Contains(raw, client.Secret) || raw == "" {
		t.Fatalf("the stored client holds its secret (or nothing): %s", raw)
	}

	// Instance B serves both without a restart: a whole OIDC flow of the
	// new client through the new room.
	e.route(addrB)
	served := waitUntil(10*time.Second, func() bool {
		code, _ := e.adminCall(http.MethodGet, "/api/v1/rooms/"+runtimeRoom, "", "")
		return code == http.StatusOK
	})
	if !served {
		t.Fatal("instance B never served the room created on A")
	}
	t.Logf("instance B served the room and client created on A %s later", time.Since(created).Round(time.Millisecond))
	rp := e.rp(runtimeApp, client.Secret, rpCallback)
	b := e.browser()
	l := newLogin()
	waitURL := queue(t, b, rp, l)
	if _, page := visit(t, b, http.MethodGet, waitURL); !strings.Contains(page, "The Drop") || !strings.Contains(page, "Limited edition") {
		t.Fatalf("the waiting page does not show the runtime room: %.500s", page)
	}
	if code, body := e.adminCall(http.MethodPost, "/admin/v1/rooms/"+runtimeRoom+"/advance", adminToken, `{"count": 1}`); code != http.StatusOK {
		t.Fatalf("advance: %d %s", code, body)
	}
	resp, _ := visit(t, b, http.MethodPost, waitURL+"/continue")
	authCode := codeFrom(t, resp, l)
	if authCode == "" {
		t.Fatalf("continue: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	tok, err := rp.oauth.Exchange(rp.ctx, authCode, oauth2.VerifierOption(l.verifier))
	if err != nil {
		t.Fatalf("the runtime client's code exchange (its secret checked against the stored hash): %v", err)
	}
	idt, err := rp.verifier.Verify(rp.ctx, tok.Extra("id_token").(string))
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Room string `json:"room"`
	}
	if err := idt.Claims(&claims); err != nil || claims.Room != runtimeRoom || idt.Audience[0] != runtimeApp {
		t.Fatalf("ID token: room %q aud %v (%v)", claims.Room, idt.Audience, err)
	}
	// RFC 6749 §2.3.1, §5.2: a wrong secret is invalid_client.
	bad := e.rp(runtimeApp, client.Secret+"x", rpCallback)
	if _, err := bad.oauth.Exchange(bad.ctx, "whatever", oauth2.VerifierOption(l.verifier)); err == nil || !strings.Contains(err.Error(), "invalid_client") {
		t.Fatalf("a wrong secret: %v, want invalid_client", err)
	}

	// A change through PATCH (a merge patch of the definition) reaches A.
	if code, body := e.adminCall(http.MethodPatch, "/admin/v1/rooms/"+runtimeRoom, adminToken, `{"message": "Last pairs"}`); code != http.StatusOK {
		t.Fatalf("patch: %d %s", code, body)
	}
	e.route(addrA)
	if !waitUntil(10*time.Second, func() bool {
		_, page := visit(t, e.browser(), http.MethodGet, rp.authURL(newLogin()))
		return strings.Contains(page, "Last pairs")
	}) {
		t.Fatal("instance A never showed the patched message")
	}

	viewerChangesNothing(e, rdb)
	auditRecordsEveryChange(e)
	politeDelete(e, addrB, addrA, client.Secret)
}

// viewerChangesNothing: every route of the admin API that changes
// something, as the OpenAPI document lists them, answers a viewer's token
// 403 and changes nothing; reads work.
func viewerChangesNothing(e *env, rdb redis.UniversalClient) {
	t := e.t
	code, raw := e.adminCall(http.MethodGet, "/admin/v1/openapi.json", viewerToken, "")
	if code != http.StatusOK {
		t.Fatalf("openapi.json for a viewer: %d", code)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	before := catalogState(e, rdb)
	tried := 0
	for path, ops := range doc.Paths {
		concrete := strings.NewReplacer("{room}", runtimeRoom, "{client}", runtimeApp, "{kid}", "k").Replace(path)
		for method := range ops {
			method = strings.ToUpper(method)
			code, body := e.adminCall(method, concrete, viewerToken, `{"count": 1, "state": "paused", "id": "x", "room": "drop", "redirect_uris": ["https://a/"]}`)
			if method == http.MethodGet {
				// The room has no scheduled event, so one by id is not
				// found: a read the viewer may make all the same.
				if strings.Contains(path, "{event}") && code == http.StatusNotFound {
					continue
				}
				if code != http.StatusOK {
					t.Errorf("viewer GET %s: %d %s", concrete, code, body)
				}
				continue
			}
			tried++
			if code != http.StatusForbidden || !strings.Contains(string(body), viewerName) {
				t.Errorf("viewer %s %s: %d %s, want 403", method, concrete, code, body)
			}
		}
	}
	if tried < 10 {
		t.Fatalf("only %d mutating routes tried", tried)
	}
	if after := catalogState(e, rdb); after != before {
		t.Fatalf("a viewer changed something:\nbefore %s\nafter  %s", before, after)
	}
}

// catalogState is everything the admin API can change, as one string.
func catalogState(e *env, rdb redis.UniversalClient) string {
	ctx := e.t.Context()
	var out []string
	for _, k := range []string{"anteroom:{r:" + runtimeRoom + "}:def", "anteroom:{r:" + runtimeRoom + "}:serving", "anteroom:{r:" + roomID + "}:serving"} {
		v, _ := rdb.Get(ctx, k).Result()
		out = append(out, v)
	}
	h, _ := rdb.HGetAll(ctx, "anteroom:catalog:clients").Result()
	for _, k := range slices.Sorted(maps.Keys(h)) {
		out = append(out, k+"="+h[k])
	}
	for _, k := range []string{"anteroom:{r:" + runtimeRoom + "}:room", "anteroom:{r:" + roomID + "}:room"} {
		m, _ := rdb.HGetAll(ctx, k).Result()
		out = append(out, m["state"], m["rate"])
	}
	n, _ := rdb.LLen(ctx, "anteroom:audit").Result()
	out = append(out, "audit", strconv.FormatInt(n, 10))
	keys, _ := rdb.Get(ctx, "anteroom:keys").Result()
	out = append(out, keys)
	return strings.Join(out, "|")
}

// auditRecordsEveryChange: the log names who did what, with before and
// after, newest first.
func auditRecordsEveryChange(e *env) {
	t := e.t
	code, raw := e.adminCall(http.MethodGet, "/admin/v1/audit", viewerToken, "")
	if code != http.StatusOK {
		t.Fatalf("audit: %d %s", code, raw)
	}
	var doc struct {
		Entries []struct {
			At     time.Time      `json:"at"`
			Who    string         `json:"who"`
			Action string         `json:"action"`
			Target string         `json:"target"`
			Before map[string]any `json:"before"`
			After  map[string]any `json:"after"`
		} `json:"entries"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, en := range doc.Entries {
		actions = append(actions, en.Action+" "+en.Target+" by "+en.Who)
		if en.At.IsZero() {
			t.Errorf("entry without a time: %+v", en)
		}
	}
	want := []string{"room.update room/drop by admin", "room.advance room/drop by admin", "client.create client/drop-shop by admin", "room.create room/drop by admin"}
	if !slices.Equal(actions, want) {
		t.Fatalf("audit log:\n%s\nwant:\n%s", strings.Join(actions, "\n"), strings.Join(want, "\n"))
	}
	upd := doc.Entries[0]
	if upd.Before["message"] != "Limited edition" || upd.After["message"] != "Last pairs" {
		t.Fatalf("update before/after: %v -> %v", upd.Before, upd.After)
	}
	if doc.Entries[3].Before != nil || doc.Entries[3].After["name"] != "The Drop" {
		t.Fatalf("create before/after: %v -> %v", doc.Entries[3].Before, doc.Entries[3].After)
	}
}

// politeDelete: deleting a room sends its waiting visitors the closed page
// and its relying party access_denied (RFC 6749 §4.1.2.1), never a 500; a
// code issued before the deletion is invalid_grant (RFC 6749 §5.2).
func politeDelete(e *env, addrB, addrA, clientSecret string) {
	t := e.t
	e.route(addrB)
	rp := e.rp(runtimeApp, clientSecret, rpCallback)
	// An admitted visitor whose relying party has not redeemed the code
	// yet when the room goes.
	admitted := e.browser()
	al := newLogin()
	admittedWait := queue(t, admitted, rp, al)
	// Everyone queued so far goes in (the advance stops at the last place
	// handed out); the visitor queued below waits.
	if code, body := e.adminCall(http.MethodPost, "/admin/v1/rooms/"+runtimeRoom+"/advance", adminToken, `{"count": 1000}`); code != http.StatusOK {
		t.Fatalf("advance: %d %s", code, body)
	}
	resp, _ := visit(t, admitted, http.MethodPost, admittedWait+"/continue")
	pendingCode := codeFrom(t, resp, al)
	if pendingCode == "" {
		t.Fatalf("continue: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	b := e.browser()
	l := newLogin()
	waitURL := queue(t, b, rp, l)
	e.route(addrB)
	if code, body := e.adminCall(http.MethodDelete, "/admin/v1/rooms/"+runtimeRoom, adminToken, ""); code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", code, body)
	}
	// On the instance that took the call at once; on the other as soon as
	// it learns of it.
	for _, addr := range []string{addrB, addrA} {
		e.route(addr)
		if !waitUntil(10*time.Second, func() bool {
			code, _ := e.adminCall(http.MethodGet, "/api/v1/rooms/"+runtimeRoom, "", "")
			return code == http.StatusNotFound
		}) {
			t.Fatalf("instance %s still serves the deleted room", addr)
		}
		resp, page := visit(t, b, http.MethodGet, waitURL)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "<html") {
			t.Fatalf("waiting page of a deleted room: %d %.300s", resp.StatusCode, page)
		}
		resp, body := visit(t, b, http.MethodGet, waitURL+"?format=json")
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `"closed"`) {
			t.Fatalf("status poll in a deleted room: %d %s", resp.StatusCode, body)
		}
		resp, _ = visit(t, e.browser(), http.MethodGet, rp.authURL(newLogin()))
		loc, _ := resp.Location()
		if loc == nil || loc.Host != rpHost {
			t.Fatalf("authorize for a deleted room: %d, want a redirect to the relying party", resp.StatusCode)
		}
		q := loc.Query()
		if q.Get("error") != "access_denied" || q.Get("iss") != issuer || q.Get("state") == "" {
			t.Fatalf("authorize for a deleted room: %s", loc)
		}
	}
	if _, err := rp.oauth.Exchange(rp.ctx, pendingCode, oauth2.VerifierOption(al.verifier)); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("a code of the deleted room: %v, want invalid_grant", err)
	}
}
