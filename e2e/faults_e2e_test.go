package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptrace"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"

	"github.com/anteroom/anteroom/config"
	"github.com/anteroom/anteroom/internal/testredis"
)

// Fault injection against whole instances: Redis killed and restarted under
// a stream of visitors, Redis slow or stalled behind a proxy, an instance
// shut down with requests and event streams open. process_e2e_test.go kills
// instances that run as processes of their own.

// faultEnv is an env on a redis-server of the test's own (with the
// arguments given, such as an append-only file), whose instances get Redis
// clients built from the configuration as `anteroom serve` builds them.
func faultEnv(t *testing.T, srv *testredis.Server, mutate func(*config.Config)) *env {
	t.Helper()
	cfg := testConfig()
	cfg.Redis.URL = srv.URL()
	if mutate != nil {
		mutate(cfg)
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, cfg: cfg, rdb: srv.Client(t)}
}

// client is a Redis client made from the configuration's redis section,
// pointed at addr (a fault proxy, say) when addr is not empty.
func (e *env) client(addr string) redis.UniversalClient {
	e.t.Helper()
	r := e.cfg.Redis
	if addr != "" {
		r.URL = "redis://" + addr + "/0"
	}
	opts, err := r.Options()
	if err != nil {
		e.t.Fatal(err)
	}
	rdb := redis.NewUniversalClient(opts)
	e.t.Cleanup(func() { rdb.Close() })
	return rdb
}

// balancer spreads connections for the issuer over instances, as a load
// balancer would, and skips one that refuses the connection.
type balancer struct {
	mu    sync.Mutex
	addrs []string
	next  int
}

func (lb *balancer) set(addrs ...string) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	lb.addrs = addrs
}

func (lb *balancer) transport() *http.Transport {
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr != issuerAddr {
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			}
			lb.mu.Lock()
			addrs, start := lb.addrs, lb.next
			lb.next++
			lb.mu.Unlock()
			var err error
			for i := range addrs {
				var c net.Conn
				if c, err = (&net.Dialer{}).DialContext(ctx, network, addrs[(start+i)%len(addrs)]); err == nil {
					return c, nil
				}
			}
			return nil, err
		},
		DisableKeepAlives: true,
	}
}

// browserVia is env.browser on another transport.
func browserVia(tr http.RoundTripper) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar:       jar,
		Transport: tr,
		Timeout:   30 * time.Second, // a hang fails the test instead of stalling it
		CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if req.URL.Host == rpHost || req.URL.Host == "127.0.0.1:2" {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
}

// get fetches u and returns the response with its body read.
func get(c *http.Client, u string, header ...string) (*http.Response, string, error) {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body), nil
}

// exchangeRaw posts a code to the token endpoint and returns the response.
func exchangeRaw(t *testing.T, c *http.Client, code string, l login) (*http.Response, string) {
	t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {rpCallback}, "code_verifier": {l.verifier}}
	req, _ := http.NewRequest(http.MethodPost, issuer+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("token exchange: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// gateAuth asks the gate about a protected URI without a session, as nginx
// does for a new visitor.
func gateAuth(t *testing.T, c *http.Client, uri string) *http.Response {
	t.Helper()
	resp, _, err := get(c, issuer+"/gate/auth", "X-Original-URI", uri, "X-Original-Method", "GET")
	if err != nil {
		t.Fatalf("gate auth %s: %v", uri, err)
	}
	return resp
}

// Redis is SIGKILLed while visitors keep arriving at two instances, and
// restarted from its append-only file (appendfsync always). While it is
// down, pages answer 503 with Retry-After, the token endpoint
// temporarily_unavailable, status polls still answer from the cookie, and
// the gate fails open or closed as each room says. The instances reconnect
// by themselves; no position is handed out twice, the counter no instance
// shows goes back, and visitors admitted before the crash are still in.
func TestRedisCrashUnderVisitorsKeepsPromises(t *testing.T) {
	srv := testredis.StartWithArgs(t, "--appendonly", "yes", "--appendfsync", "always")
	if !srv.Real() {
		t.Skip("needs a real redis-server to kill")
	}
	insecure := false
	e := faultEnv(t, srv, func(c *config.Config) {
		c.Rooms[0].OnError = config.OnErrorFailOpen
		c.Rooms = append(c.Rooms, config.Room{ID: "vip", SessionTTL: config.Duration(30 * time.Minute), MaxWait: config.Duration(time.Hour)})
		c.Gate = &config.Gate{Cookie: config.GateCookie{Secure: &insecure}, Rules: []config.Rule{
			{PathPrefix: "/open/", Action: "queue", Room: roomID},
			{PathPrefix: "/", Action: "queue", Room: "vip"},
		}}
	})
	_, addrA := e.startOn(e.client(""))
	_, addrB := e.startOn(e.client(""))
	lb := &balancer{}
	lb.set(addrA, addrB)
	e.route(addrA)
	r := e.rp(clientID, secret, rpCallback)
	api := browserVia(lb.transport())

	// Before the crash: five visitors admitted, one of them with a code
	// not yet redeemed, and five waiting.
	type visitorFlow struct {
		b       *http.Client
		l       login
		waitURL string
	}
	var admitted, waiting []visitorFlow
	for range 10 {
		v := visitorFlow{b: browserVia(lb.transport()), l: newLogin()}
		v.waitURL = queue(t, v.b, r, v.l)
		waiting = append(waiting, v)
	}
	e.advance(5)
	admitted, waiting = waiting[:5], waiting[5:]
	var pendingCode string
	for i, v := range admitted {
		resp, _ := visit(t, v.b, http.MethodPost, v.waitURL+"/continue")
		code := codeFrom(t, resp, v.l)
		if code == "" {
			t.Fatalf("visitor %d: no code after admission", i)
		}
		if i == 0 {
			pendingCode = code
			continue
		}
		if _, err := r.oauth.Exchange(r.ctx, code, oauth2.VerifierOption(v.l.verifier)); err != nil {
			t.Fatal(err)
		}
	}

	// A stream of new visitors, and a watch on the counter each instance
	// shows, through the crash.
	var mu sync.Mutex
	positions := map[int64]int{}
	var joined, refused atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				b := browserVia(lb.transport())
				resp, body, err := get(b, r.authURL(newLogin()), "Accept", "application/json")
				if err != nil {
					t.Error(err)
					return
				}
				if resp.StatusCode == http.StatusServiceUnavailable {
					refused.Add(1)
					time.Sleep(50 * time.Millisecond)
					continue
				}
				var st status
				if err := json.Unmarshal([]byte(body), &st); err != nil || resp.StatusCode != http.StatusOK || st.Position == 0 {
					t.Errorf("join: %d %s", resp.StatusCode, body)
					return
				}
				joined.Add(1)
				mu.Lock()
				positions[st.Position]++
				mu.Unlock()
			}
		}()
	}
	var wentBack atomic.Value
	for _, addr := range []string{addrA, addrB} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
			var shown int64
			for {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				resp, body, err := get(c, "http://"+addr+"/api/v1/rooms/"+roomID)
				if err != nil || resp.StatusCode != http.StatusOK {
					continue
				}
				var serving int64
				if i := strings.Index(body, `"serving":`); i >= 0 {
					fmt.Sscan(body[i+len(`"serving":`):], &serving)
				}
				if serving < shown {
					wentBack.Store(fmt.Sprintf("instance %s showed serving %d, then %d", addr, shown, serving))
				}
				shown = max(shown, serving)
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)

	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = srv.Restart()
		}
	})
	// Pages: 503 with Retry-After, in the waiting room's words.
	asked := time.Now()
	resp, body := visit(t, browserVia(lb.transport()), http.MethodGet, r.authURL(newLogin()))
	t.Logf("a new visitor during the outage got %d after %v", resp.StatusCode, time.Since(asked).Round(time.Millisecond))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "try again") {
		t.Errorf("a new visitor during the outage: %d Retry-After=%q %.200s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	// A waiting visitor's poll needs no Redis.
	if st := pollStatus(t, waiting[0].b, waiting[0].waitURL); st.State != "waiting" {
		t.Errorf("a waiting visitor's poll during the outage: %+v", st)
	}
	// Relying parties: the OAuth error that says "retry", not invalid_grant.
	tresp, tbody := exchangeRaw(t, api, pendingCode, admitted[0].l)
	if tresp.StatusCode != http.StatusServiceUnavailable || tresp.Header.Get("Retry-After") == "" || !strings.Contains(tbody, `"temporarily_unavailable"`) {
		t.Errorf("token endpoint during the outage: %d Retry-After=%q %s", tresp.StatusCode, tresp.Header.Get("Retry-After"), tbody)
	}
	// The gate follows each room's on_error once the instance notices.
	deadline := time.Now().Add(10 * time.Second)
	for {
		g := gateAuth(t, api, "/open/shop")
		if g.StatusCode == http.StatusNoContent && g.Header.Get("X-Anteroom-Fail-Open") == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fail_open room during the outage: %d", g.StatusCode)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if g := gateAuth(t, api, "/checkout"); g.StatusCode != http.StatusUnauthorized {
		t.Errorf("fail_closed room during the outage: %d, want 401", g.StatusCode)
	}
	time.Sleep(200 * time.Millisecond)

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	restarted = true
	t.Logf("redis down for %v; %d joins refused meanwhile", time.Since(down).Round(time.Millisecond), refused.Load())
	before := joined.Load()
	deadline = time.Now().Add(15 * time.Second)
	for joined.Load() < before+20 {
		if time.Now().After(deadline) {
			t.Fatalf("the instances did not recover: %d joins after the restart", joined.Load()-before)
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()

	for p, n := range positions {
		if n > 1 {
			t.Errorf("position %d handed out %d times", p, n)
		}
	}
	if msg := wentBack.Load(); msg != nil {
		t.Error(msg)
	}
	// Each instance learns that Redis is back at its next good refresh of
	// the counters (every 500 ms), once its connection pool dials again:
	// until then its gate still fails open, and then it queues again.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		g := gateAuth(t, api, "/open/shop")
		if g.StatusCode == http.StatusUnauthorized {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("fail_open room 10 s after recovery: %d, want 401 (the queue again)", g.StatusCode)
			break
		}
	}
	// The code issued before the crash is still good.
	if tresp, tbody := exchangeRaw(t, api, pendingCode, admitted[0].l); tresp.StatusCode != http.StatusOK {
		t.Errorf("code from before the crash: %d %s", tresp.StatusCode, tbody)
	}
	// Visitors admitted before the crash log in again straight through.
	for i, v := range admitted {
		l := newLogin()
		resp, _ := visit(t, v.b, http.MethodGet, r.authURL(l))
		if codeFrom(t, resp, l) == "" {
			t.Errorf("admitted visitor %d after the crash: %d at %s, want straight back with a code", i, resp.StatusCode, resp.Request.URL)
		}
	}
	// A visitor who waited through it keeps their place and continues.
	st := pollStatus(t, waiting[0].b, waiting[0].waitURL)
	e.advance(1)
	resp, _ = visit(t, waiting[0].b, http.MethodPost, waiting[0].waitURL+"/continue")
	if st.Position != 6 || codeFrom(t, resp, waiting[0].l) == "" {
		t.Errorf("visitor who waited through the crash: position %d (want 6), continue %d at %s", st.Position, resp.StatusCode, resp.Request.URL)
	}
	t.Logf("%d visitors joined through the crash, %d distinct positions", joined.Load(), len(positions))
}

// errStalled is what faultProxy's copy loops stop with when closed.
var errStalled = errors.New("proxy closed")

// faultProxy forwards TCP connections to target and injects faults: a
// delay before each chunk it forwards, or a stall that holds every chunk
// until healed (a Redis that accepts connections and never answers).
type faultProxy struct {
	t      *testing.T
	ln     net.Listener
	target string

	mu      sync.Mutex
	delay   time.Duration
	stalled chan struct{} // non-nil while stalled; closed by heal
	closed  chan struct{}
	conns   map[net.Conn]struct{}
	// running counts the proxy's own goroutines, so a count of the
	// instance's goroutines can leave them out.
	running atomic.Int64
	wg      sync.WaitGroup
}

func startFaultProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{t: t, ln: ln, target: target, closed: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	p.go_(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.serve(c)
		}
	})
	t.Cleanup(p.close)
	return p
}

func (p *faultProxy) addr() string { return p.ln.Addr().String() }

func (p *faultProxy) go_(f func()) {
	p.wg.Add(1)
	p.running.Add(1)
	go func() {
		defer p.wg.Done()
		defer p.running.Add(-1)
		f()
	}()
}

func (p *faultProxy) serve(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{})
	var once sync.Once
	end := func() {
		once.Do(func() {
			close(done)
			c.Close()
			up.Close()
			p.mu.Lock()
			delete(p.conns, c)
			delete(p.conns, up)
			p.mu.Unlock()
		})
	}
	pipe := func(dst, src net.Conn) {
		defer end()
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				if p.hold(done) != nil {
					return
				}
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	p.go_(func() { pipe(up, c) })
	p.go_(func() { pipe(c, up) })
}

// hold applies the fault to one chunk.
func (p *faultProxy) hold(done chan struct{}) error {
	p.mu.Lock()
	delay, stalled := p.delay, p.stalled
	p.mu.Unlock()
	if stalled != nil {
		select {
		case <-stalled:
		case <-done:
			return errStalled
		case <-p.closed:
			return errStalled
		}
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-done:
			return errStalled
		case <-p.closed:
			return errStalled
		}
	}
	return nil
}

func (p *faultProxy) setDelay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = d
}

func (p *faultProxy) stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stalled == nil {
		p.stalled = make(chan struct{})
	}
}

// heal ends a stall and any delay; held chunks flow on.
func (p *faultProxy) heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stalled != nil {
		close(p.stalled)
		p.stalled = nil
	}
	p.delay = 0
}

func (p *faultProxy) close() {
	select {
	case <-p.closed:
		return
	default:
	}
	close(p.closed)
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// goroutines counts this process's goroutines less the proxy's own, once
// they have settled: the count is taken twice, a moment apart, until it
// stops moving.
func goroutines(p *faultProxy) int {
	last := -1
	for range 20 {
		runtime.GC()
		n := runtime.NumGoroutine() - int(p.running.Load())
		if n == last {
			return n
		}
		last = n
		time.Sleep(25 * time.Millisecond)
	}
	return last
}

// Redis answers late (every command 600 ms), then not at all (a stall),
// behind a proxy. Every request still returns, as a 503
// that says to retry, within what the configuration allows, and the
// goroutines of requests that gave up do not pile up: once the proxy
// heals, their count is back near where it started.
func TestSlowRedisBoundsRequestsAndGoroutines(t *testing.T) {
	if err := redisServer.FlushAll(); err != nil {
		t.Fatal(err)
	}
	// Socket timeouts longer than the request's: what bounds a request is
	// redis.request_timeout, applied to every Redis call it makes.
	e := faultEnv(t, redisServer, func(c *config.Config) {
		c.Redis.ReadTimeout = config.Duration(2 * time.Second)
		c.Redis.WriteTimeout = config.Duration(2 * time.Second)
		c.Redis.RequestTimeout = config.Duration(500 * time.Millisecond)
	})
	proxy := startFaultProxy(t, redisServer.Addr())
	_, addr := e.startOn(e.client(proxy.addr()))
	e.route(addr)
	r := e.rp(clientID, secret, rpCallback)
	api := browserVia(e.transport())

	// Codes to redeem while Redis is slow, and a visitor who polls.
	type pending struct {
		code string
		l    login
	}
	var codes []pending
	for range 20 {
		code, l := e.admittedCode(r)
		codes = append(codes, pending{code, l})
	}
	poller := browserVia(e.transport())
	waitURL := queue(t, poller, r, newLogin())

	base := goroutines(proxy)
	burst := func(name string) {
		t.Helper()
		var wg sync.WaitGroup
		var mu sync.Mutex
		var slowest time.Duration
		statuses := map[int]int{}
		var peak atomic.Int64
		done := make(chan struct{})
		go func() {
			for {
				select {
				case <-done:
					return
				case <-time.After(10 * time.Millisecond):
				}
				n := int64(runtime.NumGoroutine() - int(proxy.running.Load()))
				if n > peak.Load() {
					peak.Store(n)
				}
			}
		}()
		request := func(do func() (int, error)) {
			defer wg.Done()
			start := time.Now()
			code, err := do()
			took := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("%s: a request did not return: %v", name, err)
				return
			}
			statuses[code]++
			slowest = max(slowest, took)
		}
		for i := range 10 {
			wg.Add(3)
			// A new visitor joins (Redis), a relying party redeems a
			// code (Redis), a waiting visitor polls (no Redis).
			go request(func() (int, error) {
				resp, _, err := get(browserVia(e.transport()), r.authURL(newLogin()))
				if err != nil {
					return 0, err
				}
				return resp.StatusCode, nil
			})
			go request(func() (int, error) {
				resp, _ := exchangeRaw(t, api, codes[i].code, codes[i].l)
				return resp.StatusCode, nil
			})
			go request(func() (int, error) {
				resp, _, err := get(poller, waitURL+"?format=json")
				if err != nil {
					return 0, err
				}
				return resp.StatusCode, nil
			})
		}
		wg.Wait()
		close(done)
		t.Logf("%s: answers %v, the slowest after %v (redis.request_timeout %v); goroutines %d at rest, %d at the peak",
			name, statuses, slowest.Round(time.Millisecond), e.cfg.Redis.RequestTimeout.D(), base, peak.Load())
		if statuses[http.StatusServiceUnavailable] < 20 || statuses[http.StatusOK] < 10 {
			t.Errorf("%s: answers %v, want 20 × 503 (joins, token requests) and 10 × 200 (polls)", name, statuses)
		}
	}
	proxy.setDelay(300 * time.Millisecond)
	burst("every command 600 ms late")
	proxy.stall()
	burst("redis stalled")
	// Still stalled: the requests have all answered, and nothing they
	// started is left waiting on Redis.
	during := goroutines(proxy)
	t.Logf("goroutines once the requests answered, Redis still stalled: %d", during)
	const slack = 10
	if during > base+slack {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines piled up behind the stalled Redis: %d at rest, %d after the requests answered\n%s", base, during, buf[:runtime.Stack(buf, true)])
	}
	proxy.heal()

	// Healed: the instance works again by itself, the codes are intact,
	// and the goroutines of the requests that gave up are gone.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, _, err := get(browserVia(e.transport()), r.authURL(newLogin()))
		if err == nil && resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the instance did not recover after the proxy healed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if resp, body := exchangeRaw(t, api, codes[0].code, codes[0].l); resp.StatusCode != http.StatusOK {
		t.Errorf("a code whose redemption timed out: %d %s, want it still good", resp.StatusCode, body)
	}
	var after int
	for {
		after = goroutines(proxy)
		if after <= base+slack || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("goroutines: %d before, %d after healing", base, after)
	if after > base+slack {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines piled up: %d before, %d after healing\n%s", base, after, buf[:runtime.Stack(buf, true)])
	}
}

// sseClient reads a server-sent event stream as EventSource does: the
// retry field, and the data of each event.
type sseClient struct {
	resp   *http.Response
	retry  atomic.Int64
	events chan status
}

func openEvents(t *testing.T, b *http.Client, waitURL string) *sseClient {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, waitURL+"/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := (&http.Client{Jar: b.Jar, Transport: b.Transport}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &sseClient{resp: resp, events: make(chan status, 16)}
	go func() {
		defer close(s.events)
		defer resp.Body.Close()
		r := bufio.NewReader(resp.Body)
		for {
			line, err := r.ReadString('\n')
			line = strings.TrimRight(line, "\r\n")
			if v, ok := strings.CutPrefix(line, "retry: "); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				s.retry.Store(n)
			}
			if v, ok := strings.CutPrefix(line, "data: "); ok {
				var st status
				if json.Unmarshal([]byte(v), &st) == nil {
					s.events <- st
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return s
}

// next returns the next event, or false when the stream ended.
func (s *sseClient) next(t *testing.T) (status, bool) {
	t.Helper()
	select {
	case st, ok := <-s.events:
		return st, ok
	case <-time.After(15 * time.Second):
		t.Fatal("no event and no end of the stream")
	}
	return status{}, false
}

// An instance shuts down (SIGTERM) with a token request in flight, held by
// a Redis stall, and a visitor's event stream open. The stream ends at
// once, having told the browser when to reconnect (retry:); the token
// request finishes with its tokens once Redis answers; the browser
// reconnects, through the load balancer, to the other instance and keeps
// its place.
func TestGracefulShutdownFinishesRequestsAndMovesStreams(t *testing.T) {
	if err := redisServer.FlushAll(); err != nil {
		t.Fatal(err)
	}
	e := faultEnv(t, redisServer, func(c *config.Config) {
		// Longer than the test holds the request, so that only Redis
		// answering ends it.
		c.Redis.RequestTimeout = config.Duration(20 * time.Second)
	})
	proxy := startFaultProxy(t, redisServer.Addr())
	_, addrA, stopA := e.run(e.client(proxy.addr()))
	_, addrB := e.startOn(e.client(""))
	e.route(addrA)
	r := e.rp(clientID, secret, rpCallback)

	code, l := e.admittedCode(r)
	visitor := e.browser()
	waitURL := queue(t, visitor, r, newLogin())
	stream := openEvents(t, visitor, waitURL)
	first, ok := stream.next(t)
	if !ok || first.State != "waiting" || first.Position != 2 {
		t.Fatalf("first event: %+v, %v", first, ok)
	}

	// The token request is in flight, and Redis does not answer.
	proxy.stall()
	wrote := make(chan struct{})
	type answer struct {
		code int
		body string
		err  error
	}
	exchanged := make(chan answer, 1)
	go func() {
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {rpCallback}, "code_verifier": {l.verifier}}
		req, _ := http.NewRequest(http.MethodPost, issuer+"/oauth/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(clientID, secret)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { close(wrote) }}))
		resp, err := (&http.Client{Transport: e.transport()}).Do(req)
		if err != nil {
			exchanged <- answer{err: err}
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		exchanged <- answer{code: resp.StatusCode, body: string(body)}
	}()
	<-wrote
	time.Sleep(200 * time.Millisecond) // into the handler, waiting on Redis
	stopped := make(chan struct{})
	go func() { stopA(); close(stopped) }()

	if st, ok := stream.next(t); ok {
		t.Fatalf("the event stream went on during shutdown: %+v", st)
	}
	retry := stream.retry.Load()
	if retry < 1000 {
		t.Fatalf("the stream ended without telling the browser when to reconnect (retry: %d)", retry)
	}
	select {
	case a := <-exchanged:
		t.Fatalf("the token request ended before Redis answered: %+v", a)
	case <-stopped:
		t.Fatal("shutdown finished with a request in flight")
	default:
	}
	proxy.heal()
	a := <-exchanged
	if a.err != nil || a.code != http.StatusOK || !strings.Contains(a.body, `"access_token"`) {
		t.Fatalf("the token request in flight at shutdown: %d %v %.200s", a.code, a.err, a.body)
	}
	<-stopped

	// EventSource reconnects to the same URL after retry ms; the load
	// balancer sends it to the instance that is left.
	t.Logf("the stream asked to reconnect after %d ms", retry)
	e.route(addrB)
	again := openEvents(t, visitor, waitURL)
	st, ok := again.next(t)
	if !ok || st.State != "waiting" || st.Position != first.Position {
		t.Fatalf("after reconnecting to the other instance: %+v, %v; want still waiting at %d", st, ok, first.Position)
	}
	again.resp.Body.Close()
}

// Redis restarts empty (no persistence). The instance remembers the room
// and puts it back: a waiting visitor keeps their place, a new one queues
// behind everyone, and an admitted one is still in. When the instance
// restarted too, nobody remembers: the room starts a new epoch, the waiting
// visitor's page reloads and queues again, and the admitted one is still
// in, on the strength of their cookie.
func TestRedisRestartedEmptyIsRestoredByTheInstances(t *testing.T) {
	if !redisServer.Real() {
		t.Skip("needs a real redis-server to restart")
	}
	e := newEnv(t, false, nil)
	_, _, stop := e.run(e.rdb)
	r := e.rp(clientID, secret, rpCallback)
	in := e.browser()
	inLogin := newLogin()
	inWait := queue(t, in, r, inLogin)
	waiting := e.browser()
	waitURL := queue(t, waiting, r, newLogin())
	queue(t, e.browser(), r, newLogin())
	e.advance(1)
	if resp, _ := visit(t, in, http.MethodPost, inWait+"/continue"); codeFrom(t, resp, inLogin) == "" {
		t.Fatalf("first visitor not let in: %d", resp.StatusCode)
	}
	restart := func() {
		t.Helper()
		if err := redisServer.Kill(); err != nil {
			t.Fatal(err)
		}
		if err := redisServer.Restart(); err != nil {
			t.Fatal(err)
		}
	}
	straightIn := func(what string) {
		t.Helper()
		l := newLogin()
		var resp *http.Response
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp, _ = visit(t, in, http.MethodGet, r.authURL(l))
			if resp.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if codeFrom(t, resp, l) == "" {
			t.Fatalf("%s: the admitted visitor logging in again got %d at %s, want straight through", what, resp.StatusCode, resp.Request.URL)
		}
	}

	restart()
	straightIn("redis restarted empty")
	if st := pollStatus(t, waiting, waitURL); st.State != "waiting" || st.Position != 2 {
		t.Fatalf("waiting visitor after redis restarted empty: %+v, want still at 2", st)
	}
	newcomer := e.browser()
	if st := pollStatus(t, newcomer, queue(t, newcomer, r, newLogin())); st.Position <= 3 {
		t.Fatalf("new visitor after redis restarted empty got position %d: 3 were handed out before", st.Position)
	}

	stop()
	restart()
	e.start()
	straightIn("redis and the instance restarted")
	if st := pollStatus(t, waiting, waitURL); st.State != "expired" {
		t.Fatalf("waiting visitor of the lost epoch: %+v, want expired (the page reloads)", st)
	}
	resp, body := visit(t, waiting, http.MethodGet, waitURL)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `<dd id="position">1</dd>`) {
		t.Fatalf("the reloaded page: %d %.300s, want a new place (1) in the new epoch", resp.StatusCode, body)
	}
}
