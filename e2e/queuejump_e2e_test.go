package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/securecookie"
	"golang.org/x/oauth2"

	"github.com/anteroom/anteroom/config"
	"github.com/anteroom/anteroom/keys"
	"github.com/anteroom/anteroom/waitingroom"
)

// Queue-jumping attempts: a visitor, or a bot, trying to get in without
// their turn, or to make Anteroom spend without bound.

const (
	vipRoom   = "vip"
	vipClient = "vipshop"
	vipSecret = "vip-secret-0123456789"
)

// jumpEnv is one instance with two rooms (launch and vip, one client each)
// and whatever limits mutate sets.
func jumpEnv(t *testing.T, limits func(*config.Limits)) *env {
	e := newEnv(t, false, func(c *config.Config) {
		c.Rooms = append(c.Rooms, config.Room{ID: vipRoom, Name: "VIP",
			SessionTTL: config.Duration(30 * time.Minute), MaxWait: config.Duration(time.Hour)})
		c.Clients = append(c.Clients, config.Client{ID: vipClient, Secret: vipSecret, Room: vipRoom, RedirectURIs: []string{rpCallback}})
		if limits != nil {
			limits(&c.Limits)
		}
		c.ApplyDefaults()
	})
	e.start()
	return e
}

// ticketCookie returns the browser's ticket cookie of room.
func ticketCookie(t *testing.T, b *http.Client, room string) *http.Cookie {
	t.Helper()
	u, _ := url.Parse(issuer)
	for _, c := range b.Jar.Cookies(u) {
		if c.Name == "anteroom_"+room {
			return c
		}
	}
	t.Fatalf("no ticket cookie for room %s", room)
	return nil
}

// withCookie returns a new browser holding only the cookie name=value.
func (e *env) withCookie(name, value string) *http.Client {
	b := e.browser()
	u, _ := url.Parse(issuer)
	b.Jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/"}})
	return b
}

// ticketCodec seals tickets as Anteroom's cookies do, under secret: a
// forger who had that secret, or a deployment that retired it.
type ticketCodec struct{}

func (ticketCodec) Serialize(src any) ([]byte, error) {
	return src.(waitingroom.Ticket).MarshalBinary()
}
func (ticketCodec) Deserialize([]byte, any) error { return nil }

func forgeTicket(t *testing.T, secret string, tk waitingroom.Ticket) string {
	t.Helper()
	c := securecookie.New(keys.DeriveKey([]byte(secret), "ticket cookie mac", 64), keys.DeriveKey([]byte(secret), "ticket cookie aes", 32))
	c.SetSerializer(ticketCodec{})
	v, err := c.Encode("anteroom_"+tk.Room, tk)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (e *env) room(id string) map[string]any {
	e.t.Helper()
	_, doc := e.admin(http.MethodGet, "/admin/v1/rooms/"+id, "")
	return doc
}

func TestQueueJumpingWithCookies(t *testing.T) {
	e := jumpEnv(t, nil)
	r := e.rp(clientID, secret, rpCallback)
	vip := e.rp(vipClient, vipSecret, rpCallback)
	// Five visitors wait ahead of every attempt below.
	for range 5 {
		queue(t, e.browser(), r, newLogin())
		queue(t, e.browser(), vip, newLogin())
	}

	t.Run("a forged or foreign-sealed ticket is no ticket", func(t *testing.T) {
		front := waitingroom.Ticket{ID: waitingroom.NewTicketID(), Room: roomID, Position: 1,
			JoinedAt: e.clock.Now().Add(-time.Minute), AdmittedAt: e.clock.Now()}
		for name, value := range map[string]string{
			"random":                      base64.RawURLEncoding.EncodeToString([]byte("an admitted ticket, honest")),
			"sealed under another secret": forgeTicket(t, "another-deployment-secret-0123456789", front),
		} {
			tail := e.room(roomID)["tail"].(float64)
			b := e.withCookie("anteroom_"+roomID, value)
			l := newLogin()
			resp, _ := visit(t, b, http.MethodGet, r.authURL(l))
			if codeFrom(t, resp, l) != "" {
				t.Fatalf("%s: a code", name)
			}
			if st := pollStatus(t, b, resp.Request.URL.String()); st.State != "waiting" || float64(st.Position) != tail+1 {
				t.Fatalf("%s: %+v, want a new place at the back (%v)", name, st, tail+1)
			}
		}
		// The same ticket sealed with the deployment's own secret is taken,
		// admitted as it says (a sealed cookie is Anteroom's word: it
		// restores an admission Redis lost): the test's forgery is
		// faithful, only the key differs.
		b := e.withCookie("anteroom_"+roomID, forgeTicket(t, cookieKey, front))
		l := newLogin()
		if resp, _ := visit(t, b, http.MethodGet, r.authURL(l)); codeFrom(t, resp, l) == "" {
			t.Fatalf("control: the deployment's own seal was not read: %d at %s", resp.StatusCode, resp.Request.URL)
		}
	})

	t.Run("a ticket moved to another room's cookie is no ticket there", func(t *testing.T) {
		b := e.browser()
		l := newLogin()
		waitURL := queue(t, b, r, l)
		e.advance(100)
		if resp, _ := visit(t, b, http.MethodPost, waitURL+"/continue"); codeFrom(t, resp, l) == "" {
			t.Fatal("not admitted in launch")
		}
		c := ticketCookie(t, b, roomID)
		moved := e.withCookie("anteroom_"+vipRoom, c.Value)
		tail := e.room(vipRoom)["tail"].(float64)
		vl := newLogin()
		resp, _ := visit(t, moved, http.MethodGet, vip.authURL(vl))
		if codeFrom(t, resp, vl) != "" {
			t.Fatal("an admission in launch opened vip")
		}
		if st := pollStatus(t, moved, resp.Request.URL.String()); st.State != "waiting" || float64(st.Position) != tail+1 {
			t.Fatalf("vip: %+v, want a new place at the back (%v)", st, tail+1)
		}
	})

	t.Run("an admitted cookie replayed after its session ended queues again", func(t *testing.T) {
		b := e.browser()
		l := newLogin()
		waitURL := queue(t, b, r, l)
		e.advance(100)
		resp, _ := visit(t, b, http.MethodPost, waitURL+"/continue")
		tok, err := r.oauth.Exchange(r.ctx, codeFrom(t, resp, l), oauth2.VerifierOption(l.verifier))
		if err != nil {
			t.Fatal(err)
		}
		saved := ticketCookie(t, b, roomID).Value
		visit(t, b, http.MethodGet, issuer+"/end_session?id_token_hint="+url.QueryEscape(tok.Extra("id_token").(string))+"&client_id="+clientID)

		replay := e.withCookie("anteroom_"+roomID, saved)
		tail := e.room(roomID)["tail"].(float64)
		again := newLogin()
		resp, _ = visit(t, replay, http.MethodGet, r.authURL(again))
		if codeFrom(t, resp, again) != "" {
			t.Fatal("the replayed cookie of an ended session got a code")
		}
		if st := pollStatus(t, replay, resp.Request.URL.String()); st.State != "waiting" || float64(st.Position) != tail+1 {
			t.Fatalf("after logout: %+v, want a new place at the back (%v)", st, tail+1)
		}

		// The same once the session runs out by itself.
		b = e.browser()
		l = newLogin()
		waitURL = queue(t, b, r, l)
		e.advance(100)
		visit(t, b, http.MethodPost, waitURL+"/continue")
		saved = ticketCookie(t, b, roomID).Value
		e.clock.Advance(31 * time.Minute)
		replay = e.withCookie("anteroom_"+roomID, saved)
		again = newLogin()
		resp, _ = visit(t, replay, http.MethodGet, r.authURL(again))
		if codeFrom(t, resp, again) != "" || !strings.Contains(resp.Request.URL.Path, "/wait/") {
			t.Fatalf("after the session's end: %d at %s", resp.StatusCode, resp.Request.URL)
		}
	})

	t.Run("a waiting cookie copied to a second browser is the same place, not a second one", func(t *testing.T) {
		a := e.browser()
		la := newLogin()
		waitA := queue(t, a, r, la)
		pos := pollStatus(t, a, waitA).Position
		b := e.withCookie("anteroom_"+roomID, ticketCookie(t, a, roomID).Value)
		lb := newLogin()
		waitB := queue(t, b, r, lb)
		tail := e.room(roomID)["tail"].(float64)
		if st := pollStatus(t, b, waitB); st.Position != pos || float64(pos) != tail {
			t.Fatalf("the copy: %+v, want the same place %d and no new one (tail %v)", st, pos, tail)
		}
		active := e.room(roomID)["active"].(float64)
		e.advance(100)
		ra, _ := visit(t, a, http.MethodPost, waitA+"/continue")
		rb, _ := visit(t, b, http.MethodPost, waitB+"/continue")
		ta, err := r.oauth.Exchange(r.ctx, codeFrom(t, ra, la), oauth2.VerifierOption(la.verifier))
		if err != nil {
			t.Fatal(err)
		}
		tb, err := r.oauth.Exchange(r.ctx, codeFrom(t, rb, lb), oauth2.VerifierOption(lb.verifier))
		if err != nil {
			t.Fatal(err)
		}
		ia, _ := r.verifier.Verify(r.ctx, ta.Extra("id_token").(string))
		ib, _ := r.verifier.Verify(r.ctx, tb.Extra("id_token").(string))
		if ia.Subject != ib.Subject {
			t.Fatalf("two subjects for one ticket: %s, %s", ia.Subject, ib.Subject)
		}
		if got := e.room(roomID)["active"].(float64); got != active+1 {
			t.Fatalf("active %v -> %v: one ticket, one admission", active, got)
		}
	})
}

// fromAddress returns a browser whose requests carry X-Forwarded-For: xff,
// as a proxy in front of Anteroom would add it.
func (e *env) fromAddress(xff string) *http.Client {
	jar, _ := cookiejar.New(nil)
	b := e.browser()
	b.Jar = jar
	b.Transport = headerTransport{base: e.transport(), name: "X-Forwarded-For", value: xff}
	return b
}

type headerTransport struct {
	base        http.RoundTripper
	name, value string
}

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(h.name, h.value)
	return h.base.RoundTrip(r)
}

func TestJoinFloodsFromOneAddressAreLimited(t *testing.T) {
	// The tests' connections come from 127.0.0.1: here, a trusted proxy.
	e := jumpEnv(t, func(l *config.Limits) {
		l.JoinsPerIPPerMinute, l.Burst, l.TrustedProxies = 6, 3, []string{"127.0.0.1"}
	})
	r := e.rp(clientID, secret, rpCallback)
	before := e.scrape()[`anteroom_visitor_errors_total{kind="rate_limited"}`]
	var first *http.Client
	for i := range 3 {
		b := e.fromAddress("198.51.100.1, 203.0.113.5")
		queue(t, b, r, newLogin())
		if i == 0 {
			first = b
		}
	}
	tail := e.room(roomID)["tail"].(float64)
	b := e.fromAddress("198.51.100.2, 203.0.113.5") // a new left part changes nothing
	resp, body := visit(t, b, http.MethodGet, r.authURL(newLogin()))
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "10" ||
		!strings.Contains(body, "Too many visits from your connection") || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("fourth join: %d Retry-After=%q %.300s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	req, _ := http.NewRequest(http.MethodGet, r.authURL(newLogin()), nil)
	req.Header.Set("Accept", "application/json")
	resp, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("JSON: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if got := e.room(roomID)["tail"].(float64); got != tail {
		t.Fatalf("refused joins took places: tail %v -> %v", tail, got)
	}
	if got := e.scrape()[`anteroom_visitor_errors_total{kind="rate_limited"}`]; got < before+2 {
		t.Fatalf("rate_limited counted %v -> %v", before, got)
	}
	// Another address is not held back; a visitor with a place is never.
	queue(t, e.fromAddress("203.0.113.6"), r, newLogin())
	if resp, _ := visit(t, first, http.MethodGet, r.authURL(newLogin())); resp.StatusCode != http.StatusOK {
		t.Fatalf("a returning visitor from the limited address: %d", resp.StatusCode)
	}
	// Ten seconds on, one more.
	e.clock.Advance(10 * time.Second)
	queue(t, e.fromAddress("203.0.113.5"), r, newLogin())
	if resp, _ := visit(t, e.fromAddress("203.0.113.5"), http.MethodGet, r.authURL(newLogin())); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("two in one interval: %d", resp.StatusCode)
	}
}

func TestForwardedForFromAnUntrustedPeerIsIgnored(t *testing.T) {
	e := jumpEnv(t, func(l *config.Limits) { l.JoinsPerIPPerMinute, l.Burst = 6, 2 })
	r := e.rp(clientID, secret, rpCallback)
	for i := range 3 {
		b := e.fromAddress(fmt.Sprintf("203.0.113.%d", i+1))
		resp, _ := visit(t, b, http.MethodGet, r.authURL(newLogin()))
		want := http.StatusOK
		if i == 2 {
			want = http.StatusTooManyRequests
		}
		if resp.StatusCode != want {
			t.Fatalf("join %d with a made-up X-Forwarded-For: %d, want %d: the peer (127.0.0.1) is who counts", i+1, resp.StatusCode, want)
		}
	}
}

// TestManyLoginsWithOneTicketCostBoundedRedis: a script that loops over
// /authorize and the waiting page with one ticket stops costing Redis at
// limits.logins_per_ticket.
func TestManyLoginsWithOneTicketCostBoundedRedis(t *testing.T) {
	e := jumpEnv(t, nil) // logins_per_ticket: 50, the default
	r := e.rp(clientID, secret, rpCallback)
	b := e.browser()
	queue(t, b, r, newLogin())
	ctx := context.Background()
	redisCost := func() (fields, keys int64) {
		iter := e.rdb.Scan(ctx, 0, "anteroom:{r:"+roomID+"}:*", 1000).Iterator()
		for iter.Next(ctx) {
			// Keys that come and go with time, not with logins: the
			// liveness window the heartbeat flushes every 5 s, and the
			// challenge's per-second arrival counts.
			if strings.Contains(iter.Val(), "}:live:") || strings.Contains(iter.Val(), "}:arr:") {
				continue
			}
			keys++
			if strings.Contains(iter.Val(), "}:b:") {
				fields += e.rdb.HLen(ctx, iter.Val()).Val()
			}
		}
		return fields, keys
	}
	var refused, first int
	for i := 2; i <= 300; i++ {
		resp, body := visit(t, b, http.MethodGet, r.authURL(newLogin()))
		switch resp.StatusCode {
		case http.StatusOK:
		case http.StatusTooManyRequests:
			if !strings.Contains(body, "Too many sign-ins from this browser") {
				t.Fatalf("login %d: %.300s", i, body)
			}
			if refused++; first == 0 {
				first = i
			}
		default:
			t.Fatalf("login %d: %d", i, resp.StatusCode)
		}
		if i == 60 {
			fields, keys := redisCost()
			defer func() {
				if f, k := redisCost(); f != fields || k != keys {
					t.Errorf("240 more logins grew Redis from %d binding fields and %d keys to %d and %d", fields, keys, f, k)
				}
			}()
		}
	}
	if first != 51 || refused != 250 {
		t.Fatalf("first refused login %d, refused %d: want the 51st on, all of them", first, refused)
	}
	if fields, _ := redisCost(); fields != 50 {
		t.Fatalf("%d binding fields for one ticket, want 50", fields)
	}
}
