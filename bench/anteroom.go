package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Where the relying party's callback would be: never served, the client
// stops at the redirect to it and reads the code.
const (
	rpAddr     = "127.0.0.1:9"
	rpCallback = "http://" + rpAddr + "/cb"
	// pollRoom is manual: nobody is admitted, so a visitor always waits.
	pollRoom   = "bench"
	pollClient = "poll"
	// openRoom is passthrough: every flow goes straight through.
	openRoom   = "open"
	flowClient = "flow"
	flowSecret = "flow-secret-0123456789"
	adminToken = "bench-admin-token-0123456789"
	// powRoom challenges every new visitor, at a difficulty of nothing
	// (figure 7 measures what a proof's place costs Redis, not the work).
	powRoom   = "pow"
	powClient = "pow"
	// gateCookie is the gate's cookie name; its every path queues in the
	// passthrough room, so a gate login is admitted at once.
	gateCookie = "anteroom_gate"
)

// instanceSpec says how to run one Anteroom process.
type instanceSpec struct {
	// redis is the YAML of the config's redis key, e.g. {url: "redis://…"}.
	redis string
	// algorithm signs tokens: RS256 (the default) or ES256.
	algorithm string
	// cookieKey is secrets.cookie_keys[0]; instances of one deployment share it.
	cookieKey string
}

// instance is one running `anteroom serve`.
type instance struct {
	issuer string
	debug  string // the profiler's address
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

// startAnteroom writes a configuration for spec into dir and runs the
// binary with it until it answers discovery.
func startAnteroom(ctx context.Context, bin, dir string, spec instanceSpec) (*instance, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	debugAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	signing := ""
	if spec.algorithm != "" {
		signing = fmt.Sprintf("signing: {algorithm: %s}\n", spec.algorithm)
	}
	issuer := "http://" + addr
	cfg := fmt.Sprintf(`issuer: %s
listen: %s
redis: %s
secrets:
  cookie_keys: [%q]
admin: {token: %q}
debug: {listen: %q}
# Every stream of the memory figure comes from 127.0.0.1: no per-address
# bound below the instance's own.
limits: {event_streams_per_ip: 100000}
%srooms:
  - id: %s
    state: open
  - id: %s
    state: passthrough
  - id: %s
    state: open
    challenge: {mode: always, max_number: 10}
clients:
  - id: %s
    redirect_uris: [%q]
    room: %s
  - id: %s
    redirect_uris: [%q]
    room: %s
  - id: %s
    secret: %q
    redirect_uris: [%q]
    room: %s
gate:
  cookie: {name: %s, secure: false}
  rules: [{path_prefix: /, action: queue, room: %s}]
`, issuer, addr, spec.redis, spec.cookieKey, adminToken, debugAddr, signing, pollRoom, openRoom, powRoom,
		powClient, rpCallback, powRoom, pollClient, rpCallback, pollRoom, flowClient, flowSecret, rpCallback, openRoom, gateCookie, openRoom)
	base := strings.ReplaceAll(addr, ":", "-")
	cfgPath := filepath.Join(dir, "anteroom-"+base+".yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "anteroom-"+base+".log")
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
	a := &instance{issuer: issuer, debug: debugAddr, cmd: cmd, log: logPath, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); logFile.Close(); close(a.exited) }()
	deadline := time.Now().Add(30 * time.Second)
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
			return nil, a.explain(errors.New("anteroom did not answer within 30s"))
		}
	}
}

func (a *instance) stop() {
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

// explain adds the tail of the instance's log to err.
func (a *instance) explain(err error) error {
	data, _ := os.ReadFile(a.log)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return fmt.Errorf("%w\n--- anteroom log tail (%s):\n%s", err, a.issuer, strings.Join(lines, "\n"))
}

// cpu is the CPU time the instance has used, as the kernel counts it.
func (a *instance) cpu() (time.Duration, error) { return processCPU(a.cmd.Process.Pid) }

// processCPU reads a process's user and system time from /proc (in clock
// ticks of 1/100 s, the Linux value of USER_HZ).
func processCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, field 2, may hold spaces; count from after it.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 13 {
		return 0, errors.New("short /proc stat")
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("malformed /proc stat times")
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// selfCPU is this process's CPU time: the load generator's.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rss is the instance's resident memory, in bytes, as the kernel counts it.
func (a *instance) rss() (int64, error) { return processRSS(a.cmd.Process.Pid) }

// metric reads an unlabelled series from the instance's /metrics.
func (a *instance) metric(name string) (float64, error) {
	resp, err := http.Get(a.issuer + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s: no %s", a.issuer, name)
}

func processRSS(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

// profile fetches a CPU profile of the instance while measure runs and
// writes it to path; with path empty it only runs measure.
func (a *instance) profile(path string, seconds int, measure func()) error {
	if path == "" {
		measure()
		return nil
	}
	done := make(chan error, 1)
	go func() {
		resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", a.debug, seconds))
		if err != nil {
			done <- err
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(path)
		if err != nil {
			done <- err
			return
		}
		_, err = io.Copy(f, resp.Body)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		done <- err
	}()
	measure()
	return <-done
}

// profiled wraps a figure's measurement so that its first run is profiled
// into path (no profile when path is empty): the baseline rounds in between
// are not the instance's work.
func profiled(a *instance, path string, d time.Duration, measure func() (measurement, error)) func() (measurement, error) {
	done := path == ""
	return func() (measurement, error) {
		if done {
			return measure()
		}
		done = true
		var m measurement
		var err error
		if perr := a.profile(path, max(1, int(d.Seconds())), func() { m, err = measure() }); perr != nil {
			step("profile %s: %v", path, perr)
		}
		return m, err
	}
}
