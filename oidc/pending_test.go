package oidc

import (
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/anteroom/anteroom/config"
	"github.com/anteroom/anteroom/keys"
	"github.com/anteroom/anteroom/waitingroom"
)

// pendingAgrees checks that a Pending opened from id reads what openRequest
// reads, and refuses what it refuses (and a client it does not know).
func pendingAgrees(t *testing.T, box *keys.Box, clients map[string]*client, id string) {
	t.Helper()
	full, ferr := openRequest(box, id)
	var r Pending
	perr := r.open(box, id, tableOf(clients))
	if ferr == nil && clients[full.ClientID] == nil {
		ferr = errBadRequestID // a Pending also refuses a client it does not know
	}
	if (ferr == nil) != (perr == nil) {
		t.Fatalf("openRequest: %v, Pending.open: %v", ferr, perr)
	}
	if ferr != nil {
		return
	}
	maxAge, hasMaxAge := uint(0), full.MaxAge != nil
	if hasMaxAge {
		maxAge = *full.MaxAge
	}
	if r.ID() != id || r.client != clients[full.ClientID] || !r.Created().Equal(full.CreatedAt) || r.promptNone != full.PromptNone() ||
		r.hasMaxAge != hasMaxAge || r.maxAge != maxAge {
		t.Fatalf("pending %+v, open %+v", r, full)
	}
	// What Finish answers with is what the id sealed.
	if a, err := r.fields.request(id); err != nil || !reflect.DeepEqual(a, full) {
		t.Fatalf("pending's request %+v (%v), open %+v", a, err, full)
	}
}

func TestPendingReadsWhatOpenRequestReads(t *testing.T) {
	box := testBox(t, 1)
	clients := map[string]*client{"shop": {}}
	a := sampleRequest()
	pendingAgrees(t, box, clients, sealRequest(box, a))
	a.Prompt = []string{"login", "consent"}
	pendingAgrees(t, box, clients, sealRequest(box, a))
	a.Prompt = []string{"consent", "none"}
	pendingAgrees(t, box, clients, sealRequest(box, a))
	for _, maxAge := range []uint{0, 1, 3600} {
		a.MaxAge = &maxAge
		pendingAgrees(t, box, clients, sealRequest(box, a))
	}
	a.ClientID = "unknown"
	if err := new(Pending).open(box, sealRequest(box, a), tableOf(clients)); err == nil {
		t.Fatal("opened a request of an unknown client")
	}
	raw, _ := base64.RawURLEncoding.DecodeString(sealRequest(box, sampleRequest()))
	raw[len(raw)-1] ^= 1
	if err := new(Pending).open(box, base64.RawURLEncoding.EncodeToString(raw), tableOf(clients)); err == nil {
		t.Fatal("opened a tampered id")
	}
}

// The pool hands a handle from one request to the next: nothing of the
// last request may remain.
func TestReopenedPendingKeepsNothingOfTheLastRequest(t *testing.T) {
	box := testBox(t, 1)
	clients := map[string]*client{"shop": {}}
	first := sampleRequest()
	maxAge := uint(0)
	first.MaxAge = &maxAge
	second := sampleRequest()
	second.Prompt = nil
	r := &Pending{}
	if err := r.open(box, sealRequest(box, first), tableOf(clients)); err != nil || !r.PromptNone() || !r.hasMaxAge {
		t.Fatalf("first: %v, prompt none %v, max_age %v", err, r.PromptNone(), r.hasMaxAge)
	}
	id := sealRequest(box, second)
	if err := r.open(box, id, tableOf(clients)); err != nil {
		t.Fatal(err)
	}
	if r.PromptNone() || r.hasMaxAge || r.ID() != id {
		t.Fatalf("second request reads prompt none %v, max_age %v, id %q", r.PromptNone(), r.hasMaxAge, r.ID())
	}
}

// Ids come from the URL: a long one is read into a buffer of its own, and
// the pool's buffers do not grow to it.
func TestPendingKeepsItsBufferForALongID(t *testing.T) {
	box := testBox(t, 1)
	r := &Pending{buf: make([]byte, 0, 64)}
	long := sampleRequest()
	long.State = strings.Repeat("s", 1000)
	if err := r.open(box, sealRequest(box, long), tableOf(map[string]*client{"shop": {}})); err != nil {
		t.Fatal(err)
	}
	if got := string(r.fields.f[2]); got != long.State {
		t.Fatalf("state %q", got)
	}
	if cap(r.buf) != 64 {
		t.Fatalf("pooled buffer grew to %d", cap(r.buf))
	}
}

// testProvider is a provider of client "shop" in room "launch" (max wait
// one hour), on the clock now.
func testProvider(t testing.TB, now func() time.Time) *Provider {
	t.Helper()
	rooms, err := waitingroom.NewStore(nil, []waitingroom.Room{{ID: "launch", Name: "Launch", State: waitingroom.StateOpen,
		SessionTTL: 30 * time.Minute, MaxWait: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewProvider(Options{Issuer: "https://queue.example.com", Rooms: rooms, Box: testBox(t, 1), Now: now,
		Clients: []config.Client{{ID: "shop", Secret: "shop-secret-0123456789", Room: "launch", RedirectURIs: []string{"https://shop.example.com/cb"}}}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A waiting page polls its status every few seconds, and every poll opens
// its request and asks it for the room: that must not allocate.
func TestOpenDoesNotAllocate(t *testing.T) {
	a := sampleRequest()
	p := testProvider(t, func() time.Time { return a.CreatedAt.Add(time.Minute) })
	id := sealRequest(p.storage.box, a)
	n := testing.AllocsPerRun(100, func() {
		r, err := p.Open(id)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = r.Room(), r.PromptNone()
		r.Close()
	})
	if n != 0 {
		t.Fatalf("Open allocates %.1f times", n)
	}
}

func TestOpenRefusesUnknownAndExpiredRequests(t *testing.T) {
	a := sampleRequest()
	now := a.CreatedAt.Add(59 * time.Minute)
	p := testProvider(t, func() time.Time { return now })
	id := sealRequest(p.storage.box, a)
	r, err := p.Open(id)
	if err != nil || r.Room() != "launch" || !r.PromptNone() {
		t.Fatalf("open: %v", err)
	}
	r.Close()
	if _, err := p.Open(id[:len(id)-2]); !errors.Is(err, waitingroom.ErrUnknownRequest) {
		t.Fatalf("a truncated id: %v, want ErrUnknownRequest", err)
	}
	now = a.CreatedAt.Add(time.Hour) // the room's max wait
	if _, err := p.Open(id); !errors.Is(err, waitingroom.ErrExpired) {
		t.Fatalf("a request older than the max wait: %v, want ErrExpired", err)
	}
}

// OIDC Core §3.1.2.1: with max_age, an authentication (here: an admission)
// older than max_age at the request's time must be done again; one made
// while the request waited answers it.
func TestPendingFreshFollowsMaxAge(t *testing.T) {
	a := sampleRequest()
	p := testProvider(t, func() time.Time { return a.CreatedAt.Add(time.Minute) })
	admitted := func(at time.Time) waitingroom.Ticket {
		return waitingroom.Ticket{Room: "launch", Position: 1, AdmittedAt: at}
	}
	fresh := func(maxAge *uint, t0 waitingroom.Ticket) bool {
		a.MaxAge = maxAge
		r, err := p.Open(sealRequest(p.storage.box, a))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		return r.Fresh(t0)
	}
	ten, zero := uint(600), uint(0)
	for _, c := range []struct {
		name   string
		maxAge *uint
		at     time.Time
		want   bool
	}{
		{"no max_age, admitted long before", nil, a.CreatedAt.Add(-24 * time.Hour), true},
		{"max_age 600, admitted 10 minutes before", &ten, a.CreatedAt.Add(-10 * time.Minute), true},
		{"max_age 600, admitted 10 minutes and a second before", &ten, a.CreatedAt.Add(-10*time.Minute - time.Second), false},
		{"prompt=login (max_age 0), admitted a second before", &zero, a.CreatedAt.Add(-time.Second), false},
		{"prompt=login (max_age 0), admitted while waiting", &zero, a.CreatedAt.Add(time.Second), true},
	} {
		if got := fresh(c.maxAge, admitted(c.at)); got != c.want {
			t.Errorf("%s: fresh %v, want %v", c.name, got, c.want)
		}
	}
}

func FuzzPendingOpen(f *testing.F) {
	box := testBox(f, 1)
	clients := map[string]*client{"shop": {}}
	f.Add(sealRequest(box, sampleRequest()))
	a := sampleRequest()
	maxAge := uint(30)
	a.MaxAge = &maxAge
	f.Add(sealRequest(box, a))
	f.Add("")
	f.Fuzz(func(t *testing.T, id string) { pendingAgrees(t, box, clients, id) })
}

// tableOf is a client table of m.
func tableOf(m map[string]*client) *clientTable {
	t := new(clientTable)
	t.p.Store(&m)
	return t
}

// must returns the client with id, nil when there is none.
func (t *clientTable) must(id string) *client {
	c, _ := t.get(id)
	return c
}
