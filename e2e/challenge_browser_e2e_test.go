package e2e

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/anteroom/anteroom/config"
)

func throttleRate() float64 {
	if v, err := strconv.ParseFloat(os.Getenv("ANTEROOM_THROTTLE"), 64); err == nil {
		return v
	}
	return 4
}

// TestChallengeInChromiumAtFourTimesThrottling: a real Chromium with its
// CPU slowed four times through the DevTools protocol (a mid-range phone)
// logs in to the demo site of a room that challenges every new visitor at
// the default difficulty; its waiting page solves the challenge in a Web
// Worker under the strict CSP and takes its place with no click. The time
// it took is logged (and measured in bench/), never asserted.
func TestChallengeInChromiumAtFourTimesThrottling(t *testing.T) {
	chromium := requireChromium(t)
	if err := redisServer.FlushAll(); err != nil {
		t.Fatal(err)
	}
	issuer, siteURL, cfg := demoSite(t, func(cfg *config.Config, _ string) {
		cfg.Rooms[0].Challenge = config.Challenge{Mode: "always"} // the default max_number
	})
	if cfg.Rooms[0].Challenge.MaxNumber != config.DefaultChallengeMaxNumber {
		t.Fatalf("max_number %d is not the default", cfg.Rooms[0].Challenge.MaxNumber)
	}

	ctx := browser(t, chromium)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, emulation.SetCPUThrottlingRate, emulation.SetCPUThrottlingRateParams{Rate: throttleRate()}); err != nil {
		t.Fatal(err)
	}
	// The test's own observer (injected by DevTools, not by the page, so
	// the CSP is untouched): what the challenge page showed in its bar
	// and said in its live region, kept in sessionStorage across the
	// proof's navigation.
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
document.addEventListener("DOMContentLoaded", function () {
  var room = document.getElementById("room");
  if (!room || room.getAttribute("data-state") !== "challenge") return;
  new MutationObserver(function () {
    var bar = document.getElementById("bar");
    var said = document.getElementById("announce").textContent;
    sessionStorage.setItem("maxbar", String(Math.max(Number(sessionStorage.getItem("maxbar") || 0), bar.value)));
    if (said) sessionStorage.setItem("announced", said);
  }).observe(room, { subtree: true, childList: true, attributes: true, characterData: true });
});`}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := chromedp.Do(ctx, chromedp.Navigate(siteURL+"/login")); err != nil {
		t.Fatal(err)
	}
	// The challenge page, or already past it on a fast machine.
	var sawChallenge bool
	var took time.Duration
	for deadline := time.Now().Add(50 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		state, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.getElementById("room")||{}).getAttribute ? document.getElementById("room").getAttribute("data-state") : ""`))
		if err == nil && state == "challenge" {
			sawChallenge = true
		}
		if err == nil && state == "waiting" {
			took = time.Since(start)
			break
		}
		if time.Now().After(deadline) {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			t.Fatalf("no place after the challenge: state %q at %s (%v)", state, loc, err)
		}
	}
	position, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#position")))
	if err != nil || position != "1" {
		t.Fatalf("position %q (%v), want 1", position, err)
	}
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	if !strings.HasPrefix(loc, issuer+"/wait/") || strings.HasSuffix(loc, "/proof") {
		t.Fatalf("after the proof the browser is at %s", loc)
	}
	// The bar reached 100 and the live region said so before the post.
	said, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`sessionStorage.getItem("announced") || ""`))
	bar, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`sessionStorage.getItem("maxbar") || ""`))
	if said != "Check done. Taking your place in the queue." || bar != "100" {
		t.Fatalf("the challenge page announced %q with its bar at %q", said, bar)
	}
	t.Logf("Chromium at 4× CPU throttling: challenge page seen %v; a place at max_number %d after %v (navigation, solving and the proof's post)",
		sawChallenge, config.DefaultChallengeMaxNumber, took.Round(time.Millisecond))

	// Reloaded with its ticket, the page is never challenged again.
	if err := chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#position"))); err != nil {
		t.Fatal(err)
	}
	if state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("room").getAttribute("data-state")`)); state != "waiting" {
		t.Fatalf("reloaded page in state %q", state)
	}
}
