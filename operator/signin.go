package operator

import (
	"math"
	"net/netip"
	"sync"
	"time"
)

// Failed dashboard sign-ins are throttled with token buckets kept in the
// instance's memory: one per client address and one for all of them. The
// admin token is at least 16 characters, so guessing it is hopeless anyway;
// the throttle keeps a guessing script from costing the instance CPU and
// the log a line per guess, and from ever trying more than a few tokens a
// minute. A sign-in takes a token from both buckets before the token is
// compared, so concurrent guesses cannot all slip past an empty bucket; a
// right token gives it back, so an operator who signs in is never held
// back by their own successes. The bearer-token admin API is not
// throttled: the CLI and scripts must keep working while someone guesses.
const (
	// signInBurst failed sign-ins from one address, then one more every
	// signInEvery.
	signInBurst = 5
	signInEvery = 12 * time.Second
	// signInBurstAll failed sign-ins from everyone together, then one more
	// every signInEveryAll: what many addresses guessing together get.
	signInBurstAll = 30
	signInEveryAll = 2 * time.Second
	// signInPruneAbove is how many addresses are remembered before those
	// whose bucket has refilled are forgotten. The overall bucket bounds
	// how fast addresses are added, so memory stays small.
	signInPruneAbove = 1024
)

// signInBucket is a token bucket: tokens at time at.
type signInBucket struct {
	tokens float64
	at     time.Time
}

// refill returns the bucket's tokens at now, up to burst.
func (b signInBucket) refill(now time.Time, burst float64, every time.Duration) float64 {
	if now.Before(b.at) {
		return b.tokens // the clock went back: no refill, and no debt
	}
	return min(burst, b.tokens+float64(now.Sub(b.at))/float64(every))
}

// wait is how long until the bucket, now holding tokens, has one.
func wait(tokens float64, every time.Duration) time.Duration {
	return time.Duration(math.Ceil((1 - tokens) * float64(every)))
}

// signInThrottle holds the buckets.
type signInThrottle struct {
	mu      sync.Mutex
	all     signInBucket
	clients map[netip.Addr]*signInBucket
}

func newSignInThrottle() *signInThrottle {
	return &signInThrottle{all: signInBucket{tokens: signInBurstAll}, clients: map[netip.Addr]*signInBucket{}}
}

// take takes a sign-in attempt for client (an address masked as the join
// limit counts it; invalid: counted only in all) at now. It returns 0 when
// the attempt may go ahead, else how long until one may.
func (t *signInThrottle) take(client netip.Addr, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	all := t.all.refill(now, signInBurstAll, signInEveryAll)
	mine := float64(signInBurst)
	b := t.clients[client]
	if b != nil {
		mine = b.refill(now, signInBurst, signInEvery)
	}
	var retry time.Duration
	if all < 1 {
		retry = wait(all, signInEveryAll)
	}
	if client.IsValid() && mine < 1 {
		retry = max(retry, wait(mine, signInEvery))
	}
	if retry > 0 {
		return retry
	}
	t.all = signInBucket{tokens: all - 1, at: now}
	if client.IsValid() {
		if b == nil {
			t.prune(now)
			b = &signInBucket{}
			t.clients[client] = b
		}
		*b = signInBucket{tokens: mine - 1, at: now}
	}
	return 0
}

// giveBack returns the attempt of a sign-in that succeeded.
func (t *signInThrottle) giveBack(client netip.Addr, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.all = signInBucket{tokens: min(signInBurstAll, t.all.refill(now, signInBurstAll, signInEveryAll)+1), at: now}
	if b := t.clients[client]; b != nil {
		*b = signInBucket{tokens: min(signInBurst, b.refill(now, signInBurst, signInEvery)+1), at: now}
	}
}

// prune forgets the addresses whose bucket has refilled, once there are
// many; the caller holds t.mu.
func (t *signInThrottle) prune(now time.Time) {
	if len(t.clients) < signInPruneAbove {
		return
	}
	for a, b := range t.clients {
		if b.refill(now, signInBurst, signInEvery) >= signInBurst {
			delete(t.clients, a)
		}
	}
}

// maskClient is the address a client is counted under by the sign-in
// throttle: its address as the trusted proxies tell
// it, IPv6 by /64 (what one subscriber usually gets) like the join limit.
func maskClient(a netip.Addr) netip.Addr {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}
