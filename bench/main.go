// Command bench is Anteroom's load generator. It starts its own
// redis-server on a free port and an Anteroom binary (anteroom serve) against
// it, drives both for a fixed time per figure, and prints every figure beside
// a baseline measured in the same run, as a ratio, so that the numbers still
// mean something on a shared, noisy machine.
//
// Run it with bench/run.sh, which builds Anteroom and this program. Nothing
// here asserts timings: the goals are printed, not enforced.
package main

import (
	"bufio"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"

	"github.com/anteroom/anteroom/internal/testredis"
	"github.com/anteroom/anteroom/waitingroom"
)

// Where the relying party's callback would be: never served, the client
// stops at the redirect to it and reads the code.
const (
	rpAddr     = "127.0.0.1:9"
	rpCallback = "http://" + rpAddr + "/cb"
	pollRoom   = "bench"
	openRoom   = "open"
	pollClient = "poll"
	flowClient = "flow"
	flowSecret = "flow-secret-0123456789"
	adminToken = "bench-admin-token-0123456789"
	joinRoom   = "joins"
	memoryRoom = "memory"
	// memoryLimitRoom is memoryRoom with the join limit on.
	memoryLimitRoom = "memory-limited"
	benchPrefix     = "bench"
)

type options struct {
	anteroom    string
	concurrency int
	duration    time.Duration
	memoryN     int
	incrN       int
	flows       bool
	out         string
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "bare" {
		bare(os.Args[2:])
		return
	}
	var o options
	flag.StringVar(&o.anteroom, "anteroom", "", "path to a built anteroom binary (required)")
	flag.IntVar(&o.concurrency, "c", 32, "client concurrency for every figure")
	flag.DurationVar(&o.duration, "d", 10*time.Second, "how long each measurement runs")
	flag.IntVar(&o.memoryN, "n", 200_000, "joins for the memory figure")
	flag.IntVar(&o.incrN, "incr-n", 300_000, "requests for the redis-benchmark INCR baseline")
	flag.BoolVar(&o.flows, "flows", true, "measure full OIDC flows (figure 3)")
	flag.StringVar(&o.out, "out", "bench/results.json", "where to write the results")
	flag.Parse()
	if o.anteroom == "" {
		fmt.Fprintln(os.Stderr, "bench: -anteroom is required (bench/run.sh builds it)")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// figure is one row of the results.
type figure struct {
	ID           string             `json:"id"`
	Name         string             `json:"name"`
	Value        float64            `json:"value"`
	Unit         string             `json:"unit"`
	Baseline     float64            `json:"baseline"`
	BaselineName string             `json:"baseline_name"`
	Ratio        float64            `json:"ratio"`
	Goal         string             `json:"goal,omitempty"`
	Pass         *bool              `json:"pass,omitempty"`
	Details      map[string]float64 `json:"details,omitempty"`
}

type results struct {
	StartedAt   time.Time `json:"started_at"`
	GoVersion   string    `json:"go_version"`
	CPUs        int       `json:"cpus"`
	Concurrency int       `json:"concurrency"`
	Duration    string    `json:"duration_per_figure"`
	Redis       string    `json:"redis_version"`
	Figures     []figure  `json:"figures"`
}

func run(o options) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res := results{StartedAt: time.Now().UTC(), GoVersion: runtime.Version(), CPUs: runtime.NumCPU(),
		Concurrency: o.concurrency, Duration: o.duration.String()}

	// Never the machine's Redis on 6379: testredis picks a free port, runs
	// without persistence (--save "" --appendonly no), and removes its
	// directory on Close. DEBUG POPULATE gives the memory figure its baseline.
	os.Setenv(testredis.EnvVar, "required")
	srv, err := testredis.NewWithArgs("--enable-debug-command", "local")
	if err != nil {
		return err
	}
	defer srv.Close()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), PoolSize: o.concurrency + 4})
	defer rdb.Close()
	res.Redis = infoField(ctx, rdb, "server", "redis_version")
	step("redis-server %s on %s", res.Redis, srv.Addr())

	tmp, err := os.MkdirTemp("", "anteroom-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	ant, err := startAnteroom(ctx, o.anteroom, tmp, srv.URL())
	if err != nil {
		return err
	}
	defer ant.stop()
	step("anteroom on %s (log: kept only on failure)", ant.issuer)

	client := newClient(o.concurrency)

	f1, err := figurePolls(ctx, o, client, ant)
	if err != nil {
		return ant.explain(fmt.Errorf("figure 1: %w", err))
	}
	res.Figures = append(res.Figures, f1)

	f2, err := figureJoins(ctx, o, rdb, srv.Addr())
	if err != nil {
		return fmt.Errorf("figure 2: %w", err)
	}
	res.Figures = append(res.Figures, f2)

	if o.flows {
		f3, err := figureFlows(ctx, o, rdb, ant)
		if err != nil {
			return ant.explain(fmt.Errorf("figure 3: %w", err))
		}
		res.Figures = append(res.Figures, f3)
	}

	f4, err := figureMemory(ctx, o, rdb)
	if err != nil {
		return fmt.Errorf("figure 4: %w", err)
	}
	res.Figures = append(res.Figures, f4)

	printTable(os.Stdout, res)
	data, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(o.out, append(data, '\n'), 0o644); err != nil {
		return err
	}
	step("wrote %s", o.out)
	return nil
}

func step(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

// --- Anteroom as a subprocess ---------------------------------------------

type anteroom struct {
	issuer string
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func startAnteroom(ctx context.Context, bin, dir, redisURL string) (*anteroom, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	issuer := "http://" + addr
	// Two rooms: a manual one (nobody is admitted, so a poll always finds a
	// waiting ticket) and a wide-open one for full flows.
	cfg := fmt.Sprintf(`issuer: %s
listen: %s
redis: {url: "%s", pool_size: 64}
secrets:
  cookie_keys: ["%s"]
admin: {token: "%s"}
rooms:
  - id: %s
    state: open
  - id: %s
    state: passthrough
clients:
  - id: %s
    redirect_uris: ["%s"]
    room: %s
  - id: %s
    secret: "%s"
    redirect_uris: ["%s"]
    room: %s
`, issuer, addr, redisURL, randomHex(32), adminToken, pollRoom, openRoom,
		pollClient, rpCallback, pollRoom, flowClient, flowSecret, rpCallback, openRoom)
	cfgPath := filepath.Join(dir, "anteroom.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "anteroom.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	a := &anteroom{issuer: issuer, cmd: cmd, log: logPath, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); logFile.Close(); close(a.exited) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(issuer + "/.well-known/openid-configuration")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return a, nil
			}
		}
		select {
		case <-a.exited:
			return nil, a.explain(errors.New("anteroom exited during start-up"))
		case <-ctx.Done():
			a.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			a.stop()
			return nil, a.explain(errors.New("anteroom did not answer within 20s"))
		}
	}
}

func (a *anteroom) stop() {
	select {
	case <-a.exited:
		return
	default:
	}
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.exited:
	case <-time.After(25 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.exited
	}
}

// explain adds the tail of Anteroom's log to err.
func (a *anteroom) explain(err error) error {
	data, _ := os.ReadFile(a.log)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return fmt.Errorf("%w\n--- anteroom log tail:\n%s", err, strings.Join(lines, "\n"))
}

// --- HTTP load --------------------------------------------------------------

func newClient(concurrency int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        concurrency * 2,
			MaxIdleConnsPerHost: concurrency,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
		Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// load runs op from c goroutines for d and returns the completed operations
// per second, the latencies of the successful ones and the error count.
type loadResult struct {
	ops, errs int64
	elapsed   time.Duration
	lat       []time.Duration
	firstErr  error
}

func (r loadResult) rate() float64 { return float64(r.ops) / r.elapsed.Seconds() }

func load(ctx context.Context, c int, d time.Duration, op func(ctx context.Context, worker int, i int) error) loadResult {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		res      loadResult
		firstErr atomic.Pointer[error]
	)
	start := time.Now()
	for w := range c {
		wg.Go(func() {
			var lat []time.Duration
			var ops, errs int64
			for i := 0; ctx.Err() == nil; i++ {
				t0 := time.Now()
				err := op(ctx, w, i)
				if ctx.Err() != nil {
					break // cut off by the deadline: not counted
				}
				if err != nil {
					errs++
					firstErr.CompareAndSwap(nil, &err)
					continue
				}
				ops++
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			res.ops += ops
			res.errs += errs
			res.lat = append(res.lat, lat...)
			mu.Unlock()
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	if p := firstErr.Load(); p != nil {
		res.firstErr = *p
	}
	return res
}

func percentile(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	i := int(math.Ceil(p/100*float64(len(lat)))) - 1
	return lat[max(0, min(i, len(lat)-1))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// get fetches u with cookie and drains the body.
func get(ctx context.Context, c *http.Client, u, cookie string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return err
}

// --- PKCE login -------------------------------------------------------------

type login struct{ state, nonce, verifier string }

func newLogin() login {
	return login{state: oauth2.GenerateVerifier()[:22], nonce: oauth2.GenerateVerifier()[:22], verifier: oauth2.GenerateVerifier()}
}

// browser is one visitor: a cookie jar on the shared transport, stopping at
// the relying party's callback.
func browser(base *http.Client) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar:       jar,
		Transport: base.Transport,
		Timeout:   base.Timeout,
		CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if req.URL.Host == rpAddr {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
}

// --- Figure 1: status polls -------------------------------------------------

func figurePolls(ctx context.Context, o options, client *http.Client, ant *anteroom) (figure, error) {
	step("figure 1: status polls vs a bare net/http handler, %d clients, %s each", o.concurrency, o.duration)
	// One real visitor: a public client with PKCE, followed to its waiting page.
	b := browser(client)
	conf := &oauth2.Config{ClientID: pollClient, RedirectURL: rpCallback, Scopes: []string{gooidc.ScopeOpenID},
		Endpoint: oauth2.Endpoint{AuthURL: ant.issuer + "/authorize", TokenURL: ant.issuer + "/oauth/token"}}
	l := newLogin()
	authURL := conf.AuthCodeURL(l.state, gooidc.Nonce(l.nonce), oauth2.S256ChallengeOption(l.verifier))
	resp, err := b.Get(authURL)
	if err != nil {
		return figure{}, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	waitURL := resp.Request.URL.String()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(waitURL, ant.issuer+"/wait/") {
		return figure{}, fmt.Errorf("authorize ended with %s at %s, not on a waiting page", resp.Status, waitURL)
	}
	u, _ := url.Parse(waitURL)
	var cookies []string
	for _, c := range b.Jar.Cookies(u) {
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	cookie := strings.Join(cookies, "; ")
	pollURL := waitURL + "?format=json"

	// The exact bytes the baseline will serve.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, pollURL, nil)
	req.Header.Set("Cookie", cookie)
	resp, err = client.Do(req)
	if err != nil {
		return figure{}, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !json.Valid(body) {
		return figure{}, fmt.Errorf("status poll: %s: %.200s", resp.Status, body)
	}
	bodyPath := filepath.Join(os.TempDir(), "anteroom-bench-body-"+randomHex(4)+".json")
	if err := os.WriteFile(bodyPath, body, 0o600); err != nil {
		return figure{}, err
	}
	defer os.Remove(bodyPath)
	bareURL, stopBare, err := startBare(bodyPath, resp.Header.Get("Content-Type"), u.Path)
	if err != nil {
		return figure{}, err
	}
	defer stopBare()

	warm := func(u, c string) {
		load(ctx, o.concurrency, time.Second, func(ctx context.Context, _, _ int) error { return get(ctx, client, u, c) })
	}
	warm(bareURL, cookie)
	base := load(ctx, o.concurrency, o.duration, func(ctx context.Context, _, _ int) error { return get(ctx, client, bareURL, cookie) })
	warm(pollURL, cookie)
	polls := load(ctx, o.concurrency, o.duration, func(ctx context.Context, _, _ int) error { return get(ctx, client, pollURL, cookie) })
	if polls.ops == 0 {
		return figure{}, fmt.Errorf("no successful poll: %v", polls.firstErr)
	}
	if polls.firstErr != nil {
		step("figure 1: %d poll errors, first: %v", polls.errs, polls.firstErr)
	}
	f := figure{ID: "polls", Name: "status polls (/wait/{id} JSON)", Value: polls.rate(), Unit: "req/s",
		Baseline: base.rate(), BaselineName: "bare net/http handler, same bytes", Goal: ">= 0.7",
		Details: map[string]float64{
			"p50_ms": ms(percentile(polls.lat, 50)), "p99_ms": ms(percentile(polls.lat, 99)),
			"baseline_p50_ms": ms(percentile(base.lat, 50)), "baseline_p99_ms": ms(percentile(base.lat, 99)),
			"errors": float64(polls.errs), "body_bytes": float64(len(body)),
		}}
	return withRatio(f, 0.7, true), nil
}

func withRatio(f figure, goal float64, atLeast bool) figure {
	if f.Baseline > 0 {
		f.Ratio = f.Value / f.Baseline
	}
	pass := f.Ratio >= goal
	if !atLeast {
		pass = f.Ratio <= goal
	}
	f.Pass = &pass
	return f
}

// startBare runs this program's "bare" mode as a separate process, as
// Anteroom is one, and returns the URL it serves the body at.
func startBare(bodyPath, contentType, path string) (string, func(), error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(self, "bare", "-body", bodyPath, "-type", contentType)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("bare server did not start: %w", err)
	}
	return "http://" + strings.TrimSpace(line) + path + "?format=json", stop, nil
}

// bare serves one file's bytes on every path: the baseline of figure 1.
func bare(args []string) {
	fs := flag.NewFlagSet("bare", flag.ExitOnError)
	bodyPath := fs.String("body", "", "file whose bytes to serve")
	ctype := fs.String("type", "application/json", "Content-Type")
	_ = fs.Parse(args)
	body, err := os.ReadFile(*bodyPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String())
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", *ctype)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	})}
	go func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM, os.Interrupt)
		<-ch
		_ = srv.Close()
	}()
	_ = srv.Serve(ln)
}

// --- Figure 2: joins --------------------------------------------------------

// storeFor is the store the bench drives directly, on the bench's own key
// prefix so it never meets the Anteroom instance's keys. Its rooms are manual
// (no admission), so every join queues: tail INCR, binding and liveness.
func storeFor(rdb redis.UniversalClient, opts ...waitingroom.Option) (*waitingroom.Store, error) {
	var rooms []waitingroom.Room
	for _, id := range []string{joinRoom, memoryRoom, memoryLimitRoom} {
		rooms = append(rooms, waitingroom.Room{ID: id, Name: id, State: waitingroom.StateOpen,
			SessionTTL: 30 * time.Minute, MaxWait: 6 * time.Hour, AbandonAfter: 2 * time.Minute})
	}
	s, err := waitingroom.NewStore(rdb, rooms, append([]waitingroom.Option{waitingroom.WithPrefix(benchPrefix)}, opts...)...)
	if err != nil {
		return nil, err
	}
	return s, s.Seed(context.Background())
}

var incrLine = regexp.MustCompile(`INCR: ([0-9.]+) requests per second(?:, p50=([0-9.]+) msec)?`)

func figureJoins(ctx context.Context, o options, rdb *redis.Client, addr string) (figure, error) {
	step("figure 2: Store.Join vs redis-benchmark -t incr, %d clients", o.concurrency)
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.CommandContext(ctx, "redis-benchmark", "-h", "127.0.0.1", "-p", port, "-c", strconv.Itoa(o.concurrency),
		"-n", strconv.Itoa(o.incrN), "-t", "incr", "-q")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return figure{}, fmt.Errorf("redis-benchmark: %w: %s", err, out)
	}
	m := incrLine.FindAllStringSubmatch(string(out), -1)
	if m == nil {
		return figure{}, fmt.Errorf("cannot read redis-benchmark output: %q", out)
	}
	incr, _ := strconv.ParseFloat(m[len(m)-1][1], 64)
	incrP50, _ := strconv.ParseFloat(m[len(m)-1][2], 64)

	store, err := storeFor(rdb)
	if err != nil {
		return figure{}, err
	}
	run := randomHex(4)
	joins := load(ctx, o.concurrency, o.duration, func(ctx context.Context, w, i int) error {
		_, err := store.Join(ctx, joinRoom, fmt.Sprintf("req-%s-%d-%d", run, w, i), nil)
		return err
	})
	if joins.ops == 0 {
		return figure{}, fmt.Errorf("no successful join: %v", joins.firstErr)
	}
	f := figure{ID: "joins", Name: "joins (waitingroom.Store.Join)", Value: joins.rate(), Unit: "joins/s",
		Baseline: incr, BaselineName: "redis-benchmark -t incr, same concurrency", Goal: ">= 0.3",
		Details: map[string]float64{
			"p50_ms": ms(percentile(joins.lat, 50)), "p99_ms": ms(percentile(joins.lat, 99)),
			"baseline_p50_ms": incrP50, "errors": float64(joins.errs),
		}}
	return withRatio(f, 0.3, true), nil
}

// --- Figure 3: full flows ---------------------------------------------------

func figureFlows(ctx context.Context, o options, rdb *redis.Client, ant *anteroom) (figure, error) {
	step("figure 3: full OIDC flows in a passthrough room, %d clients", o.concurrency)
	client := newClient(o.concurrency)
	octx := context.WithValue(ctx, oauth2.HTTPClient, client)
	provider, err := gooidc.NewProvider(octx, ant.issuer)
	if err != nil {
		return figure{}, err
	}
	verifier := provider.Verifier(&gooidc.Config{ClientID: flowClient})
	conf := &oauth2.Config{ClientID: flowClient, ClientSecret: flowSecret, RedirectURL: rpCallback,
		Endpoint: provider.Endpoint(), Scopes: []string{gooidc.ScopeOpenID}}

	var sigsSeen atomic.Int64 // JWTs in the last token response
	flow := func(ctx context.Context, _, _ int) error {
		b := browser(client)
		l := newLogin()
		resp, err := b.Get(conf.AuthCodeURL(l.state, gooidc.Nonce(l.nonce), oauth2.S256ChallengeOption(l.verifier)))
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && strings.HasPrefix(resp.Request.URL.String(), ant.issuer+"/wait/") {
			// A waiting page: continue (a passthrough room normally skips it).
			resp, err = b.Post(resp.Request.URL.String()+"/continue", "", nil)
			if err != nil {
				return err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		loc, err := resp.Location()
		if err != nil || loc.Host != rpAddr {
			return fmt.Errorf("flow ended with %s at %s, not at the callback", resp.Status, resp.Request.URL)
		}
		if loc.Query().Get("state") != l.state || loc.Query().Get("code") == "" {
			return fmt.Errorf("bad callback %s", loc)
		}
		tok, err := conf.Exchange(context.WithValue(ctx, oauth2.HTTPClient, client), loc.Query().Get("code"), oauth2.VerifierOption(l.verifier))
		if err != nil {
			return err
		}
		raw, _ := tok.Extra("id_token").(string)
		idt, err := verifier.Verify(ctx, raw)
		if err != nil {
			return err
		}
		if idt.Nonce != l.nonce {
			return errors.New("nonce mismatch")
		}
		sigs := int64(1)
		if strings.Count(tok.AccessToken, ".") == 2 {
			sigs++
		}
		sigsSeen.Store(sigs)
		return nil
	}
	load(ctx, o.concurrency, time.Second, flow) // warm up: connections, JWKS
	before, statsBefore := commandsProcessed(ctx, rdb), commandStats(ctx, rdb)
	flows := load(ctx, o.concurrency, o.duration, flow)
	after, statsAfter := commandsProcessed(ctx, rdb), commandStats(ctx, rdb)
	if flows.ops == 0 {
		return figure{}, fmt.Errorf("no successful flow: %v", flows.firstErr)
	}
	if flows.firstErr != nil {
		step("figure 3: %d flow errors, first: %v", flows.errs, flows.firstErr)
	}
	sigs := sigsSeen.Load()
	sigTime := signatureTime()
	limit := float64(runtime.NumCPU()) / (float64(sigs) * sigTime.Seconds())
	f := figure{ID: "flows", Name: "full flows (authorize→token→verify)", Value: flows.rate(), Unit: "flows/s",
		Baseline: limit, BaselineName: "signing limit: cores ÷ (signatures per flow × one RS256 signature)",
		Details: map[string]float64{
			"p50_ms": ms(percentile(flows.lat, 50)), "p99_ms": ms(percentile(flows.lat, 99)),
			// Every command Redis ran, those inside Lua scripts included,
			// and the instance's own background commands (scheduler, cache
			// refresh: a few per second) during the run.
			"redis_commands_per_flow": float64(after-before) / float64(flows.ops+flows.errs),
			"signatures_per_flow":     float64(sigs), "signature_ms": ms(sigTime), "cores": float64(runtime.NumCPU()),
			"errors": float64(flows.errs),
		}}
	// Which commands: calls per flow of each command run at least once
	// every other flow (evalsha is a script call from Anteroom; the
	// commands a script runs are counted under their own names).
	for cmd, n := range statsAfter {
		if per := float64(n-statsBefore[cmd]) / float64(flows.ops+flows.errs); per >= 0.5 && cmd != "info" {
			f.Details["cmd_"+cmd+"_per_flow"] = math.Round(per*100) / 100
		}
	}
	if f.Baseline > 0 {
		f.Ratio = f.Value / f.Baseline
	}
	return f, nil
}

func commandsProcessed(ctx context.Context, rdb *redis.Client) int64 {
	n, _ := strconv.ParseInt(infoField(ctx, rdb, "stats", "total_commands_processed"), 10, 64)
	return n
}

// commandStats returns INFO commandstats: calls per command.
func commandStats(ctx context.Context, rdb *redis.Client) map[string]int64 {
	info, err := rdb.Info(ctx, "commandstats").Result()
	out := map[string]int64{}
	if err != nil {
		return out
	}
	for line := range strings.SplitSeq(info, "\r\n") {
		name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":calls=")
		if !ok {
			continue
		}
		calls, _, _ := strings.Cut(rest, ",")
		out[name], _ = strconv.ParseInt(calls, 10, 64)
	}
	return out
}

// signatureTime is one RS256 signature with a 2048-bit key (the size
// Anteroom generates), measured on one goroutine for about a second.
func signatureTime() time.Duration {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	digest := sha256.Sum256([]byte("anteroom bench"))
	n := 0
	start := time.Now()
	for time.Since(start) < time.Second || n < 20 {
		if _, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, digest[:]); err != nil {
			panic(err)
		}
		n++
	}
	return time.Since(start) / time.Duration(n)
}

// --- Figure 4: memory -------------------------------------------------------

func usedMemory(ctx context.Context, rdb *redis.Client) int64 {
	n, _ := strconv.ParseInt(infoField(ctx, rdb, "memory", "used_memory"), 10, 64)
	return n
}

func figureMemory(ctx context.Context, o options, rdb *redis.Client) (figure, error) {
	step("figure 4: Redis memory per waiting visitor after %d joins", o.memoryN)
	store, err := storeFor(rdb)
	if err != nil {
		return figure{}, err
	}
	before := usedMemory(ctx, rdb)
	took, err := fillRoom(ctx, o, store, memoryRoom, nil)
	if err != nil {
		return figure{}, err
	}
	after := usedMemory(ctx, rdb)
	perVisitor := float64(after-before) / float64(o.memoryN)

	// The same joins with the join limit on (limits.joins_per_ip_per_minute),
	// each from an address of its own, the worst case for it: what a
	// visitor who joined in the last window or two costs on top.
	limited, err := storeFor(rdb, waitingroom.WithJoinLimit(30, 10))
	if err != nil {
		return figure{}, err
	}
	before = usedMemory(ctx, rdb)
	if _, err := fillRoom(ctx, o, limited, memoryLimitRoom, func(i int64) waitingroom.JoinOption {
		return waitingroom.JoinFrom(string([]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
	}); err != nil {
		return figure{}, err
	}
	after = usedMemory(ctx, rdb)
	perLimited := float64(after-before) / float64(o.memoryN)

	// Baseline: the same number of plain string keys (no TTL), created by
	// DEBUG POPULATE in the same server.
	before = usedMemory(ctx, rdb)
	if err := rdb.Do(ctx, "DEBUG", "POPULATE", o.memoryN, "bench-populate").Err(); err != nil {
		return figure{}, fmt.Errorf("DEBUG POPULATE: %w", err)
	}
	after = usedMemory(ctx, rdb)
	perKey := float64(after-before) / float64(o.memoryN)
	f := figure{ID: "memory", Name: "Redis bytes per waiting visitor", Value: perVisitor, Unit: "bytes",
		Baseline: perKey, BaselineName: "one plain string key (DEBUG POPULATE)",
		Details: map[string]float64{"n": float64(o.memoryN), "joins_per_s": float64(o.memoryN) / took.Seconds(),
			"with_join_limit_bytes": perLimited}}
	if perKey > 0 {
		f.Ratio = perVisitor / perKey
	}
	return f, nil
}

// fillRoom makes o.memoryN joins into room with o.concurrency workers, the
// i-th from the client from(i) names (nil: no client), and says how long
// they took.
func fillRoom(ctx context.Context, o options, store *waitingroom.Store, room string, from func(i int64) waitingroom.JoinOption) (time.Duration, error) {
	var next atomic.Int64
	run := randomHex(4)
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	start := time.Now()
	for range o.concurrency {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(o.memoryN) || ctx.Err() != nil {
					return
				}
				var opts []waitingroom.JoinOption
				if from != nil {
					opts = append(opts, from(i))
				}
				if _, err := store.Join(ctx, room, fmt.Sprintf("mem-%s-%d", run, i), nil, opts...); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return 0, *p
	}
	return time.Since(start), nil
}

// --- Output -----------------------------------------------------------------

func infoField(ctx context.Context, rdb *redis.Client, section, field string) string {
	info, err := rdb.Info(ctx, section).Result()
	if err != nil {
		return ""
	}
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return v
		}
	}
	return ""
}

func printTable(w io.Writer, res results) {
	fmt.Fprintf(w, "\nAnteroom bench: %d CPUs, %s, redis %s, %d clients, %s per figure\n\n",
		res.CPUs, res.GoVersion, res.Redis, res.Concurrency, res.Duration)
	fmt.Fprintf(w, "%-38s %14s %14s %7s %6s  %s\n", "figure", "value", "baseline", "ratio", "goal", "pass/fail (not asserted)")
	for _, f := range res.Figures {
		verdict := "—"
		if f.Pass != nil {
			verdict = map[bool]string{true: "pass", false: "fail"}[*f.Pass]
		}
		goal := f.Goal
		if goal == "" {
			goal = "—"
		}
		fmt.Fprintf(w, "%-38s %14s %14s %7.2f %6s  %s\n", f.Name,
			num(f.Value)+" "+shortUnit(f.Unit), num(f.Baseline), f.Ratio, goal, verdict)
	}
	fmt.Fprintln(w)
	for _, f := range res.Figures {
		keys := make([]string, 0, len(f.Details))
		for k := range f.Details {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, k+"="+num(f.Details[k]))
		}
		fmt.Fprintf(w, "  %-7s baseline: %s\n          %s\n", f.ID, f.BaselineName, strings.Join(parts, " "))
	}
}

func shortUnit(u string) string {
	switch u {
	case "req/s", "joins/s", "flows/s":
		return "/s"
	case "bytes":
		return "B"
	}
	return u
}

func num(v float64) string {
	switch {
	case v == math.Trunc(v) && math.Abs(v) < 1e9:
		return strconv.FormatInt(int64(v), 10)
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}
