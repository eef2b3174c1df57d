package e2e

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anteroom/anteroom/config"
	"github.com/chromedp/chromedp"
)

// TestWaitingPageInABrowser drives the waiting page in headless Chromium:
// a visitor opens a protected page (the demo's relying party), sees their
// place, sees it change when an admin advances the room, and lands back on
// the site, logged in, without a click. With ANTEROOM_SCREENSHOTS=DIR it
// also saves screenshots of the page at desktop and phone width there.
func TestWaitingPageInABrowser(t *testing.T) {
	chromium := requireChromium(t)
	if err := redisServer.FlushAll(); err != nil {
		t.Fatal(err)
	}
	issuer, siteURL, _ := demoSite(t, func(cfg *config.Config, _ string) {
		cfg.Rooms[0].Name = "Product launch"
		cfg.Rooms[0].Message = "Thanks for your patience: we let people in in the order they arrived."
	})

	// Someone was let in before, someone is waiting: the browser's
	// visitor is third, with one ahead.
	queueOne := func(name string) {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
		if resp, err := c.Get(siteURL + "/login"); err != nil || !strings.Contains(resp.Request.URL.Path, "/wait/") {
			t.Fatalf("%s visitor: %v %v", name, resp, err)
		}
	}
	advance := func() { advanceOver(t, issuer, roomID, 1) }

	queueOne("first")
	advance()
	queueOne("second")

	ctx := browser(t, chromium)
	if err := chromedp.Do(ctx,
		chromedp.EmulateViewport(1280, 860),
		chromedp.Navigate(siteURL+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#position")),
	); err != nil {
		t.Fatalf("open the protected page: %v", err)
	}
	position, err1 := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#position")))
	ahead, err2 := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#ahead")))
	if err1 != nil || err2 != nil {
		t.Fatalf("read the page: %v %v", err1, err2)
	}
	if position != "3" || ahead != "1" {
		t.Fatalf("waiting page shows position %q, ahead %q; want 3 and 1", position, ahead)
	}
	// The bar is progress since this visitor's join (nobody ahead of them
	// has gone in yet: 0), not serving ÷ position since the room began
	// (1 of 3: 33).
	if bar, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.getElementById("bar").value`)); err != nil || bar != 0 {
		t.Fatalf("the served page's bar: %v (%v), want 0", bar, err)
	}
	screenshot(t, ctx, "waiting-page-desktop.png")

	advance() // the second visitor's turn: ours moves to the front
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("ahead").textContent === "0"`, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		t.Fatalf("the page did not show the advance: %v", err)
	}
	// The one ahead at the join has gone in, the visitor's own step is
	// left: half way (serving ÷ position would say 67).
	if bar, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.getElementById("bar").value`)); err != nil || bar != 50 {
		t.Fatalf("the live bar after the advance: %v (%v), want 50", bar, err)
	}

	advance() // our turn: the page continues by itself
	// The page navigates several times (continue, callback, the site), so
	// poll from here rather than in the page, which each navigation ends.
	var body string
	for deadline := time.Now().Add(15 * time.Second); ; {
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err == nil && strings.HasPrefix(loc, siteURL+"/") && !strings.Contains(loc, "/callback") {
			if body, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("pre"))); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("did not land back on the site: at %q (%v)", loc, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(body, `"queue_position": 3`) || !strings.Contains(body, `"room": "`+roomID+`"`) {
		t.Fatalf("the site's ID token claims: %s", body)
	}

	// The site asks this admitted visitor to pass the queue again
	// (prompt=login): the page asks first, and the real browser's answer
	// (its form post, same-origin, with the question's token) queues them
	// again, at the back.
	// A request is dated to the second: one from the second of the
	// admission is answered by it, so this one comes a second later.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 50*time.Millisecond)))
	q := url.Values{"client_id": {clientID}, "redirect_uri": {siteURL + "/callback"}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"again"}, "prompt": {"login"}}
	step, cancelStep := context.WithTimeout(ctx, 20*time.Second)
	err := chromedp.Do(step,
		chromedp.Navigate(issuer+"/authorize?"+q.Encode()),
		chromedp.WaitVisible(chromedp.CSS(`form[action*="/requeue?t="] button`)),
	)
	cancelStep()
	if err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		text, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		t.Fatalf("the question page: %v, at %s: %.300s", err, loc, text)
	}
	screenshot(t, ctx, "queue-again-question.png")
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`form[action*="/requeue?t="] button`)),
		chromedp.WaitVisible(chromedp.CSS("#position")),
	); err != nil {
		t.Fatalf("answer the question in the browser: %v", err)
	}
	if position, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#position"))); err != nil || position != "4" {
		t.Fatalf("after queueing again the page shows position %q (%v); want 4, a new place at the back", position, err)
	}

	// The same page on a phone, for a third visitor (a browser of their own).
	phone := browser(t, chromium)
	if err := chromedp.Do(phone,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile),
		chromedp.Navigate(siteURL+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#position")),
	); err != nil {
		t.Fatalf("phone: %v", err)
	}
	screenshot(t, phone, "waiting-page-phone.png")
}

// requireChromium returns Chromium's path, or skips the test (fails it
// with ANTEROOM_TEST_BROWSER=required) when there is none.
func requireChromium(t *testing.T) string {
	t.Helper()
	chromium := findChromium()
	if chromium == "" {
		if os.Getenv("ANTEROOM_TEST_BROWSER") == "required" {
			t.Fatal("Chromium is required (ANTEROOM_TEST_BROWSER=required) but not installed")
		}
		t.Skip("Chromium not installed (set ANTEROOM_TEST_BROWSER=required to fail instead)")
	}
	return chromium
}

func findChromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browser starts headless Chromium with the flags this machine's closed
// network needs, and extra ones, and returns a tab's context.
func browser(t *testing.T, path string, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	opts = append(opts, extra...)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	return ctx
}

// screenshot saves a full-page screenshot into $ANTEROOM_SCREENSHOTS.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("ANTEROOM_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
