package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"
)

// figureFlows is figure 3 for one signing algorithm: whole OIDC flows in a
// passthrough room, against the signing limit of the machine.
func figureFlows(ctx context.Context, o options, rdb *redis.Client, a *instance, alg string) (figure, error) {
	step("figure 3 (%s): full OIDC flows in a passthrough room, %d clients, %d rounds of %s", alg, o.concurrency, o.rounds, o.duration)
	client := newClient(o.concurrency)
	octx := context.WithValue(ctx, oauth2.HTTPClient, client)
	provider, err := gooidc.NewProvider(octx, a.issuer)
	if err != nil {
		return figure{}, err
	}
	verifier := provider.Verifier(&gooidc.Config{ClientID: flowClient, SupportedSigningAlgs: []string{alg}})
	conf := &oauth2.Config{ClientID: flowClient, ClientSecret: flowSecret, RedirectURL: rpCallback,
		Endpoint: provider.Endpoint(), Scopes: []string{gooidc.ScopeOpenID}}

	var sigsSeen atomic.Int64 // JWTs in a token response
	flow := func(ctx context.Context, _, _ int) error {
		b := browser(client)
		l := newLogin()
		resp, err := b.Get(conf.AuthCodeURL(l.state, gooidc.Nonce(l.nonce), oauth2.S256ChallengeOption(l.verifier)))
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && strings.HasPrefix(resp.Request.URL.String(), a.issuer+"/wait/") {
			// A waiting page: continue (a passthrough room normally skips it).
			resp, err = b.Post(resp.Request.URL.String()+"/continue", "", nil)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		loc, err := resp.Location()
		if err != nil || loc.Host != rpAddr {
			return fmt.Errorf("flow ended with %s at %s, not at the callback", resp.Status, resp.Request.URL)
		}
		if loc.Query().Get("state") != l.state || loc.Query().Get("code") == "" {
			return fmt.Errorf("bad callback %s", loc)
		}
		tok, err := conf.Exchange(octx, loc.Query().Get("code"), oauth2.VerifierOption(l.verifier))
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
	load(ctx, o.concurrency, time.Second, flow) // warm up: connections, JWKS, the first signatures
	sig := signer(alg)
	var commands, total int64
	perFlow := func(d time.Duration) float64 { return ms(d) / float64(max(1, total)) }
	var sigMS []float64
	limit := func() (measurement, error) {
		perSig := sig()
		sigMS = append(sigMS, ms(perSig))
		n := float64(max(1, sigsSeen.Load()))
		return measurement{value: float64(runtime.NumCPU()) / (n * perSig.Seconds())}, nil
	}
	var antCPU, genCPU, redisCPU time.Duration
	flows := func() (measurement, error) {
		before := commandsProcessed(ctx, rdb)
		a0, _ := a.cpu()
		g0, r0 := selfCPU(), redisCPUTime(ctx, rdb)
		r := load(ctx, o.concurrency, o.duration, flow)
		a1, _ := a.cpu()
		antCPU, genCPU, redisCPU = antCPU+a1-a0, genCPU+selfCPU()-g0, redisCPU+redisCPUTime(ctx, rdb)-r0
		commands += commandsProcessed(ctx, rdb) - before
		total += r.ops + r.errs
		if r.ops == 0 {
			return measurement{}, fmt.Errorf("no successful flow: %v", r.firstErr)
		}
		if r.firstErr != nil {
			step("figure 3 (%s): %d flow errors, first: %v", alg, r.errs, r.firstErr)
		}
		return measurement{value: r.rate(), lat: r.lat, errs: r.errs, err: r.firstErr}, nil
	}
	statsBefore := commandStats(ctx, rdb)
	bs, vs, err := paired(o.rounds, limit, profiled(a, o.profilePath("flows-"+strings.ToLower(alg)), o.duration, flows))
	if err != nil {
		return figure{}, err
	}
	statsAfter := commandStats(ctx, rdb)
	f := figure{ID: "flows_" + strings.ToLower(alg), Name: "full flows, " + alg + " (authorize→token→verify)", Unit: "flows/s",
		BaselineName: "signing limit: cores ÷ (signatures per flow × one " + alg + " signature)",
		Details: map[string]float64{
			// Every command Redis ran, those inside Lua scripts included,
			// and the instances' own background commands (scheduler,
			// counter cache: a few per second) during the runs.
			"redis_commands_per_flow": float64(commands) / float64(max(1, total)),
			"signatures_per_flow":     float64(sigsSeen.Load()),
			"signature_ms":            median(sigMS),
			"cores":                   float64(runtime.NumCPU()),
			// Where the machine's CPU went per flow: Anteroom (signing
			// included), the load generator (HTTP client, go-oidc's
			// verification) and Redis, which share the cores here.
			"anteroom_cpu_ms_per_flow": perFlow(antCPU),
			"loadgen_cpu_ms_per_flow":  perFlow(genCPU),
			"redis_cpu_ms_per_flow":    perFlow(redisCPU),
		}}
	// The share of Anteroom's own CPU that signing takes: the ratio to the
	// signing limit that flows would reach with the cores to itself.
	if cpu := perFlow(antCPU); cpu > 0 {
		f.Details["anteroom_alone_ratio"] = float64(sigsSeen.Load()) * median(sigMS) / cpu
	}
	// Which commands: calls per flow of each command run at least once
	// every other flow (evalsha is a script call from Anteroom; what a
	// script runs is counted under its own names).
	for cmd, n := range statsAfter {
		if per := float64(n-statsBefore[cmd]) / float64(max(1, total)); per >= 0.5 && cmd != "info" {
			f.Details["cmd_"+cmd+"_per_flow"] = math.Round(per*100) / 100
		}
	}
	return summary(f, bs, vs, 0.8, true), nil
}

// redisCPUTime is the CPU time redis-server has used (INFO cpu).
func redisCPUTime(ctx context.Context, rdb redis.UniversalClient) time.Duration {
	var total float64
	for _, field := range []string{"used_cpu_user", "used_cpu_sys"} {
		v, _ := strconv.ParseFloat(infoField(ctx, rdb, "cpu", field), 64)
		total += v
	}
	return time.Duration(total * float64(time.Second))
}

// signer returns a function that measures the CPU time of one signature
// with alg, with a key of the size Anteroom generates, on one locked
// thread for about half a second. CPU time, not wall time: on a busy
// machine a signature waits for a core, which is not what it costs.
func signer(alg string) func() time.Duration {
	digest := sha256.Sum256([]byte("anteroom bench"))
	var sign func() error
	switch alg {
	case "ES256":
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		sign = func() error { _, err := ecdsa.SignASN1(rand.Reader, key, digest[:]); return err }
	default:
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		sign = func() error { _, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, digest[:]); return err }
	}
	return func() time.Duration {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		n := 0
		start, cpu0 := time.Now(), threadCPU()
		for time.Since(start) < 500*time.Millisecond || n < 20 {
			if err := sign(); err != nil {
				panic(err)
			}
			n++
		}
		return (threadCPU() - cpu0) / time.Duration(n)
	}
}

// threadCPU is the CPU time of the calling OS thread.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(rusageThread, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rusageThread is Linux's RUSAGE_THREAD, which package syscall does not name.
const rusageThread = 1
