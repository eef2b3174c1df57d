package gate

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The edge connectors (deploy/edge) reimplement the rule matcher in
// JavaScript. These tests hold the Go side of what the two share.

// TestEdgeGoodBots checks that the edge's list of good bots is this
// package's, entry for entry.
func TestEdgeGoodBots(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../deploy/edge/core/bots.js")
	if err != nil {
		t.Fatal(err)
	}
	_, list, ok := strings.Cut(string(data), "// good-bots:begin")
	list, _, ok2 := strings.Cut(list, "// good-bots:end")
	if !ok || !ok2 {
		t.Fatal("deploy/edge/core/bots.js: no good-bots:begin/end markers")
	}
	var got []string
	for _, m := range regexp.MustCompile(`'([^']*)'`).FindAllStringSubmatch(list, -1) {
		got = append(got, m[1])
	}
	if !slices.Equal(got, goodBots) {
		t.Errorf("deploy/edge/core/bots.js lists\n%q\nbut gate/bots.go lists\n%q", got, goodBots)
	}
}

// regexTable is testdata/regex.json.
type regexTable struct {
	Comment string `json:"comment"`
	Cases   []struct {
		Pattern string   `json:"pattern"`
		Fold    bool     `json:"fold"`
		Match   []string `json:"match"`
		NoMatch []string `json:"no_match"`
	} `json:"cases"`
	EdgeUnsupported []struct {
		Pattern string `json:"pattern"`
		Fold    bool   `json:"fold"`
	} `json:"edge_unsupported"`
	Invalid []string `json:"invalid"`
}

// TestEdgeRegexTable checks testdata/regex.json against Go's regexp, the
// way rules compile their patterns: what the edge's translation must
// match, what it may refuse, and what both must refuse.
func TestEdgeRegexTable(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/regex.json")
	if err != nil {
		t.Fatal(err)
	}
	var tab regexTable
	if err := json.Unmarshal(data, &tab); err != nil {
		t.Fatal(err)
	}
	compile := func(p string, fold bool) (*regexp.Regexp, error) {
		if fold {
			p = "(?i)" + p
		}
		return regexp.Compile(p)
	}
	for _, c := range tab.Cases {
		re, err := compile(c.Pattern, c.Fold)
		if err != nil {
			t.Errorf("%q: %v", c.Pattern, err)
			continue
		}
		for _, s := range c.Match {
			if !re.MatchString(s) {
				t.Errorf("%q (fold %v) does not match %q", c.Pattern, c.Fold, s)
			}
		}
		for _, s := range c.NoMatch {
			if re.MatchString(s) {
				t.Errorf("%q (fold %v) matches %q", c.Pattern, c.Fold, s)
			}
		}
	}
	for _, c := range tab.EdgeUnsupported {
		if _, err := compile(c.Pattern, c.Fold); err != nil {
			t.Errorf("edge_unsupported %q does not compile in Go either: %v", c.Pattern, err)
		}
	}
	for _, p := range tab.Invalid {
		if _, err := compile(p, false); err == nil {
			t.Errorf("invalid %q compiles in Go", p)
		}
	}
}
