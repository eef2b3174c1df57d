package e2e

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"gopkg.in/yaml.v3"

	"github.com/anteroom/anteroom/config"
)

// promQLNames returns the metric names expr selects. It is not a PromQL
// parser, but it needs none of one: it removes what cannot be a metric
// name (strings, label matchers, ranges, grouping labels) and keeps every
// identifier that is not a function call or a keyword.
func promQLNames(expr string) []string {
	for _, re := range []string{
		`"(?:[^"\\]|\\.)*"`, `'(?:[^'\\]|\\.)*'`, // strings
		`\{[^}]*\}`,  // label matchers
		`\[[^\]]*\]`, // ranges and subqueries
		`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`, // grouping labels
	} {
		expr = regexp.MustCompile(re).ReplaceAllString(expr, " ")
	}
	keywords := map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true,
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true, "inf": true, "nan": true}
	var names []string
	ident := regexp.MustCompile(`\b[a-zA-Z_:][a-zA-Z0-9_:]*`)
	for _, loc := range ident.FindAllStringIndex(expr, -1) {
		name := expr[loc[0]:loc[1]]
		if keywords[strings.ToLower(name)] || strings.HasPrefix(strings.TrimSpace(expr[loc[1]:]), "(") {
			continue
		}
		names = append(names, name)
	}
	return names
}

func TestPromQLNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`max by (room) (anteroom_room_waiting) > 0 and max by (room) (changes(anteroom_room_serving[10m])) == 0`:  {"anteroom_room_waiting", "anteroom_room_serving"},
		`histogram_quantile(0.95, sum by (route, le) (rate(x_bucket{route!="GET /wait/{id}/events"}[5m]))) * 1e3`: {"x_bucket"},
		`time() - max(due_seconds) > 3600`: {"due_seconds"},
	} {
		if got := promQLNames(expr); !slices.Equal(got, want) {
			t.Errorf("promQLNames(%q) = %q, want %q", expr, got, want)
		}
	}
}

// Every metric that deploy/monitoring's alerting rules and Grafana
// dashboard name is one a running instance exports: an instance with an
// origin probe and rotating keys, scraped after a visitor has been through
// the queue to tokens (until then, series with labels are not exposed).
func TestMonitoringNamesMetricsThatExist(t *testing.T) {
	var used []string
	source := map[string]string{} // metric name → the file and query that name it

	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal([]byte(repoFile(t, "deploy/monitoring/alerts.yaml")), &rules); err != nil {
		t.Fatalf("deploy/monitoring/alerts.yaml: %v", err)
	}
	alerts := map[string]bool{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			alerts[r.Alert] = true
			for _, n := range promQLNames(r.Expr) {
				used = append(used, n)
				source[n] = "alerts.yaml " + r.Alert
			}
		}
	}
	// The alerts issue 18 asks for.
	for _, a := range []string{"AnteroomQueueStuck", "AnteroomAdmissionStalled", "AnteroomRedisErrors", "AnteroomOriginFailing", "AnteroomSigningKeyRotationOverdue"} {
		if !alerts[a] {
			t.Errorf("deploy/monitoring/alerts.yaml has no alert %s", a)
		}
	}

	var dashboard struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal([]byte(repoFile(t, "deploy/monitoring/grafana-dashboard.json")), &dashboard); err != nil {
		t.Fatalf("deploy/monitoring/grafana-dashboard.json: %v", err)
	}
	for _, p := range dashboard.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("dashboard panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			for _, n := range promQLNames(q.Expr) {
				used = append(used, n)
				source[n] = "grafana-dashboard.json " + p.Title
			}
		}
	}
	labelValues := regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,`)
	for _, v := range dashboard.Templating.List {
		if m := labelValues.FindStringSubmatch(v.Definition); m != nil {
			used = append(used, m[1])
			source[m[1]] = "grafana-dashboard.json templating"
		}
	}
	if len(used) < 10 {
		t.Fatalf("only %d metric names found in deploy/monitoring: %q", len(used), used)
	}

	// The instance: a room that admits on a schedule and probes its site,
	// and keys that rotate (the default, every 720h).
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer site.Close()
	rate := 60.0
	e := newEnv(t, false, func(c *config.Config) {
		c.Rooms[0].Admission.RatePerMinute = &rate
		c.Rooms[0].OriginHealth = &config.OriginHealth{URL: site.URL, Interval: config.Duration(time.Second)}
		c.ApplyDefaults()
	})
	a, _ := e.start()
	r := e.rp(clientID, secret, rpCallback)
	b := e.browser()
	l := newLogin()
	// The room's rate lets the first visitor straight through when nobody
	// waits (the safety net); else they wait for the counter.
	resp, _ := visit(t, b, http.MethodGet, r.authURL(l))
	code := codeFrom(t, resp, l)
	if code == "" {
		waitURL := resp.Request.URL.String()
		pollStatus(t, b, waitURL)
		e.clock.Advance(90 * time.Second)
		e.advance(1)
		resp, _ = visit(t, b, http.MethodPost, waitURL+"/continue")
		code = codeFrom(t, resp, l)
	}
	if code == "" {
		t.Fatalf("no code: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	if _, err := r.oauth.Exchange(r.ctx, code, oauth2.VerifierOption(l.verifier)); err != nil {
		t.Fatalf("exchange: %v", err)
	}
	visit(t, e.browser(), http.MethodGet, r.authURL(newLogin())) // a second visitor
	// Abandonment is counted by the scheduler's hook, as when it skips a
	// silent visitor (TestMetricsFollowVisitorsTokensAndRequests).
	a.Scheduler().OnSkip(roomID, 1)

	exported := map[string]bool{}
	if !waitUntil(10*time.Second, func() bool {
		clear(exported)
		for name := range e.scrape() {
			name, _, _ = strings.Cut(name, "{")
			exported[name] = true
		}
		return exported["anteroom_origin_up"]
	}) {
		t.Fatal("the origin probe never reported")
	}
	for _, n := range used {
		if !exported[n] {
			t.Errorf("%s names %s, which the instance does not export", source[n], n)
		}
	}
}

// The alerting rules are valid Prometheus rules (promtool check rules),
// and each fires on the series of the failure it names and not on a
// healthy room's (promtool test rules, deploy/monitoring/alerts_test.yaml:
// its cases are synthetic series, evaluated by Prometheus's own engine).
func TestAlertRulesFireOnTheirFailures(t *testing.T) {
	promtool := findTool(t, "promtool", "apt-get install prometheus")
	for _, args := range [][]string{{"check", "rules", "alerts.yaml"}, {"test", "rules", "alerts_test.yaml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "../deploy/monitoring"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
