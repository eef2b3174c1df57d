package config

import (
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// configKeys lists every key the file can hold, as the reference writes
// it: dotted from the top, with [] for a list's elements
// (rooms[].admission.rate_per_minute). It walks the structs' yaml tags, so
// a key added to a struct is a key here.
func configKeys(t reflect.Type, prefix string, keys *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		key := prefix + tag
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft.Kind() == reflect.Struct && ft != reflect.TypeOf(Duration(0)):
			*keys = append(*keys, key)
			configKeys(ft, key+".", keys)
		case ft.Kind() == reflect.Slice && structElem(ft) != nil:
			*keys = append(*keys, key)
			configKeys(structElem(ft), key+"[].", keys)
		default:
			*keys = append(*keys, key)
		}
	}
}

func structElem(t reflect.Type) reflect.Type {
	e := t.Elem()
	for e.Kind() == reflect.Pointer {
		e = e.Elem()
	}
	if e.Kind() == reflect.Struct {
		return e
	}
	return nil
}

// TestEveryKeyIsInTheReference: docs/configuration.md names every key of
// the file in backquotes, so a key added to the config structs without a
// word for operators fails here, and so does a key the reference still
// describes after it was removed.
func TestEveryKeyIsInTheReference(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	configKeys(reflect.TypeOf(Config{}), "", &keys)
	if len(keys) < 60 {
		t.Fatalf("test is void: only %d keys found in the config structs", len(keys))
	}
	known := map[string]bool{}
	for _, k := range keys {
		known[k] = true
		if !strings.Contains(string(doc), "`"+k+"`") {
			t.Errorf("docs/configuration.md does not describe `%s`", k)
		}
	}
	// The reference's own key column: every row that names a key names one
	// that exists.
	var stale []string
	for _, line := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		k := strings.SplitN(strings.TrimPrefix(line, "| `"), "`", 2)[0]
		if !known[k] {
			stale = append(stale, k)
		}
	}
	sort.Strings(stale)
	for _, k := range stale {
		t.Errorf("docs/configuration.md describes `%s`, which is no key of the file", k)
	}
}
