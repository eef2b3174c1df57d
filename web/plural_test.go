package web

import (
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"golang.org/x/text/language"
)

// The plural category of a count follows CLDR's rules for the language
// (https://cldr.unicode.org/index/cldr-spec/plural-rules, cardinal
// rules), not n == 1: French puts 0 with 1, Polish and Russian have "few"
// and "many", Arabic "zero" and "two", Japanese only "other".
func TestPluralFormFollowsCLDR(t *testing.T) {
	for _, c := range []struct {
		tag  string
		n    int64
		want string
	}{
		{"en", 0, "other"}, {"en", 1, "one"}, {"en", 2, "other"},
		{"de", 1, "one"}, {"de", 0, "other"},
		{"fr", 0, "one"}, {"fr", 1, "one"}, {"fr", 2, "other"},
		{"pl", 1, "one"}, {"pl", 2, "few"}, {"pl", 4, "few"}, {"pl", 5, "many"}, {"pl", 12, "many"}, {"pl", 22, "few"}, {"pl", 25, "many"},
		{"ru", 1, "one"}, {"ru", 21, "one"}, {"ru", 11, "many"}, {"ru", 3, "few"}, {"ru", 5, "many"},
		{"ar", 0, "zero"}, {"ar", 2, "two"}, {"ar", 3, "few"}, {"ar", 11, "many"}, {"ar", 100, "other"},
		{"ja", 1, "other"},
		// Large counts keep the digits the rules look at.
		{"ru", 10_000_021, "one"}, {"pl", 10_000_022, "few"}, {"en", 10_000_001, "other"},
	} {
		if got := pluralForm(language.MustParse(c.tag), c.n); got != c.want {
			t.Errorf("%s %d: %q, want %q", c.tag, c.n, got, c.want)
		}
	}
}

// pluralCatalogue is the built-in catalogue plus an operator's French
// (which has no text for hours) and Polish, whose minutes leave out
// "many".
func pluralCatalogue(t *testing.T) *catalogue {
	t.Helper()
	c, err := loadCatalogue(fstest.MapFS{
		"locales/fr.json": {Data: []byte(`{"duration.minutes.one": "{n} minute", "duration.minutes.other": "{n} minutes"}`)},
		"locales/pl.json": {Data: []byte(`{"duration.hours.one": "{n} godzina", "duration.hours.few": "{n} godziny", "duration.hours.many": "{n} godzin", "duration.hours.other": "{n} godziny",
			"duration.minutes.one": "{n} minuta", "duration.minutes.few": "{n} minuty", "duration.minutes.other": "{n} minuty (inne)"}`)},
	}, "web")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A count's text is its plural category's form in the page's language;
// a language without a category's form uses its own "other", and one
// without the text at all gets English's, chosen by English's rules.
func TestCountUsesTheLanguagesPluralRules(t *testing.T) {
	c := pluralCatalogue(t)
	l := func(tag string) locale { return locale{lang: c.pick(tag)} }
	for _, x := range []struct {
		lang, key string
		n         int64
		want      string
	}{
		{"en", "duration.minutes", 0, "0 minutes"}, {"en", "duration.minutes", 1, "1 minute"},
		{"de", "duration.minutes", 1, "1 Minute"}, {"de", "duration.minutes", 0, "0 Minuten"},
		// French: 0 is singular.
		{"fr", "duration.minutes", 0, "0 minute"}, {"fr", "duration.minutes", 1, "1 minute"}, {"fr", "duration.minutes", 2, "2 minutes"},
		// French has no hours: English's, by English's rules (not "0 hour").
		{"fr", "duration.hours", 0, "0 hours"}, {"fr", "duration.hours", 1, "1 hour"},
		{"pl", "duration.hours", 1, "1 godzina"}, {"pl", "duration.hours", 2, "2 godziny"}, {"pl", "duration.hours", 5, "5 godzin"},
		{"pl", "duration.hours", 22, "22 godziny"}, {"pl", "duration.hours", 12, "12 godzin"},
		// Polish minutes have no "many": Polish "other", not English.
		{"pl", "duration.minutes", 5, "5 minuty (inne)"}, {"pl", "duration.minutes", 3, "3 minuty"},
	} {
		if got := l(x.lang).count(x.key, x.n); got != x.want {
			t.Errorf("%s %s %d: %q, want %q", x.lang, x.key, x.n, got, x.want)
		}
	}
	// keptFor, what the full-queue notice shows, goes through the rules.
	if got := l("pl").keptFor(2 * time.Hour); got != "2 godziny" {
		t.Errorf("Polish keptFor(2h): %q", got)
	}
	if got := l("pl").keptFor(5 * time.Hour); got != "5 godzin" {
		t.Errorf("Polish keptFor(5h): %q", got)
	}
}

// A plural form English does not use is a known key, with the placeholders
// of English's "other"; a made-up category, or forms of a text that does
// not count, is not.
func TestPluralFormsAreChecked(t *testing.T) {
	for _, c := range []struct {
		texts, wantErr string
	}{
		{`{"duration.hours.few": "{n} godziny", "duration.hours.many": "{n} godzin", "duration.hours.zero": "{n}", "duration.hours.two": "{n}"}`, ""},
		{`{"duration.hours.few": "{count} godziny"}`, "uses {count}"},
		{`{"duration.hours.lots": "{n} godzin"}`, "unknown key"},
		{`{"wait.title.few": "{room}"}`, "unknown key"},
		{`{"duration.hours.few": " "}`, "empty text"},
	} {
		_, err := loadCatalogue(fstest.MapFS{"locales/pl.json": {Data: []byte(c.texts)}}, "web")
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("%s: %v", c.texts, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%s: error %v, want one saying %q", c.texts, err, c.wantErr)
		}
	}
}
