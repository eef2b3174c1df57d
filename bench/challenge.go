package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"

	"github.com/anteroom/anteroom/challenge"
	"github.com/anteroom/anteroom/config"
)

// challengeDifficulties are the maxnumbers figure 7 measures: a quarter
// of the default, the default (a room's always, and under_load at its
// threshold) and under_load's steps up to its cap of 8×.
var challengeDifficulties = []int64{
	config.DefaultChallengeMaxNumber / 4, config.DefaultChallengeMaxNumber,
	2 * config.DefaultChallengeMaxNumber, 4 * config.DefaultChallengeMaxNumber,
	challenge.MaxLoadFactor * config.DefaultChallengeMaxNumber,
}

// figureChallenge is figure 7: what a place costs once a room challenges.
// The baseline is an unchallenged place (authorize and the waiting page,
// o.concurrency clients, the way one bot process takes places today); the
// value is the places per second a native Go solver gets on one core at
// the default difficulty, with every difficulty in the details, beside
// the time Chromium's waiting-page worker takes for the same expected work
// at 1× and 4× CPU throttling (a mid-range phone).
func figureChallenge(ctx context.Context, o options, a *instance, rdb redis.UniversalClient) (figure, error) {
	step("figure 7: a place behind a proof of work; native solver on one core vs an unchallenged join, %d rounds", o.rounds)
	client := newClient(o.concurrency)
	iss, err := challenge.New([][]byte{[]byte(randomHex(32))})
	if err != nil {
		return figure{}, err
	}
	details := map[string]float64{}
	// solveRate solves challenges at difficulty d on this goroutine for
	// o.duration and returns solutions a second: a bot's places per
	// second per core.
	solveRate := func(d int64) float64 {
		start, n := time.Now(), 0
		for time.Since(start) < o.duration || n < 3 {
			c := iss.Issue("bench", randomHex(8), d)
			if _, ok := challenge.Solve(c); !ok {
				return 0
			}
			n++
		}
		return float64(n) / time.Since(start).Seconds()
	}
	bs, vs, err := paired(o.rounds, func() (measurement, error) {
		r := load(ctx, o.concurrency, o.duration, func(ctx context.Context, _, _ int) error {
			_, err := queueVisitor(client, a)
			return err
		})
		return measurement{value: r.rate(), errs: r.errs, err: r.firstErr}, nil
	}, func() (measurement, error) {
		return measurement{value: solveRate(config.DefaultChallengeMaxNumber)}, nil
	})
	if err != nil {
		return figure{}, err
	}
	for _, d := range challengeDifficulties {
		details["native_places_per_s_at_"+strconv.FormatInt(d, 10)] = solveRate(d)
	}
	// What a place bought with a proof costs Redis, beside an ordinary
	// one: the proof's spent mark is the binding every place has.
	const places = 5000
	unchallenged, err := placeBytes(ctx, rdb, places, func() error { _, err := queueVisitor(client, a); return err })
	if err != nil {
		return figure{}, err
	}
	proved, err := placeBytes(ctx, rdb, places, func() error { return provedVisitor(client, a) })
	if err != nil {
		return figure{}, err
	}
	details["redis_bytes_per_place_unchallenged"], details["redis_bytes_per_place_with_proof"] = unchallenged, proved
	if chromium := findChromium(); chromium != "" {
		for _, rate := range []float64{1, 4} {
			for _, d := range challengeDifficulties {
				s, err := browserSolve(ctx, chromium, a.issuer, d, rate)
				if err != nil {
					return figure{}, fmt.Errorf("chromium at %v×: %w", rate, err)
				}
				details[fmt.Sprintf("chromium_%gx_seconds_at_%d", rate, d)] = s
			}
		}
	} else {
		step("figure 7: no Chromium, so no browser times")
	}
	f := figure{ID: "challenge", Name: fmt.Sprintf("places/s of a native solver on one core at max_number %d (an unchallenged join as baseline)", config.DefaultChallengeMaxNumber),
		Unit: "places/s", BaselineName: "unchallenged places/s", Details: details}
	return summary(f, bs, vs, 0, true), nil
}

// browserSolve runs the waiting page's worker (static/solve.js of a) in
// Chromium at the given CPU throttling on a challenge whose number is
// d/2, the expected work at difficulty d, and returns its seconds (the
// median of three).
func browserSolve(ctx context.Context, chromium, issuer string, d int64, rate float64) (float64, error) {
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true))
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	// A same-origin document of the instance, under its strict CSP.
	if err := chromedp.Do(bctx, chromedp.Navigate(issuer+"/static/style.css")); err != nil {
		return 0, err
	}
	if _, err := chromedp.Call(bctx, emulation.SetCPUThrottlingRate, emulation.SetCPUThrottlingRateParams{Rate: rate}); err != nil {
		return 0, err
	}
	salt := randomHex(12) + "?expires=1999999999&req=AAAAAAAAAAAAAAAA&room=bench&"
	n := d / 2
	sum := sha256.Sum256([]byte(salt + strconv.FormatInt(n, 10)))
	js := fmt.Sprintf(`new Promise(function (resolve, reject) {
  var w = new Worker("/static/solve.js");
  w.onerror = function (e) { reject(String(e.message)); };
  w.onmessage = function (e) { if (e.data.number !== undefined) { w.terminate(); resolve(e.data.number === %d ? e.data.took : -1); } };
  w.postMessage({algorithm: "SHA-256", challenge: %q, maxnumber: %d, salt: %q});
})`, n, hex.EncodeToString(sum[:]), d, salt)
	var took []float64
	for range 3 {
		ms, err := chromedp.Run(bctx, chromedp.Evaluate[float64](js, chromedp.EvalAwaitPromise))
		if err != nil {
			return 0, err
		}
		if ms < 0 {
			return 0, fmt.Errorf("the worker found another number")
		}
		took = append(took, ms/1000)
	}
	return median(took), nil
}

func findChromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// provedVisitor takes a place in the challenging room as a JSON client
// does: the waiting page's challenge, solved, posted to its proof_url.
func provedVisitor(client *http.Client, a *instance) error {
	b := browser(client)
	conf := &oauth2.Config{ClientID: powClient, RedirectURL: rpCallback, Scopes: []string{gooidc.ScopeOpenID},
		Endpoint: oauth2.Endpoint{AuthURL: a.issuer + "/authorize", TokenURL: a.issuer + "/oauth/token"}}
	l := newLogin()
	resp, err := b.Get(conf.AuthCodeURL(l.state, gooidc.Nonce(l.nonce), oauth2.S256ChallengeOption(l.verifier)))
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	req, _ := http.NewRequest(http.MethodGet, resp.Request.URL.String(), nil)
	req.Header.Set("Accept", "application/json")
	if resp, err = b.Do(req); err != nil {
		return err
	}
	var doc struct {
		Challenge challenge.Challenge `json:"challenge"`
		ProofURL  string              `json:"proof_url"`
	}
	err = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if err != nil || doc.ProofURL == "" {
		return fmt.Errorf("no challenge at %s (%s): %v", resp.Request.URL, resp.Status, err)
	}
	n, ok := challenge.Solve(doc.Challenge)
	if !ok {
		return errors.New("challenge without a solution")
	}
	body, _ := json.Marshal(map[string]string{"payload": challenge.Encode(doc.Challenge, n)})
	req, _ = http.NewRequest(http.MethodPost, doc.ProofURL, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if resp, err = b.Do(req); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("proof: %s", resp.Status)
	}
	return nil
}

// placeBytes is the growth of Redis's used_memory per place after n
// places taken by join, 32 at a time.
func placeBytes(ctx context.Context, rdb redis.UniversalClient, n int, join func() error) (float64, error) {
	settleRedis := func() int64 { time.Sleep(time.Second); return usedMemory(ctx, rdb) }
	before := settleRedis()
	if err := forEach(ctx, n, 32, func(int) error { return join() }); err != nil {
		return 0, err
	}
	return float64(settleRedis()-before) / float64(n), nil
}
