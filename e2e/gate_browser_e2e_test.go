//go:build unix

package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestGateInARealBrowserThroughTheShippedNginxConfig: a real Chromium
// queues at the gate through deploy/nginx/anteroom.conf, as a new site
// would run it. While it waits the browser makes requests of its own
// (its /favicon.ico, which the "/" rule protects and which gets 401; a
// second tab and a return to the site's address, each a gate login; a
// reload of the waiting page); once admitted,
// every tab ends on the upstream app, and the browser held one place.
// It was "Please start again" (400 at /_anteroom/gate/callback): each
// start replaced the cookie the waiting tab's login was bound to.
func TestGateInARealBrowserThroughTheShippedNginxConfig(t *testing.T) {
	chromium := requireChromium(t)
	s := startGateSite(t)
	accessLog := func() string {
		b, _ := os.ReadFile(filepath.Join(s.nginxDir, "access.log"))
		return string(b)
	}
	until := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: timed out\nnginx access.log:\n%s", what, accessLog())
			}
		}
	}
	position := func(ctx context.Context, name string) string {
		t.Helper()
		step, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		if err := chromedp.Do(step, chromedp.WaitVisible(chromedp.CSS("#position"))); err != nil {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			t.Fatalf("%s: no waiting page at %s: %v", name, loc, err)
		}
		p, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#position")))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	tab1 := browser(t, chromium)
	if err := chromedp.Do(tab1, chromedp.Navigate(s.base+"/shop?tab=1")); err != nil {
		t.Fatal(err)
	}
	if p := position(tab1, "first tab"); p != "1" {
		t.Fatalf("first tab: position %q, want 1", p)
	}
	// Chromium asks for the site's favicon by itself; "/" protects it, so
	// nginx sends it to the gate while the tab waits. A subresource
	// (Sec-Fetch-Mode: no-cors) gets 401 and starts no login of its own;
	// before, it started one and ended the waiting tab's.
	until("the browser's own favicon request went through the gate", func() bool {
		return strings.Contains(accessLog(), `"GET /favicon.ico HTTP/1.1" 401`)
	})

	tab2, cancelTab2 := chromedp.NewContext(tab1)
	defer cancelTab2()
	if err := chromedp.Do(tab2, chromedp.Navigate(s.base+"/shop/second-tab")); err != nil {
		t.Fatal(err)
	}
	if p := position(tab2, "second tab"); p != "1" {
		t.Fatalf("second tab: position %q, want the browser's one place, 1", p)
	}
	if err := chromedp.Do(tab1, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	if p := position(tab1, "first tab, reloaded"); p != "1" {
		t.Fatalf("first tab after a reload: position %q", p)
	}
	// The visitor types the site's address again in the second tab.
	if err := chromedp.Do(tab2, chromedp.Navigate(s.base+"/shop/second-tab")); err != nil {
		t.Fatal(err)
	}
	if p := position(tab2, "second tab, back at the site"); p != "1" {
		t.Fatalf("second tab back at the site: position %q", p)
	}
	if n := strings.Count(accessLog(), "GET /_anteroom/authorize?client_id=anteroom-gate-"+roomID); n < 3 {
		t.Fatalf("test is void: %d gate logins while waiting, want at least 3 (two tabs, a return)", n)
	}

	s.advance(roomID, 1)
	for name, tab := range map[string]struct {
		ctx  context.Context
		path string
	}{"first tab": {tab1, "/shop?tab=1"}, "second tab": {tab2, "/shop/second-tab"}} {
		until(name+" ends on the app", func() bool {
			loc, err1 := chromedp.Run(tab.ctx, chromedp.Location())
			body, err2 := chromedp.Run(tab.ctx, chromedp.Text(chromedp.CSS("body")))
			return err1 == nil && err2 == nil && loc == s.base+tab.path &&
				strings.HasPrefix(body, "app: "+strings.Split(tab.path, "?")[0]+" sub=") && strings.Contains(body, "room="+roomID)
		})
	}
	for _, line := range strings.Split(accessLog(), "\n") {
		if strings.Contains(line, "/_anteroom/gate/callback") && !strings.Contains(line, `HTTP/1.1" 302 `) {
			t.Fatalf("a gate callback did not send the browser on to the site: %s", line)
		}
	}

	// One place for the browser, however many logins it started.
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.anteroom+"/admin/v1/rooms/"+roomID, nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var room struct{ Tail, Active int64 }
	if err := json.NewDecoder(resp.Body).Decode(&room); err != nil {
		t.Fatal(err)
	}
	if room.Tail != 1 || room.Active != 1 {
		t.Fatalf("room after the browser's logins: tail %d, active %d; want one place, one session", room.Tail, room.Active)
	}
}
