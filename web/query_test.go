package web

import (
	"net/url"
	"testing"
)

var queryCases = []string{
	"", "format=json", "format=html", "a=1&format=json", "format=json&format=html",
	"format=html&format=json", "format", "format=", "=json", "format=%6Ason", "form%61t=json",
	"format=js+on", "format=json;x=1", "x=1;format=json&format=json", "format=%zz&format=json",
	"%zz=1&format=json", "format=json&", "&&format=json", "FORMAT=json", "format=JSON",
}

func TestQueryValueAgreesWithParseQuery(t *testing.T) {
	for _, raw := range queryCases {
		want := parseQueryGet(raw, "format")
		if got := queryValue(raw, "format"); got != want {
			t.Errorf("queryValue(%q) = %q, url.ParseQuery says %q", raw, got, want)
		}
	}
}

// FuzzQueryValue holds the fast reader of query parameters to the standard
// library's, whatever the query.
func FuzzQueryValue(f *testing.F) {
	for _, raw := range queryCases {
		f.Add(raw, "format")
	}
	f.Fuzz(func(t *testing.T, raw, key string) {
		if want, got := parseQueryGet(raw, key), queryValue(raw, key); got != want {
			t.Errorf("queryValue(%q, %q) = %q, url.ParseQuery says %q", raw, key, got, want)
		}
	})
}

func parseQueryGet(raw, key string) string {
	q, _ := url.ParseQuery(raw) // keeps the pairs it could parse
	return q.Get(key)
}
