package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/anteroom/anteroom/waitingroom"
)

func usedMemory(ctx context.Context, rdb redis.UniversalClient) int64 {
	n, _ := strconv.ParseInt(infoField(ctx, rdb, "memory", "used_memory"), 10, 64)
	return n
}

// figureMemory is figure 4a: what a waiting visitor costs Redis, after N
// joins, against a plain string key.
func figureMemory(ctx context.Context, o options, rdb *redis.Client) (figure, error) {
	step("figure 4a: Redis memory per waiting visitor after %d joins", o.memoryN)
	store, err := storeFor(ctx, rdb)
	if err != nil {
		return figure{}, err
	}
	before := usedMemory(ctx, rdb)
	took, err := fillRoom(ctx, o, store, memoryRoom, nil)
	if err != nil {
		return figure{}, err
	}
	perVisitor := float64(usedMemory(ctx, rdb)-before) / float64(o.memoryN)

	// Joins with the join limit on (limits.joins_per_ip_per_minute), each
	// from an address of its own, the worst case for it: what a visitor who
	// joined in the last window or two costs on top. A fifth as many joins
	// tell that as well, in a fifth of the time.
	limited, err := storeFor(ctx, rdb, waitingroom.WithJoinLimit(30, 10))
	if err != nil {
		return figure{}, err
	}
	lo := o
	lo.memoryN = max(1, o.memoryN/5)
	before = usedMemory(ctx, rdb)
	if _, err := fillRoom(ctx, lo, limited, memoryLimitRoom, func(i int64) waitingroom.JoinOption {
		return waitingroom.JoinFrom(string([]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
	}); err != nil {
		return figure{}, err
	}
	perLimited := float64(usedMemory(ctx, rdb)-before) / float64(lo.memoryN)

	// Baseline: as many plain string keys (no TTL), created by DEBUG
	// POPULATE in the same server.
	before = usedMemory(ctx, rdb)
	if err := rdb.Do(ctx, "DEBUG", "POPULATE", o.memoryN, "bench-populate").Err(); err != nil {
		return figure{}, fmt.Errorf("DEBUG POPULATE: %w", err)
	}
	perKey := float64(usedMemory(ctx, rdb)-before) / float64(o.memoryN)
	pass := perVisitor <= 150
	f := figure{ID: "memory", Name: "Redis bytes per waiting visitor", Value: perVisitor, Unit: "bytes",
		Baseline: perKey, BaselineName: "one plain string key (DEBUG POPULATE)", Goal: "<= 150 B", Pass: &pass,
		Details: map[string]float64{"n": float64(o.memoryN), "joins_per_s": float64(o.memoryN) / took.Seconds(),
			"with_join_limit_bytes": perLimited}}
	if perKey > 0 {
		f.Ratio = perVisitor / perKey
	}
	// Leave the server as it was for the figures after this one.
	_ = rdb.FlushDB(ctx).Err()
	return f, nil
}

// fillRoom makes o.memoryN joins into room from 2×o.concurrency workers,
// the i-th from the client from(i) names (nil: none), and says how long
// they took.
func fillRoom(ctx context.Context, o options, store *waitingroom.Store, room string, from func(i int64) waitingroom.JoinOption) (time.Duration, error) {
	run := randomHex(4)
	start := time.Now()
	err := forEach(ctx, o.memoryN, o.concurrency*2, func(i int) error {
		var opts []waitingroom.JoinOption
		if from != nil {
			opts = append(opts, from(int64(i+1)))
		}
		_, err := store.Join(ctx, room, fmt.Sprintf("mem-%s-%d", run, i+1), nil, opts...)
		return err
	})
	return time.Since(start), err
}

// streamsPerProcess is how many event streams one process holds: this
// machine's limit on open files per process is 20,000 and cannot be raised,
// so 20,000 streams are spread over two instances (and two clients).
const streamsPerProcess = 10_000

// figureStreams is figure 4b: the resident memory an open event stream costs
// an Anteroom instance, against a bare net/http server holding as many
// streams.
func figureStreams(ctx context.Context, o options, instances []*instance) (figure, error) {
	n := o.streams
	per := min(n, streamsPerProcess)
	k := (n + per - 1) / per
	if k > len(instances) {
		return figure{}, fmt.Errorf("%d streams need %d instances, have %d", n, k, len(instances))
	}
	step("figure 4b: resident memory per open event stream, %d streams on %d instance(s)", n, k)
	client := newClient(4)
	var rssBefore, rssAfter int64
	var stops []func()
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	for i := range k {
		a := instances[i]
		// A visitor each: an instance holds at most a few streams per
		// ticket.
		count := min(per, n-i*per)
		targets, err := queueVisitors(ctx, client, a, count)
		if err != nil {
			return figure{}, a.explain(err)
		}
		settle()
		b, err := a.rss()
		if err != nil {
			return figure{}, err
		}
		stop, err := openStreams(targets)
		if err != nil {
			return figure{}, a.explain(err)
		}
		stops = append(stops, stop)
		settle()
		after, err := a.rss()
		if err != nil {
			return figure{}, err
		}
		if held, err := a.metric("anteroom_event_streams"); err != nil || int(held) != count {
			return figure{}, fmt.Errorf("instance %s holds %v of the %d streams opened (%v)", a.issuer, held, count, err)
		}
		rssBefore += b
		rssAfter += after
	}
	perStream := float64(rssAfter-rssBefore) / float64(n)
	for _, stop := range stops {
		stop()
	}
	stops = nil

	// Baseline: a bare net/http server that holds a stream open and sends
	// nothing after its first event.
	addr, pid, stopBare, err := startSelf("bare-sse")
	if err != nil {
		return figure{}, err
	}
	defer stopBare()
	settle()
	b, err := processRSS(pid)
	if err != nil {
		return figure{}, err
	}
	bare := make([]streamTarget, per)
	for i := range bare {
		bare[i] = streamTarget{url: "http://" + addr + "/events"}
	}
	stop, err := openStreams(bare)
	if err != nil {
		return figure{}, err
	}
	settle()
	after, err := processRSS(pid)
	stop()
	if err != nil {
		return figure{}, err
	}
	perBare := float64(after-b) / float64(per)
	pass := perStream <= 16*1024
	f := figure{ID: "streams", Name: "Anteroom RSS per open event stream", Value: perStream, Unit: "bytes",
		Baseline: perBare, BaselineName: "bare net/http server holding a stream", Goal: "<= 16 KiB", Pass: &pass,
		Details: map[string]float64{"streams": float64(n), "instances": float64(k),
			"rss_before_mib": float64(rssBefore) / (1 << 20), "rss_after_mib": float64(rssAfter) / (1 << 20)}}
	if perBare > 0 {
		f.Ratio = perStream / perBare
	}
	return f, nil
}

// settle gives a process a moment to finish what it was doing (and the
// kernel to account for it) before its memory is read.
func settle() { time.Sleep(2 * time.Second) }

// streamTarget is an event stream to open, with the Cookie header to send.
type streamTarget struct{ url, cookie string }

// queueVisitors queues count visitors at a, 32 at a time, and returns their
// event streams.
func queueVisitors(ctx context.Context, client *http.Client, a *instance, count int) ([]streamTarget, error) {
	targets := make([]streamTarget, count)
	err := forEach(ctx, count, 32, func(i int) error {
		v, err := queueVisitor(client, a)
		targets[i] = streamTarget{url: v.waitURL + "/events", cookie: v.cookie}
		return err
	})
	return targets, err
}

// openStreams opens the event streams of targets in a child process of
// this program (each process may hold only so many sockets) and returns
// once every stream has received its first event; stop closes them all.
func openStreams(targets []streamTarget) (func(), error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "sse-client")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := func() { stdin.Close(); _ = cmd.Wait() }
	w := bufio.NewWriter(stdin)
	for _, t := range targets {
		fmt.Fprintf(w, "%s\t%s\n", t.url, t.cookie)
	}
	fmt.Fprintln(w)
	if err := w.Flush(); err != nil {
		stop()
		return nil, fmt.Errorf("sse-client: %w", err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "open ") {
		stop()
		return nil, fmt.Errorf("sse-client: %q: %v", line, err)
	}
	return stop, nil
}

// sseClient opens the event streams its stdin lists ("URL<tab>Cookie
// header" a line, up to an empty line) and holds them open until its stdin
// closes, printing "open N" once each has received its first event.
func sseClient([]string) {
	in := bufio.NewReader(os.Stdin)
	var targets []streamTarget
	for {
		line, err := in.ReadString('\n')
		line = strings.TrimSuffix(line, "\n")
		if line == "" || err != nil {
			break
		}
		u, cookie, _ := strings.Cut(line, "\t")
		targets = append(targets, streamTarget{url: u, cookie: cookie})
	}
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: -1, DisableCompression: true, MaxConnsPerHost: 0}
	client := &http.Client{Transport: tr}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var opened, failed atomic.Int64
	var firstErr atomic.Pointer[error]
	sem := make(chan struct{}, 256) // connect this many at a time
	open := func(t streamTarget) (io.ReadCloser, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
		req.Header.Set("Accept", "text/event-stream")
		if t.cookie != "" {
			req.Header.Set("Cookie", t.cookie)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, fmt.Errorf("GET %s: %s", t.url, resp.Status)
		}
		r := bufio.NewReader(resp.Body)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				resp.Body.Close()
				return nil, err
			}
			if strings.HasPrefix(line, "data:") {
				return resp.Body, nil
			}
		}
	}
	for _, t := range targets {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			body, err := open(t)
			<-sem
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, &err)
				wg.Done()
				return
			}
			opened.Add(1)
			wg.Done()
			// Hold the stream, reading what comes, until the end.
			_, _ = io.Copy(io.Discard, body)
			body.Close()
		}()
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil && opened.Load() < int64(len(targets)) {
		fmt.Fprintf(os.Stderr, "bench sse-client: %d of %d streams failed, first: %v\n", failed.Load(), len(targets), *p)
		os.Exit(1)
	}
	fmt.Printf("open %d\n", opened.Load())
	_, _ = io.Copy(io.Discard, in)
}

// bareSSE serves event streams that send one event and then hold the
// connection: the least net/http can spend on an open stream.
func bareSSE([]string) {
	closing := make(chan struct{})
	serveUntilSignal(holdStreams(closing), func() { close(closing) })
}

// holdStreams is the handler of bareSSE.
func holdStreams(closing <-chan struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, "data: {}\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-closing:
		}
	})
}
