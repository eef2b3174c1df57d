package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"
)

// process is `anteroom serve` running as a process of its own.
type process struct {
	t      *testing.T
	cmd    *exec.Cmd
	addr   string
	output *lockedBuffer
	exited chan struct{}
}

// processConfig is the configuration the processes share, listening on
// LISTEN: a room that admits five visitors a second, and the relying party.
const processConfig = `issuer: ` + issuer + `
listen: LISTEN
redis: {url: REDIS}
secrets: {cookie_keys: ["` + cookieKey + `"]}
admin: {token: "` + adminToken + `"}
rooms:
  - id: ` + roomID + `
    admission: {rate_per_minute: 300}
    session_ttl: 30m
    max_wait: 1h
clients:
  - id: ` + clientID + `
    secret: ` + secret + `
    redirect_uris: [` + rpCallback + `]
    room: ` + roomID + `
`

func startProcess(t *testing.T, name string) *process {
	t.Helper()
	p := launchProcess(t, name, redisServer.URL())
	p.waitFor("/readyz")
	return p
}

// launchProcess starts `anteroom serve` on the Redis at redisURL without
// waiting for anything.
func launchProcess(t *testing.T, name, redisURL string) *process {
	t.Helper()
	addr := freeAddr(t)
	conf := strings.NewReplacer("LISTEN", addr, "REDIS", redisURL).Replace(processConfig)
	return launchConfigured(t, name, conf, addr, nil)
}

// launchConfigured starts `anteroom serve` with the configuration conf,
// whose health checks answer at addr, and env added to the test's own
// environment, without waiting for anything.
func launchConfigured(t *testing.T, name, conf, addr string, env []string) *process {
	t.Helper()
	path := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &process{t: t, addr: addr, output: &lockedBuffer{}, exited: make(chan struct{})}
	self := anteroomBinary(t)
	p.cmd = exec.Command(self, "serve", "--config", path)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.output, p.output
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(25 * time.Second):
			p.signal(syscall.SIGKILL)
			<-p.exited
		}
		if t.Failed() {
			t.Logf("%s's output:\n%s", name, p.output.String())
		}
	})
	return p
}

// waitFor waits until the process answers 200 at path (/healthz: it
// listens, /readyz: it is ready).
func (p *process) waitFor(path string) {
	p.t.Helper()
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := c.Get("http://" + p.addr + path)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.exited:
			p.t.Fatalf("%s exited at start: %s\n%s", p.cmd.Args[0], p.cmd.ProcessState, p.output.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: no 200 at %s:\n%s", p.addr, path, p.output.String())
		}
	}
}

func (p *process) signal(s syscall.Signal) {
	select {
	case <-p.exited:
	default:
		_ = p.cmd.Process.Signal(s)
	}
}

// permanent marks an error that retrying must not retry.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// retrying runs step until it succeeds, as a browser or a relying party
// behind a load balancer retries a request the dead instance dropped.
func retrying[T any](ctx context.Context, step func() (T, error)) (T, error) {
	for {
		v, err := step()
		if err == nil {
			return v, nil
		}
		if errors.As(err, new(permanent)) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Two instances run as processes; visitors' flows are in progress on both
// (waiting, admitted but not yet back, holding a code not yet redeemed)
// when one is SIGKILLed. Every flow finishes on the survivor, the visitor
// or relying party retrying what the dead one dropped, and the survivor
// takes the room's scheduler lease over and admits again.
func TestKilledInstanceFlowsFinishOnTheSurvivor(t *testing.T) {
	if !redisServer.Real() {
		t.Skip("needs a real redis-server: miniredis never expires the dead instance's lease")
	}
	if err := redisServer.FlushAll(); err != nil {
		t.Fatal(err)
	}
	rdb := redisServer.Client(t)
	lease := "anteroom:{r:" + roomID + "}:lease"
	a := startProcess(t, "a")
	// a alone schedules the room before b starts.
	deadline := time.Now().Add(10 * time.Second)
	for rdb.Exists(t.Context(), lease).Val() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the first instance never took the scheduler lease")
		}
		time.Sleep(20 * time.Millisecond)
	}
	leader := rdb.Get(t.Context(), lease).Val()
	b := startProcess(t, "b")
	lb := &balancer{}
	lb.set(a.addr, b.addr)
	rpClient := &http.Client{Transport: lb.transport(), Timeout: 10 * time.Second}
	rpCtx := context.WithValue(context.Background(), oauth2.HTTPClient, rpClient)
	provider, err := gooidc.NewProvider(rpCtx, issuer)
	if err != nil {
		t.Fatal(err)
	}
	oauth := &oauth2.Config{ClientID: clientID, ClientSecret: secret, Endpoint: provider.Endpoint(), RedirectURL: rpCallback, Scopes: []string{gooidc.ScopeOpenID}}
	verifier := provider.Verifier(&gooidc.Config{ClientID: clientID})

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	killed := make(chan struct{})
	var holding sync.WaitGroup
	// flow is one visitor's way through. hold, if set, is where it waits
	// until the instance is killed: "continue" (admitted, not back yet) or
	// "exchange" (the relying party holds a code). A request the dead
	// instance took with it is retried; one that cannot be (a code it
	// redeemed, a request it answered) sends the relying party back to
	// start the login again, which an admitted visitor passes straight
	// through.
	var again atomic.Int64
	flow := func(hold string) error {
		browser := browserVia(lb.transport())
		held := hold == ""
		wait := func() { held = true; holding.Done(); <-killed }
		defer func() {
			if !held {
				holding.Done() // failed before its hold: do not hold the kill up
			}
		}()
		for attempt := 0; ; attempt++ {
			err := logIn(ctx, browser, oauth, verifier, rpCtx, hold, attempt > 0, wait)
			if !errors.Is(err, errStartAgain) || attempt == 2 {
				return err
			}
			again.Add(1)
			hold = ""
		}
	}

	errs := make(chan error, 32)
	var all sync.WaitGroup
	start := func(n int, hold string) {
		for range n {
			if hold != "" {
				holding.Add(1)
			}
			all.Add(1)
			go func() {
				defer all.Done()
				if err := flow(hold); err != nil {
					errs <- fmt.Errorf("flow (hold %q): %w", hold, err)
				}
			}()
		}
	}
	start(4, "exchange")
	start(4, "continue")
	holding.Wait()
	start(16, "")
	time.Sleep(300 * time.Millisecond) // the crowd is in the queue

	servingAtKill := counter(t, rdb, "serving")
	a.signal(syscall.SIGKILL)
	<-a.exited
	killedAt := time.Now()
	close(killed)
	t.Logf("killed the leader with the counter at %d of %d", servingAtKill, counter(t, rdb, "tail"))

	// The survivor takes the lease over and the counter moves again.
	var leaseMoved, advanced time.Duration
	for leaseMoved == 0 || advanced == 0 {
		if leaseMoved == 0 {
			if v := rdb.Get(t.Context(), lease).Val(); v != "" && v != leader {
				leaseMoved = time.Since(killedAt)
			}
		}
		if advanced == 0 && counter(t, rdb, "serving") > servingAtKill {
			advanced = time.Since(killedAt)
		}
		if ctx.Err() != nil {
			t.Fatalf("after the kill: lease moved after %v, counter moved after %v (0: never)", leaseMoved, advanced)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("after the kill, the lease moved after %v and the counter after %v", leaseMoved.Round(time.Millisecond), advanced.Round(time.Millisecond))

	all.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("24 flows finished %v after the kill; %d relying parties started a login again", time.Since(killedAt).Round(time.Millisecond), again.Load())
}

// errStartAgain is a login step the dead instance finished but could not
// answer, and that cannot be repeated: the code it redeemed, the request
// it answered. A relying party starts the login again.
var errStartAgain = errors.New("start the login again")

// logIn runs one login of browser through the relying party oauth: the
// authorization request, waiting until admitted, continue, and the token
// exchange, retrying each step the load balancer's dead instance dropped.
// At hold ("continue" or "exchange") it calls wait. again is set for a
// login started again: the visitor is admitted and must not wait.
func logIn(ctx context.Context, browser *http.Client, oauth *oauth2.Config, verifier *gooidc.IDTokenVerifier, rpCtx context.Context,
	hold string, again bool, wait func()) error {
	l := newLogin()
	authURL := oauth.AuthCodeURL(l.state, gooidc.Nonce(l.nonce), oauth2.S256ChallengeOption(l.verifier))
	// codeIn returns the code of a redirect to the relying party.
	codeIn := func(resp *http.Response) string {
		if loc, err := resp.Location(); err == nil && loc.Host == rpHost {
			return loc.Query().Get("code")
		}
		return ""
	}
	type step struct{ waitURL, code string }
	first, err := retrying(ctx, func() (step, error) {
		resp, _, err := get(browser, authURL)
		switch {
		case err != nil:
			return step{}, err
		case codeIn(resp) != "":
			// Let straight through: the safety net, or an admitted visitor.
			return step{code: codeIn(resp)}, nil
		case again:
			return step{}, permanent{fmt.Errorf("an admitted visitor logging in again got %d at %s", resp.StatusCode, resp.Request.URL)}
		case resp.StatusCode == http.StatusOK && strings.HasPrefix(resp.Request.URL.String(), issuer+"/wait/"):
			return step{waitURL: resp.Request.URL.String()}, nil
		}
		return step{}, fmt.Errorf("authorize: %d at %s", resp.StatusCode, resp.Request.URL)
	})
	if err != nil {
		return err
	}
	code := first.code
	if code == "" {
		if _, err := retrying(ctx, func() (bool, error) {
			resp, body, err := get(browser, first.waitURL+"?format=json")
			if err != nil {
				return false, err
			}
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"state":"admitted"`) {
				return false, fmt.Errorf("poll: %d %s", resp.StatusCode, body)
			}
			return true, nil
		}); err != nil {
			return err
		}
	}
	if hold == "continue" {
		wait()
	}
	if code == "" {
		code, err = retrying(ctx, func() (string, error) {
			req, _ := http.NewRequest(http.MethodPost, first.waitURL+"/continue", nil)
			resp, err := browser.Do(req)
			if err != nil {
				return "", err
			}
			resp.Body.Close()
			if c := codeIn(resp); c != "" {
				return c, nil
			}
			if resp.StatusCode == http.StatusConflict {
				// The dead instance answered the request already.
				return "", permanent{errStartAgain}
			}
			return "", fmt.Errorf("continue: %d at %s", resp.StatusCode, resp.Request.URL)
		})
		if err != nil {
			return err
		}
	}
	if hold == "exchange" {
		wait()
	}
	_, err = retrying(ctx, func() (bool, error) {
		tok, err := oauth.Exchange(rpCtx, code, oauth2.VerifierOption(l.verifier))
		if err != nil {
			var re *oauth2.RetrieveError
			if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
				// The dead instance redeemed the code and took the
				// tokens with it.
				return false, permanent{fmt.Errorf("%w: %w", errStartAgain, err)}
			}
			return false, err
		}
		raw, _ := tok.Extra("id_token").(string)
		if _, err := verifier.Verify(rpCtx, raw); err != nil {
			return false, permanent{err}
		}
		return true, nil
	})
	return err
}

// counter reads one of the room's counters from Redis.
func counter(t *testing.T, rdb redis.UniversalClient, name string) int64 {
	t.Helper()
	n, _ := rdb.Get(t.Context(), "anteroom:{r:"+roomID+"}:"+name).Int64()
	return n
}

// `anteroom serve` passes its build to the instance: the version that
// anteroom_build_info names is the one `anteroom version` prints.
func TestServedBinaryNamesItsBuildInMetrics(t *testing.T) {
	code, stdout, stderr := runAnteroom(t, "version")
	fields := strings.Fields(stdout)
	if code != 0 || len(fields) < 2 {
		t.Fatalf("anteroom version: exit %d, %q %q", code, stdout, stderr)
	}
	p := startProcess(t, "build-info")
	resp, err := http.Get("http://" + p.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	want := `version="` + fields[1] + `"} 1`
	for line := range strings.SplitSeq(string(body), "\n") {
		if strings.HasPrefix(line, "anteroom_build_info{") {
			if !strings.HasSuffix(line, want) {
				t.Fatalf("%s: want it to end %s", line, want)
			}
			return
		}
	}
	t.Fatalf("/metrics has no anteroom_build_info:\n%s", body)
}
