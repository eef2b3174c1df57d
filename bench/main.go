// Command bench is Anteroom's load generator. It starts its own
// redis-server on a free port and Anteroom binaries (anteroom serve) against
// it, drives them for a fixed time per measurement, and prints every figure
// beside a baseline measured in the same run, as a ratio, so that the numbers
// still mean something on a shared, noisy machine: each figure alternates
// rounds of its baseline and of itself, and reports the medians.
//
// Run it with bench/run.sh, which builds Anteroom and this program. Nothing
// here asserts timings: the goals are printed, not enforced.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/anteroom/anteroom/internal/testredis"
)

type options struct {
	anteroom    string
	concurrency int
	duration    time.Duration
	rounds      int
	memoryN     int
	streams     int
	flows       bool
	es256       bool
	scaling     bool
	cluster     bool
	profileDir  string
	out         string
	wrk         bool
	wrkConns    int
	only        string
}

// want reports whether figure id (polls, joins, flows, memory, streams,
// scaling, wrk, challenge) is to be measured: all of them unless -only names some.
func (o options) want(id string) bool {
	return o.only == "" || slices.Contains(strings.Split(o.only, ","), id)
}

// profilePath is where a figure's CPU profile goes, "" when not profiling.
func (o options) profilePath(figure string) string {
	if o.profileDir == "" {
		return ""
	}
	return filepath.Join(o.profileDir, figure+".cpu.pprof")
}

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "bare":
			bare(os.Args[2:])
			return
		case "bare-sse":
			bareSSE(os.Args[2:])
			return
		case "sse-client":
			sseClient(os.Args[2:])
			return
		}
	}
	var o options
	flag.StringVar(&o.anteroom, "anteroom", "", "path to a built anteroom binary (required)")
	flag.IntVar(&o.concurrency, "c", 32, "client concurrency for every figure")
	flag.DurationVar(&o.duration, "d", 3*time.Second, "how long each measurement runs")
	flag.IntVar(&o.rounds, "rounds", 3, "alternating rounds of baseline and measurement per figure (medians are reported)")
	flag.IntVar(&o.memoryN, "n", 1_000_000, "joins for the memory figure")
	flag.IntVar(&o.streams, "streams", 20_000, "open event streams for the memory figure (0: skip)")
	flag.BoolVar(&o.flows, "flows", true, "measure full OIDC flows (figure 3)")
	flag.BoolVar(&o.es256, "es256", true, "measure full flows with ES256 as well as RS256")
	flag.BoolVar(&o.scaling, "scaling", true, "measure 1 vs 2 instances (figure 5)")
	flag.BoolVar(&o.cluster, "cluster", true, "measure against a local 3-master Redis Cluster (figure 5)")
	flag.StringVar(&o.profileDir, "profile", "", "write each figure's CPU profile of Anteroom into this `dir`")
	flag.BoolVar(&o.wrk, "wrk", true, "measure the status poll and /gate/auth under wrk (figure 6)")
	flag.IntVar(&o.wrkConns, "wrk-c", 64, "wrk's connections for figure 6")
	flag.StringVar(&o.only, "only", "", "measure only these `figures` (comma-separated: polls,joins,flows,memory,streams,scaling,wrk,challenge)")
	flag.StringVar(&o.out, "out", "bench/results.json", "where to write the results")
	flag.Parse()
	if o.anteroom == "" {
		fmt.Fprintln(os.Stderr, "bench: -anteroom is required (bench/run.sh builds it)")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fatal(err)
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
	Rounds       []round            `json:"rounds,omitempty"`
	Details      map[string]float64 `json:"details,omitempty"`
}

// round is one alternation of baseline and measurement.
type round struct {
	Value    float64 `json:"value"`
	Baseline float64 `json:"baseline"`
	Ratio    float64 `json:"ratio"`
}

type results struct {
	StartedAt   time.Time `json:"started_at"`
	Took        string    `json:"took"`
	GoVersion   string    `json:"go_version"`
	CPUs        int       `json:"cpus"`
	Concurrency int       `json:"concurrency"`
	Duration    string    `json:"duration_per_measurement"`
	Rounds      int       `json:"rounds"`
	Redis       string    `json:"redis_version"`
	Figures     []figure  `json:"figures"`
}

func run(o options) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	res := results{StartedAt: start.UTC(), GoVersion: runtime.Version(), CPUs: runtime.NumCPU(),
		Concurrency: o.concurrency, Duration: o.duration.String(), Rounds: o.rounds}
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return err
		}
	}

	// Never the machine's Redis on 6379: testredis picks a free port, runs
	// without persistence (--save "" --appendonly no), and removes its
	// directory on Close. DEBUG POPULATE gives the memory figure its baseline.
	os.Setenv(testredis.EnvVar, "required")
	srv, err := testredis.NewWithArgs("--enable-debug-command", "local")
	if err != nil {
		return err
	}
	defer srv.Close()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), PoolSize: 2*o.concurrency + 4})
	defer rdb.Close()
	res.Redis = infoField(ctx, rdb, "server", "redis_version")
	step("redis-server %s on %s", res.Redis, srv.Addr())

	tmp, err := os.MkdirTemp("", "anteroom-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	// Database 0 is the deployment under test; 1 an ES256 deployment; 2
	// the memory figure's, which it empties when done.
	cookieKey := randomHex(32)
	spec := func(db int, alg string) instanceSpec {
		return instanceSpec{redis: fmt.Sprintf("{url: %q, pool_size: %d}", fmt.Sprintf("redis://%s/%d", srv.Addr(), db), 2*o.concurrency),
			algorithm: alg, cookieKey: cookieKey}
	}
	var running []*instance
	defer func() {
		for _, a := range running {
			a.stop()
		}
	}()
	launch := func(s instanceSpec) (*instance, error) {
		a, err := startAnteroom(ctx, o.anteroom, tmp, s)
		if err == nil {
			running = append(running, a)
			step("anteroom on %s", a.issuer)
		}
		return a, err
	}
	a, err := launch(spec(0, ""))
	if err != nil {
		return err
	}

	var f figure
	if o.want("polls") {
		if f, err = figurePolls(ctx, o, a); err != nil {
			return a.explain(fmt.Errorf("figure 1: %w", err))
		}
		res.Figures = append(res.Figures, f)
	}
	if o.wrk && o.want("wrk") {
		fs, err := figuresWrk(ctx, o, a)
		if err != nil {
			return a.explain(fmt.Errorf("figure 6: %w", err))
		}
		res.Figures = append(res.Figures, fs...)
	}

	if o.want("challenge") {
		if f, err = figureChallenge(ctx, o, a, rdb); err != nil {
			return a.explain(fmt.Errorf("figure 7: %w", err))
		}
		res.Figures = append(res.Figures, f)
	}

	if o.want("joins") {
		if f, err = figureJoins(ctx, o, rdb, srv.Addr()); err != nil {
			return fmt.Errorf("figure 2: %w", err)
		}
		res.Figures = append(res.Figures, f)
	}

	if o.flows && o.want("flows") {
		if f, err = figureFlows(ctx, o, rdb, a, "RS256"); err != nil {
			return a.explain(fmt.Errorf("figure 3: %w", err))
		}
		res.Figures = append(res.Figures, f)
		if o.es256 {
			e, err := launch(spec(1, "ES256"))
			if err != nil {
				return err
			}
			if f, err = figureFlows(ctx, o, rdb, e, "ES256"); err != nil {
				return e.explain(fmt.Errorf("figure 3: %w", err))
			}
			res.Figures = append(res.Figures, f)
			e.stop()
		}
	}

	mem := redis.NewClient(&redis.Options{Addr: srv.Addr(), DB: 2, PoolSize: 2*o.concurrency + 4})
	defer mem.Close()
	if o.want("memory") {
		if f, err = figureMemory(ctx, o, mem); err != nil {
			return fmt.Errorf("figure 4a: %w", err)
		}
		res.Figures = append(res.Figures, f)
	}

	if o.streams > 0 && o.want("streams") {
		// Fresh instances, as the baseline's server is: one that served
		// the figures before holds freed heap the streams would reuse,
		// which hides their cost.
		var fresh []*instance
		for range 2 {
			s, err := launch(spec(0, ""))
			if err != nil {
				return err
			}
			fresh = append(fresh, s)
		}
		if f, err = figureStreams(ctx, o, fresh); err != nil {
			return fmt.Errorf("figure 4b: %w", err)
		}
		res.Figures = append(res.Figures, f)
		for _, s := range fresh {
			s.stop()
		}
	}
	o.scaling = o.scaling && o.want("scaling")
	var b *instance
	if o.scaling {
		if b, err = launch(spec(0, "")); err != nil {
			return err
		}
	}

	if o.scaling {
		var c *instance
		if o.cluster {
			cl, err := startCluster()
			if err != nil {
				return fmt.Errorf("figure 5: %w", err)
			}
			defer cl.Close()
			addrs := make([]string, len(cl.Addrs()))
			for i, addr := range cl.Addrs() {
				addrs[i] = strconv.Quote(addr)
			}
			s := spec(0, "")
			s.redis = fmt.Sprintf("{addrs: [%s], pool_size: %d}", strings.Join(addrs, ", "), 2*o.concurrency)
			if c, err = launch(s); err != nil {
				return err
			}
			step("redis cluster of %d masters at %s", len(addrs), strings.Join(cl.Addrs(), " "))
		}
		fs, err := figureScaling(ctx, o, a, b, c)
		if err != nil {
			return fmt.Errorf("figure 5: %w", err)
		}
		res.Figures = append(res.Figures, fs...)
	}

	res.Took = time.Since(start).Round(time.Second).String()
	printTable(os.Stdout, res)
	data, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(o.out, append(data, '\n'), 0o644); err != nil {
		return err
	}
	step("wrote %s in %s", o.out, res.Took)
	return nil
}

// benchStart is when the run began, for the timestamps of its steps.
var benchStart = time.Now()

func step(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench [%3.0fs]: "+format+"\n", append([]any{time.Since(benchStart).Seconds()}, args...)...)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func commandsProcessed(ctx context.Context, rdb redis.UniversalClient) int64 {
	n, _ := strconv.ParseInt(infoField(ctx, rdb, "stats", "total_commands_processed"), 10, 64)
	return n
}

// commandStats returns INFO commandstats: calls per command.
func commandStats(ctx context.Context, rdb redis.UniversalClient) map[string]int64 {
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

func infoField(ctx context.Context, rdb redis.UniversalClient, section, field string) string {
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
	fmt.Fprintf(w, "\nAnteroom bench: %d CPUs, %s, redis %s, %d clients, %d rounds of %s per figure, %s in all\n\n",
		res.CPUs, res.GoVersion, res.Redis, res.Concurrency, res.Rounds, res.Duration, res.Took)
	fmt.Fprintf(w, "%-48s %12s %12s %7s %10s  %s\n", "figure (medians)", "value", "baseline", "ratio", "goal", "pass/fail (not asserted)")
	for _, f := range res.Figures {
		verdict := "—"
		if f.Pass != nil {
			verdict = map[bool]string{true: "pass", false: "fail"}[*f.Pass]
		}
		goal := f.Goal
		if goal == "" {
			goal = "—"
		}
		fmt.Fprintf(w, "%-48s %12s %12s %7.2f %10s  %s\n", f.Name,
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
		var ratios []string
		for _, r := range f.Rounds {
			ratios = append(ratios, strconv.FormatFloat(r.Ratio, 'f', 2, 64))
		}
		fmt.Fprintf(w, "  %s\n      baseline: %s\n", f.ID, f.BaselineName)
		if len(ratios) > 1 {
			fmt.Fprintf(w, "      ratio by round: %s\n", strings.Join(ratios, " "))
		}
		fmt.Fprintf(w, "      %s\n", strings.Join(parts, " "))
	}
}

func shortUnit(u string) string {
	switch u {
	case "req/s", "joins/s", "flows/s", "/s":
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
