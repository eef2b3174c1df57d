package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/cookiejar"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
)

// newClient is the load generator's HTTP client: keep-alive connections, one
// per worker, no redirects followed (each figure decides what a hop means).
func newClient(concurrency int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        concurrency * 4,
			MaxIdleConnsPerHost: concurrency * 2,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
		Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// loadResult is what one timed run of an operation yields.
type loadResult struct {
	ops, errs int64
	elapsed   time.Duration
	lat       []time.Duration
	firstErr  error
}

func (r loadResult) rate() float64 { return float64(r.ops) / r.elapsed.Seconds() }

// load runs op from c goroutines for d and returns the completed operations
// per second, the latencies of the successful ones and the error count. An
// operation cut off by the deadline is not counted either way.
func load(ctx context.Context, c int, d time.Duration, op func(ctx context.Context, worker, i int) error) loadResult {
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
					break
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

// forEach runs op(0) … op(n-1) from workers goroutines and returns the
// first error; after one, or once ctx is done, no more ops start.
func forEach(ctx context.Context, n, workers int, op func(i int) error) error {
	var next atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n && firstErr.Load() == nil && ctx.Err() == nil; i = int(next.Add(1) - 1) {
				if err := op(i); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return *p
	}
	return ctx.Err()
}

// paired measures a figure and its baseline in alternating rounds (baseline,
// value, baseline, value, …), so that both see the same share of whatever
// else the machine is doing, and returns every round. Each function returns
// one measurement and the latencies behind it, if any.
type measurement struct {
	value float64
	lat   []time.Duration
	errs  int64
	err   error // the first failure, for the log
}

func paired(rounds int, baseline, value func() (measurement, error)) ([]measurement, []measurement, error) {
	var bs, vs []measurement
	for range rounds {
		b, err := baseline()
		if err != nil {
			return nil, nil, fmt.Errorf("baseline: %w", err)
		}
		v, err := value()
		if err != nil {
			return nil, nil, err
		}
		bs, vs = append(bs, b), append(vs, v)
	}
	return bs, vs, nil
}

// summary turns rounds into a figure: medians of the values, of the
// baselines and of the per-round ratios, and the latency percentiles of all
// rounds together.
func summary(f figure, bs, vs []measurement, goal float64, atLeast bool) figure {
	var values, bases, ratios []float64
	var lat []time.Duration
	var errs int64
	for i := range vs {
		values = append(values, vs[i].value)
		lat = append(lat, vs[i].lat...)
		errs += vs[i].errs
		if i < len(bs) {
			bases = append(bases, bs[i].value)
			if bs[i].value > 0 {
				ratios = append(ratios, vs[i].value/bs[i].value)
			}
		}
	}
	f.Value, f.Baseline, f.Ratio = median(values), median(bases), median(ratios)
	for i := range values {
		r := round{Value: values[i]}
		if i < len(bases) {
			r.Baseline = bases[i]
		}
		if i < len(ratios) {
			r.Ratio = ratios[i]
		}
		f.Rounds = append(f.Rounds, r)
	}
	if f.Details == nil {
		f.Details = map[string]float64{}
	}
	if len(lat) > 0 {
		f.Details["p50_ms"] = ms(percentile(lat, 50))
		f.Details["p99_ms"] = ms(percentile(lat, 99))
	}
	f.Details["errors"] = float64(errs)
	if goal > 0 {
		f.Goal = fmt.Sprintf(">= %g", goal)
		pass := f.Ratio >= goal
		if !atLeast {
			f.Goal = fmt.Sprintf("<= %g", goal)
			pass = f.Ratio <= goal
		}
		f.Pass = &pass
	}
	return f
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
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

// get fetches u with cookie and drains the body; anything but 200 is an error.
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

// login is one relying party's view of an authorization request.
type login struct{ state, nonce, verifier string }

func newLogin() login {
	return login{state: oauth2.GenerateVerifier()[:22], nonce: oauth2.GenerateVerifier()[:22], verifier: oauth2.GenerateVerifier()}
}

// browser is one visitor: a cookie jar on the shared transport that follows
// redirects until the relying party's callback, which it never calls.
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
