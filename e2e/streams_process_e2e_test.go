//go:build unix

package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// An instance whose descriptor limit is small keeps answering health
// checks however many event streams are opened against it: the derived
// bound (limits.event_streams from RLIMIT_NOFILE, read at start-up) holds
// streams below the limit, and a stream beyond it gets its first event and
// ends. About 20,000 streams once exhausted an instance's descriptors and
// it refused every connection, health checks included, for ~35 s. Here the
// process runs with RLIMIT_NOFILE 256 and 300 streams are opened.
func TestStreamsBeyondTheDescriptorBudgetLeaveHealthChecksAnswering(t *testing.T) {
	if err := redisServer.FlushAll(); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	base := "http://" + addr
	// The per-address bound is lifted: every stream comes from loopback,
	// and the instance's bound is the one under test.
	conf := fmt.Sprintf(`issuer: %[1]s
listen: %[2]s
redis: {url: %[3]s}
secrets: {cookie_keys: [%[4]q]}
rooms: [{id: %[5]s, max_wait: 1h}]
clients: [{id: %[6]s, secret: %[7]s, room: %[5]s, redirect_uris: [%[8]s]}]
limits: {event_streams_per_ip: 100000}
`, base, addr, redisServer.URL(), cookieKey, roomID, clientID, secret, rpCallback)
	path := filepath.Join(t.TempDir(), "anteroom.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	self := anteroomBinary(t)
	out := &lockedBuffer{}
	cmd := exec.Command("sh", "-c", `ulimit -n 256 && exec "$0" "$@"`, self, "serve", "--config", path)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("anteroom's output:\n%s", out.String())
		}
	})
	health := &http.Client{Timeout: 5 * time.Second}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := health.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready:\n%s", out.String())
		}
	}
	if !strings.Contains(out.String(), "event_streams=192") {
		t.Fatalf("start-up log does not give the derived bound 192 for RLIMIT_NOFILE 256:\n%s", out.String())
	}

	// Tickets: each login joins the room, whose visitors all wait.
	const streams, perTicket = 300, maxStreamsPerTicketForTest
	opened := 0
	for opened < streams {
		resp, err := noRedirects.Get(base + "/authorize?response_type=code&scope=openid&state=s&nonce=n&client_id=" + clientID + "&redirect_uri=" + rpCallback)
		if err != nil {
			t.Fatalf("after %d streams: %v", opened, err)
		}
		resp.Body.Close()
		wait := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusFound || !strings.Contains(wait, "/wait/") {
			t.Fatalf("authorize: %d %q", resp.StatusCode, wait)
		}
		// The waiting page hands out the ticket.
		page, err := noRedirects.Get(wait + "?format=json")
		if err != nil || page.StatusCode != http.StatusOK {
			t.Fatalf("waiting page: %v %v", page, err)
		}
		page.Body.Close()
		var cookies []string
		for _, c := range append(resp.Cookies(), page.Cookies()...) {
			cookies = append(cookies, c.Name+"="+c.Value)
		}
		for range perTicket {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatalf("stream %d: %v", opened, err)
			}
			t.Cleanup(func() { conn.Close() })
			fmt.Fprintf(conn, "GET %s/events HTTP/1.1\r\nHost: %s\r\nCookie: %s\r\n\r\n", strings.TrimPrefix(wait, base), addr, strings.Join(cookies, "; "))
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			r := bufio.NewReader(conn)
			status, err := r.ReadString('\n')
			if err != nil || !strings.HasPrefix(status, "HTTP/1.1 200") {
				t.Fatalf("stream %d: %q %v", opened, status, err)
			}
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					t.Fatalf("stream %d: no first event: %v", opened, err)
				}
				if strings.HasPrefix(line, "data: ") {
					break
				}
			}
			opened++
		}
	}
	// Every stream is held or refused by the instance's bound, as its
	// metrics say.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := health.Get(base + "/metrics")
		if err != nil {
			t.Fatalf("metrics with %d streams opened: %v", streams, err)
		}
		page := metricsPage(resp)
		held, refused := scrapeValue(page, "anteroom_event_streams "), scrapeValue(page, `anteroom_event_streams_refused_total{bound="instance"} `)
		if held == 192 && refused == streams-192 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v streams held and %v refused by the instance's bound, want 192 and %d", held, refused, streams-192)
		}
	}
	// The instance still accepts connections and answers.
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := health.Get(base + p)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s with %d streams opened: %v %v", p, streams, resp, err)
		}
		resp.Body.Close()
	}
}

func metricsPage(resp *http.Response) string {
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// scrapeValue reads one sample of a metrics page (-1 when absent).
func scrapeValue(page, prefix string) float64 {
	for _, line := range strings.Split(page, "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err == nil {
				return f
			}
		}
	}
	return -1
}

// maxStreamsPerTicketForTest is web's bound of streams per ticket: more
// streams of a ticket would end for that bound, not the instance's.
const maxStreamsPerTicketForTest = 4
