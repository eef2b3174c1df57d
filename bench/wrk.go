package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Figure 6 measures the two hot paths with wrk, a load generator written in
// C that takes far less CPU per request than this program's Go client: on a
// machine of few cores the Go client's own cost hides part of the server's,
// and flatters a slow server against a fast one. wrk runs one thread and
// wrkConns connections, as the figures in the README were first taken.

// wrkResult is one wrk run: its rate and how many requests it completed.
type wrkResult struct {
	rate     float64
	requests int64
}

var (
	wrkRate     = regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)`)
	wrkRequests = regexp.MustCompile(`(?m)^\s*([0-9]+) requests in `)
	wrkBad      = regexp.MustCompile(`(?m)^\s*(Non-2xx or 3xx responses|Socket errors):.*$`)
)

// runWrk drives target with wrk for d, sending header lines ("Name: value").
// Any non-2xx answer or socket error fails the run: a figure of refusals
// would measure the wrong path.
func runWrk(ctx context.Context, conns int, d time.Duration, target string, header []string) (wrkResult, error) {
	args := []string{"-t1", "-c" + strconv.Itoa(conns), "-d" + strconv.Itoa(max(1, int(d.Seconds()))) + "s"}
	for _, h := range header {
		args = append(args, "-H", h)
	}
	out, err := exec.CommandContext(ctx, "wrk", append(args, target)...).CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk %s: %w: %s", target, err, out)
	}
	if m := wrkBad.Find(out); m != nil {
		return wrkResult{}, fmt.Errorf("wrk %s: %s", target, strings.TrimSpace(string(m)))
	}
	rate, req := wrkRate.FindSubmatch(out), wrkRequests.FindSubmatch(out)
	if rate == nil || req == nil {
		return wrkResult{}, fmt.Errorf("wrk %s: unexpected output: %s", target, out)
	}
	var r wrkResult
	r.rate, _ = strconv.ParseFloat(string(rate[1]), 64)
	r.requests, _ = strconv.ParseInt(string(req[1]), 10, 64)
	if r.requests == 0 {
		return wrkResult{}, fmt.Errorf("wrk %s: no requests completed", target)
	}
	return r, nil
}

// gateVisitor logs one browser in through the gate (the bench's gate
// queues every path in the passthrough room, so it is admitted at once)
// and returns the Cookie header that carries its session and ticket.
func gateVisitor(client *http.Client, a *instance) (string, error) {
	b := browser(client)
	resp, err := b.Get(a.issuer + "/gate/start?rd=" + url.QueryEscape("/app"))
	if err != nil {
		return "", err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	u, _ := url.Parse(a.issuer + "/")
	var cookies []string
	admitted := false
	for _, c := range b.Jar.Cookies(u) {
		cookies = append(cookies, c.Name+"="+c.Value)
		admitted = admitted || c.Name == gateCookie+"_"+openRoom
	}
	if !admitted {
		return "", fmt.Errorf("gate login ended with %s at %s without a session cookie", resp.Status, resp.Request.URL)
	}
	return strings.Join(cookies, "; "), nil
}

// wrkTarget is one path of figure 6: a request wrk repeats, against
// Anteroom and against a bare net/http server replaying Anteroom's answer.
type wrkTarget struct {
	id, name string
	path     string // with its query
	header   []string
	status   int
}

// figureWrk is figure 6: one hot path under wrk, alternating rounds of the
// bare baseline and of Anteroom, with each server's CPU per request as
// the kernel counts it.
func figureWrk(ctx context.Context, o options, a *instance, t wrkTarget) (figure, error) {
	step("figure 6: %s (wrk -t1 -c%d) vs a bare net/http server, %d rounds of %s", t.name, o.wrkConns, o.rounds, o.duration)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, a.issuer+t.path, nil)
	for _, h := range t.header {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := newClient(1).Do(req)
	if err != nil {
		return figure{}, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != t.status {
		return figure{}, fmt.Errorf("%s: %s, want %d: %.200s", t.path, resp.Status, t.status, body)
	}
	bareURL, barePID, stopBare, err := startBare(resp, body, t.path)
	if err != nil {
		return figure{}, err
	}
	defer stopBare()

	// CPU per request, as the kernel counts it, is steadier than the rate
	// on a busy machine; Anteroom's allocations per request (from its
	// Go runtime's own counter) do not depend on the machine at all.
	var serverUS, bareUS, allocs []float64
	measure := func(target string, pid int, us *[]float64) func() (measurement, error) {
		return func() (measurement, error) {
			mallocs := func() float64 { return 0 }
			if pid == a.cmd.Process.Pid {
				mallocs = func() float64 { n, _ := a.metric("go_memstats_mallocs_total"); return n }
			}
			m0 := mallocs()
			before, err := processCPU(pid)
			if err != nil {
				return measurement{}, err
			}
			r, err := runWrk(ctx, o.wrkConns, o.duration, target, t.header)
			if err != nil {
				return measurement{}, err
			}
			after, _ := processCPU(pid)
			*us = append(*us, float64((after-before).Microseconds())/float64(r.requests))
			if pid == a.cmd.Process.Pid {
				allocs = append(allocs, (mallocs()-m0)/float64(r.requests))
			}
			return measurement{value: r.rate}, nil
		}
	}
	// Warm both: connections, and the instance's first-use paths.
	if _, err := runWrk(ctx, o.wrkConns, time.Second, bareURL, t.header); err != nil {
		return figure{}, err
	}
	if _, err := runWrk(ctx, o.wrkConns, time.Second, a.issuer+t.path, t.header); err != nil {
		return figure{}, err
	}
	bs, vs, err := paired(o.rounds, measure(bareURL, barePID, &bareUS),
		profiled(a, o.profilePath(t.id), o.duration, measure(a.issuer+t.path, a.cmd.Process.Pid, &serverUS)))
	if err != nil {
		return figure{}, err
	}
	f := figure{ID: t.id, Name: t.name, Unit: "req/s",
		BaselineName: fmt.Sprintf("bare net/http replaying Anteroom's status, headers and body; wrk -t1 -c%d", o.wrkConns),
		Details: map[string]float64{"body_bytes": float64(len(body)),
			"server_us_per_req": median(serverUS), "bare_us_per_req": median(bareUS), "server_allocs_per_req": median(allocs)}}
	return summary(f, bs, vs, 0.7, true), nil
}

// figuresWrk is figure 6 for both hot paths: a waiting page's status poll
// and /gate/auth for an admitted visitor.
func figuresWrk(ctx context.Context, o options, a *instance) ([]figure, error) {
	if _, err := exec.LookPath("wrk"); err != nil {
		return nil, errors.New("wrk is required (apt-get install wrk)")
	}
	client := newClient(4)
	v, err := queueVisitor(client, a)
	if err != nil {
		return nil, err
	}
	u, _ := url.Parse(v.pollURL)
	poll, err := figureWrk(ctx, o, a, wrkTarget{id: "polls-wrk", name: "status polls under wrk", path: u.RequestURI(),
		header: []string{"Cookie: " + v.cookie}, status: http.StatusOK})
	if err != nil {
		return nil, fmt.Errorf("status polls: %w", err)
	}
	cookie, err := gateVisitor(client, a)
	if err != nil {
		return nil, err
	}
	auth, err := figureWrk(ctx, o, a, wrkTarget{id: "gate-auth-wrk", name: "/gate/auth, admitted, under wrk", path: "/gate/auth",
		header: []string{"Cookie: " + cookie, "X-Original-URI: /app"}, status: http.StatusNoContent})
	if err != nil {
		return nil, fmt.Errorf("/gate/auth: %w", err)
	}
	return []figure{poll, auth}, nil
}
