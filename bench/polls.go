package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// waitingVisitor is one real visitor parked in the poll room: the URL of its
// status JSON and the cookies its browser holds.
type waitingVisitor struct {
	waitURL, pollURL, cookie string
}

// queueVisitor sends one public-client login through authorize to its
// waiting page and returns what its page polls.
func queueVisitor(client *http.Client, a *instance) (waitingVisitor, error) {
	return queueVisitorOf(client, a, pollClient)
}

// queueVisitorOf is queueVisitor for the room of clientID.
func queueVisitorOf(client *http.Client, a *instance, clientID string) (waitingVisitor, error) {
	b := browser(client)
	conf := &oauth2.Config{ClientID: clientID, RedirectURL: rpCallback, Scopes: []string{gooidc.ScopeOpenID},
		Endpoint: oauth2.Endpoint{AuthURL: a.issuer + "/authorize", TokenURL: a.issuer + "/oauth/token"}}
	l := newLogin()
	resp, err := b.Get(conf.AuthCodeURL(l.state, gooidc.Nonce(l.nonce), oauth2.S256ChallengeOption(l.verifier)))
	if err != nil {
		return waitingVisitor{}, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	waitURL := resp.Request.URL.String()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(waitURL, a.issuer+"/wait/") {
		return waitingVisitor{}, fmt.Errorf("authorize ended with %s at %s, not on a waiting page", resp.Status, waitURL)
	}
	u, _ := url.Parse(waitURL)
	var cookies []string
	for _, c := range b.Jar.Cookies(u) {
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	return waitingVisitor{waitURL: waitURL, pollURL: waitURL + "?format=json", cookie: strings.Join(cookies, "; ")}, nil
}

// figurePolls is figure 1: a waiting page's status poll against a bare
// net/http server that answers the same bytes.
func figurePolls(ctx context.Context, o options, a *instance) (figure, error) {
	step("figure 1: status polls vs a bare net/http handler, %d clients, %d rounds of %s", o.concurrency, o.rounds, o.duration)
	client := newClient(o.concurrency)
	v, err := queueVisitor(client, a)
	if err != nil {
		return figure{}, err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, v.pollURL, nil)
	req.Header.Set("Cookie", v.cookie)
	resp, err := client.Do(req)
	if err != nil {
		return figure{}, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !json.Valid(body) {
		return figure{}, fmt.Errorf("status poll: %s: %.200s", resp.Status, body)
	}
	u, _ := url.Parse(v.waitURL)
	bareURL, _, stopBare, err := startBare(resp, body, u.Path+"?format=json")
	if err != nil {
		return figure{}, err
	}
	defer stopBare()

	poll := func(target string) func() (measurement, error) {
		return func() (measurement, error) {
			r := load(ctx, o.concurrency, o.duration, func(ctx context.Context, _, _ int) error { return get(ctx, client, target, v.cookie) })
			if r.ops == 0 {
				return measurement{}, fmt.Errorf("no successful GET %s: %v", target, r.firstErr)
			}
			return measurement{value: r.rate(), lat: r.lat, errs: r.errs, err: r.firstErr}, nil
		}
	}
	// Warm both: connections, and the instance's first-use paths.
	load(ctx, o.concurrency, time.Second, func(ctx context.Context, _, _ int) error { return get(ctx, client, bareURL, v.cookie) })
	load(ctx, o.concurrency, time.Second, func(ctx context.Context, _, _ int) error { return get(ctx, client, v.pollURL, v.cookie) })
	bs, vs, err := paired(o.rounds, poll(bareURL), profiled(a, o.profilePath("polls"), o.duration, poll(v.pollURL)))
	if err != nil {
		return figure{}, err
	}
	f := figure{ID: "polls", Name: "status polls (/wait/{id} JSON)", Unit: "req/s",
		BaselineName: "bare net/http handler, same bytes, same client",
		Details:      map[string]float64{"body_bytes": float64(len(body))}}
	return summary(f, bs, vs, 0.7, true), nil
}

// startBare runs this program's "bare" mode as a separate process, as
// Anteroom is one, and returns the URL it serves resp's status, headers
// (all but Date, which net/http writes itself) and body at, and its pid.
func startBare(resp *http.Response, body []byte, path string) (string, int, func(), error) {
	stem := filepath.Join(os.TempDir(), fmt.Sprintf("anteroom-bench-bare-%d-%s", os.Getpid(), randomHex(4)))
	h := resp.Header.Clone()
	h.Del("Date")
	hdr, _ := json.Marshal(h)
	if err := os.WriteFile(stem+".body", body, 0o600); err != nil {
		return "", 0, nil, err
	}
	if err := os.WriteFile(stem+".headers", hdr, 0o600); err != nil {
		os.Remove(stem + ".body")
		return "", 0, nil, err
	}
	cleanup := func() { os.Remove(stem + ".body"); os.Remove(stem + ".headers") }
	addr, pid, stop, err := startSelf("bare", "-body", stem+".body", "-headers", stem+".headers", "-status", strconv.Itoa(resp.StatusCode))
	if err != nil {
		cleanup()
		return "", 0, nil, err
	}
	return "http://" + addr + path, pid, func() { stop(); cleanup() }, nil
}

// startSelf runs this program in another mode as a child process, which
// prints the address it serves on its first line, and returns that address
// and the child's pid.
func startSelf(mode string, args ...string) (string, int, func(), error) {
	self, err := os.Executable()
	if err != nil {
		return "", 0, nil, err
	}
	cmd := exec.Command(self, append([]string{mode}, args...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", 0, nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", 0, nil, err
	}
	stop := func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		stop()
		return "", 0, nil, fmt.Errorf("%s did not start: %w", mode, err)
	}
	return strings.TrimSpace(line), cmd.Process.Pid, stop, nil
}

// bare answers every request with one recorded response: status, headers
// and body. It is the baseline of figures 1 and 6: what net/http alone
// costs for the same bytes on the wire.
func bare(args []string) {
	fs := flag.NewFlagSet("bare", flag.ExitOnError)
	bodyPath := fs.String("body", "", "file whose bytes to serve")
	headersPath := fs.String("headers", "", "file with the response headers, as JSON")
	status := fs.Int("status", http.StatusOK, "response status")
	_ = fs.Parse(args)
	body, err := os.ReadFile(*bodyPath)
	if err != nil {
		fatal(err)
	}
	var header http.Header
	if data, err := os.ReadFile(*headersPath); err != nil {
		fatal(err)
	} else if err := json.Unmarshal(data, &header); err != nil {
		fatal(err)
	}
	serveUntilSignal(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		for k, v := range header {
			h[k] = v
		}
		w.WriteHeader(*status)
		_, _ = w.Write(body)
	}), nil)
}

// serveUntilSignal serves h on a free loopback port, prints the address on
// stdout and returns at SIGTERM, calling onStop (if any) first.
func serveUntilSignal(h http.Handler, onStop func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatal(err)
	}
	fmt.Println(ln.Addr().String())
	srv := &http.Server{Handler: h}
	go func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM, os.Interrupt)
		<-ch
		if onStop != nil {
			onStop()
		}
		_ = srv.Close()
	}()
	_ = srv.Serve(ln)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}
