package web

// Localisation: every word the waiting page and the message pages show a
// visitor comes from a catalogue of texts, one JSON object per language,
// keyed by message keys such as "wait.position". The binary carries English
// and German (locales/*.json); an operator's override directory adds
// languages and replaces texts with its own locales/<tag>.json. The
// language of a page is the best match for the browser's Accept-Language,
// and English when nothing matches. A text missing from a language comes
// from its parent language (de-AT from de) and then from English, so a
// partial translation still gives a whole page.
//
// A text that counts something ("{n} minutes") has one key per CLDR plural
// category, <key>.one, <key>.few, <key>.other…: English has only one and
// other, but Polish says 2 minuty and 5 minut, and French says 0 minute.
// The category comes from golang.org/x/text/feature/plural, which knows
// every language's rules, so adding a language is adding its texts.

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"maps"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/text/feature/plural"
	"golang.org/x/text/language"
)

//go:embed locales/*.json
var builtinLocales embed.FS

// fallback is the language every key must have a text in, the one a page
// falls back to, and the language of JSON error descriptions.
var fallback = language.English

// scriptKeys are the texts wait.js needs; the page hands them over in a
// JSON script element (a data block, which the CSP allows, where inline
// JavaScript it would not).
var scriptKeys = []string{
	"wait.eta.unknown", "wait.eta.less_than_minute", "wait.eta.about_minute",
	"wait.eta.minutes", "wait.eta.hours", "wait.eta.your_turn",
	"wait.notice.paused", "wait.notice.closed", "wait.position.drawn",
	"wait.announce", "wait.announce.admitted",
	"wait.challenge.solved", "wait.challenge.failed",
}

// rtlScripts are the scripts written right to left, for <html dir>.
var rtlScripts = map[string]bool{"Arab": true, "Hebr": true, "Syrc": true, "Thaa": true, "Nkoo": true, "Adlm": true, "Rohg": true}

// catalogue holds every language's texts and picks a language for a
// request. It is built once at start-up and only read afterwards.
type catalogue struct {
	// tags are the languages offered, English first (the matcher's
	// default); langs are their resolved texts, in the same order.
	tags    []language.Tag
	langs   []*lang
	matcher language.Matcher
}

// lang is one language's texts with their fallbacks resolved.
type lang struct {
	tag string // BCP 47, for <html lang>
	dir string // ltr or rtl
	// chain is the language's own texts, then its parents', then
	// English's: a key is looked up in each in turn.
	chain []map[string]string
	// plurals are the languages whose plural rules choose among the forms
	// of chain's texts, one per entry: a form that comes from English is
	// chosen by English's rules.
	plurals []language.Tag
}

// texts maps a message key to its text in one language.
type texts = map[string]string

// loadCatalogue reads the built-in languages and then, if override is not
// nil, the JSON files of override's locales directory, which add
// languages and replace texts. dir names the override directory in errors.
func loadCatalogue(override fs.FS, dir string) (*catalogue, error) {
	builtin, err := readLocales(builtinLocales, "built-in ")
	if err != nil {
		return nil, err
	}
	en := fallback.String()
	if builtin[en] == nil {
		return nil, errors.New("built-in locales: no en.json")
	}
	all := make(map[string]texts, len(builtin))
	for tag, f := range builtin {
		if tag != en {
			if err := checkTexts(f, builtin[en].texts, false); err != nil {
				return nil, err
			}
		}
		all[tag] = f.texts
	}
	if override != nil {
		extra, err := readLocales(override, dir+"/")
		if err != nil {
			return nil, err
		}
		// English first: it may add keys (for an operator's own
		// templates), which the other languages may then translate.
		if f := extra[en]; f != nil {
			if err := checkTexts(f, builtin[en].texts, true); err != nil {
				return nil, err
			}
			all[en] = merge(all[en], f.texts)
		}
		for _, tag := range slices.Sorted(maps.Keys(extra)) {
			if tag == en {
				continue
			}
			if err := checkTexts(extra[tag], all[en], false); err != nil {
				return nil, err
			}
			all[tag] = merge(all[tag], extra[tag].texts)
		}
	}

	c := &catalogue{}
	names := slices.DeleteFunc(slices.Sorted(maps.Keys(all)), func(n string) bool { return n == en })
	for _, name := range append([]string{en}, names...) {
		tag := language.Make(name)
		l := &lang{tag: name, dir: "ltr"}
		if script, conf := tag.Script(); conf != language.No && rtlScripts[script.String()] {
			l.dir = "rtl"
		}
		for t := tag; !t.IsRoot(); t = t.Parent() {
			if own := all[t.String()]; own != nil && t.String() != en {
				l.chain = append(l.chain, own)
				l.plurals = append(l.plurals, t)
			}
		}
		l.chain = append(l.chain, all[en])
		l.plurals = append(l.plurals, fallback)
		c.tags = append(c.tags, tag)
		c.langs = append(c.langs, l)
	}
	c.matcher = language.NewMatcher(c.tags)
	return c, nil
}

// merge returns base with over's texts replacing or adding to its own;
// base may be nil.
func merge(base, over texts) texts {
	out := maps.Clone(base)
	if out == nil {
		out = texts{}
	}
	maps.Copy(out, over)
	return out
}

// localeFile is one <tag>.json.
type localeFile struct {
	name  string // for errors: where it came from
	texts texts
}

// readLocales reads every <tag>.json in the locales directory of fsys,
// keyed by the canonical form of the tag; prefix says where they came from
// in errors. A missing directory holds no languages.
func readLocales(fsys fs.FS, prefix string) (map[string]*localeFile, error) {
	const dir = "locales"
	entries, err := fs.ReadDir(fsys, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s%s: %w", prefix, dir, err)
	}
	out := map[string]*localeFile{}
	for _, e := range entries {
		base, ok := strings.CutSuffix(e.Name(), ".json")
		if e.IsDir() || !ok {
			continue
		}
		f := &localeFile{name: prefix + path.Join(dir, e.Name())}
		tag, err := language.Parse(base)
		if err != nil || tag.IsRoot() {
			return nil, fmt.Errorf("%s: the file name must be a BCP 47 language tag, like de.json or pt-BR.json", f.name)
		}
		if other := out[tag.String()]; other != nil {
			return nil, fmt.Errorf("%s: the same language as %s", f.name, other.name)
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
		if err := json.Unmarshal(b, &f.texts); err != nil || f.texts == nil {
			if err == nil {
				err = errors.New("null")
			}
			return nil, fmt.Errorf("%s: must be a JSON object of message keys and texts: %w", f.name, err)
		}
		out[tag.String()] = f
	}
	return out, nil
}

// checkTexts checks one language's texts against English: every key must
// be one English has (unless adding is set: an operator's English may add
// keys), no text may be empty, and a text may only use the placeholders
// English uses for its key. A plural form English does not need
// (<key>.few where English has <key>.other) is a key English has, with
// the placeholders of English's <key>.other.
func checkTexts(f *localeFile, en texts, adding bool) error {
	var errs []error
	file := f.name
	for _, key := range slices.Sorted(maps.Keys(f.texts)) {
		text := f.texts[key]
		ref, known := en[key]
		if !known {
			if base, _, ok := cutPluralForm(key); ok && !adding {
				ref, known = en[base+".other"]
			}
		}
		switch {
		case !known && !adding:
			errs = append(errs, fmt.Errorf("%s: unknown key %q (add it to en.json first)", file, key))
		case strings.TrimSpace(text) == "":
			errs = append(errs, fmt.Errorf("%s: %q has an empty text", file, key))
		case known:
			allowed := placeholders(ref)
			for _, p := range placeholders(text) {
				if !slices.Contains(allowed, p) {
					errs = append(errs, fmt.Errorf("%s: %q uses {%s}, which is not one of its placeholders %v", file, key, p, allowed))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// pluralForms are the names of the CLDR plural categories
// (https://cldr.unicode.org/index/cldr-spec/plural-rules), indexed by
// plural.Form.
var pluralForms = [...]string{
	plural.Other: "other", plural.Zero: "zero", plural.One: "one",
	plural.Two: "two", plural.Few: "few", plural.Many: "many",
}

// cutPluralForm splits a plural text's key, "duration.hours.few", into
// its base and its category; ok is false when the key ends in no category.
func cutPluralForm(key string) (base, form string, ok bool) {
	i := strings.LastIndexByte(key, '.')
	if i < 0 || !slices.Contains(pluralForms[:], key[i+1:]) {
		return "", "", false
	}
	return key[:i], key[i+1:], true
}

// pluralForm is the CLDR plural category of the whole number n in
// language tag: "one" for 1 in English but for 0 and 1 in French, "few"
// for 2–4, 22–24… and "many" for 5–21, 25… in Polish and Russian.
func pluralForm(tag language.Tag, n int64) string {
	if n < 0 {
		n = -n
	}
	if n >= 10_000_000 {
		// MatchPlural takes operands modulo 10,000,000 (its doc):
		// keep the digits the rules look at, without overflowing int.
		n = n%10_000_000 + 10_000_000
	}
	return pluralForms[plural.Cardinal.MatchPlural(tag, int(n), 0, 0, 0, 0)]
}

// placeholders lists the {name}s of a text.
func placeholders(text string) []string {
	var out []string
	for {
		_, rest, ok := strings.Cut(text, "{")
		if !ok {
			return out
		}
		name, after, ok := strings.Cut(rest, "}")
		if !ok {
			return out
		}
		if isPlaceholderName(name) && !slices.Contains(out, name) {
			out = append(out, name)
		}
		text = after
	}
}

func isPlaceholderName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

// pick returns the language for an Accept-Language header: the best match
// by q-value among the offered ones, and English when none matches or no
// entry of the header parses.
func (c *catalogue) pick(acceptLanguage string) *lang {
	prefs := acceptedLanguages(acceptLanguage)
	if len(prefs) == 0 {
		return c.langs[0]
	}
	_, i, conf := c.matcher.Match(prefs...)
	if conf == language.No {
		return c.langs[0]
	}
	return c.langs[i]
}

// maxAcceptLanguages bounds the entries of an Accept-Language header that
// are looked at: browsers send a handful, and each costs a tag parse.
const maxAcceptLanguages = 32

// acceptedLanguages returns the languages of an Accept-Language header
// (RFC 9110 §12.5.4) in order of preference. Unlike
// language.ParseAcceptLanguage, which rejects the whole header for one bad
// entry, it skips an entry whose tag or weight does not parse (and those
// with q=0, "not acceptable", and "*", which names no language), so that
// a browser extension's or proxy's malformed entry does not cost the
// visitor the languages they did name properly.
func acceptedLanguages(header string) []language.Tag {
	type pref struct {
		tag language.Tag
		q   float64
	}
	var prefs []pref
	for n, entry := 0, ""; header != "" && n < maxAcceptLanguages; n++ {
		entry, header, _ = strings.Cut(header, ",")
		name, params, _ := strings.Cut(entry, ";")
		name = strings.TrimSpace(name)
		if name == "" || name == "*" {
			continue
		}
		q, ok := 1.0, true
		if params = strings.TrimSpace(params); params != "" {
			k, v, found := strings.Cut(params, "=")
			q, ok = parseQValue(strings.TrimSpace(v))
			ok = ok && found && strings.EqualFold(strings.TrimSpace(k), "q")
		}
		if !ok || q == 0 {
			continue
		}
		tag, err := language.Parse(name)
		if err != nil {
			continue
		}
		prefs = append(prefs, pref{tag, q})
	}
	slices.SortStableFunc(prefs, func(a, b pref) int {
		switch {
		case a.q > b.q:
			return -1
		case a.q < b.q:
			return 1
		}
		return 0
	})
	out := make([]language.Tag, len(prefs))
	for i, p := range prefs {
		out[i] = p.tag
	}
	return out
}

// parseQValue parses a weight as RFC 9110 §12.4.2 writes it:
// qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ).
func parseQValue(v string) (float64, bool) {
	if len(v) == 0 || len(v) > 5 || (v[0] != '0' && v[0] != '1') || (len(v) > 1 && v[1] != '.') {
		return 0, false
	}
	for i := 2; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
	}
	q, err := strconv.ParseFloat(v, 64)
	if err != nil || q > 1 {
		return 0, false
	}
	return q, true
}

// localeFor picks the language of the page answering r, and says so to
// caches.
func (s *Server) localeFor(w http.ResponseWriter, r *http.Request) locale {
	w.Header().Add("Vary", "Accept-Language")
	return locale{lang: s.locales.pick(r.Header.Get("Accept-Language"))}
}

// locale is one page's language. Page data embed it, so templates write
// {{.Lang}}, {{.Dir}}, {{.T "wait.position"}} and {{.Strings}}.
type locale struct {
	lang *lang
	// strict makes an unknown key an error rather than the key itself; it
	// is set while templates are checked at start-up.
	strict bool
}

// Lang is the page's language as a BCP 47 tag, for <html lang>.
func (l locale) Lang() string { return l.lang.tag }

// Dir is the page's writing direction, ltr or rtl, for <html dir>.
func (l locale) Dir() string { return l.lang.dir }

// T returns the text of key with its placeholders filled in from args,
// which alternate a placeholder's name and its value: {{.T "wait.title"
// "room" .RoomName}}. html/template escapes the result.
func (l locale) T(key string, args ...any) (string, error) {
	text, err := l.lookup(key)
	if err != nil {
		return "", err
	}
	return fill(text, args, false)
}

// HTML is T for a text some of whose values are markup: values of type
// template.HTML go in as they are, everything else (the text itself
// included) is escaped.
func (l locale) HTML(key string, args ...any) (template.HTML, error) {
	text, err := l.lookup(key)
	if err != nil {
		return "", err
	}
	s, err := fill(text, args, true)
	return template.HTML(s), err
}

// Strings returns the texts wait.js needs, for a
// <script type="application/json"> element.
func (l locale) Strings() map[string]string {
	out := make(map[string]string, len(scriptKeys))
	for _, k := range scriptKeys {
		out[k] = l.text(k)
	}
	return out
}

// text is T for Go code, which only uses keys it knows exist.
func (l locale) text(key string, args ...any) string {
	s, _ := l.T(key, args...)
	return s
}

func (l locale) lookup(key string) (string, error) {
	for _, t := range l.lang.chain {
		if s, ok := t[key]; ok {
			return s, nil
		}
	}
	if l.strict {
		return "", fmt.Errorf("unknown message key %q", key)
	}
	return key, nil
}

// fill replaces each {name} of text with the value named so in args. A
// {name} without a value stays as it is. With markup set, the result is
// HTML: text and values are escaped except values of type template.HTML.
func fill(text string, args []any, markup bool) (string, error) {
	if len(args)%2 != 0 {
		return "", fmt.Errorf("placeholder values come in name, value pairs, got %d arguments", len(args))
	}
	esc := func(s string) string { return s }
	if markup {
		esc = template.HTMLEscapeString
	}
	var b strings.Builder
	for {
		before, rest, ok := strings.Cut(text, "{")
		if !ok {
			b.WriteString(esc(text))
			return b.String(), nil
		}
		b.WriteString(esc(before))
		name, after, ok := strings.Cut(rest, "}")
		v, found := lookupArg(args, name)
		if !ok || !found {
			b.WriteString(esc("{"))
			text = rest
			continue
		}
		if h, ok := v.(template.HTML); ok {
			b.WriteString(string(h))
		} else {
			b.WriteString(esc(fmt.Sprint(v)))
		}
		text = after
	}
}

func lookupArg(args []any, name string) (any, bool) {
	for i := 0; i+1 < len(args); i += 2 {
		if n, ok := args[i].(string); ok && n == name {
			return args[i+1], true
		}
	}
	return nil, false
}

// Duration writes an estimated wait in seconds as people say it, in the
// page's language: "about 7 minutes", "etwa 7 Minuten"; nil (unknown) is a
// dash. The page's own .ETA is this for the visitor's wait; an operator's
// template writes any other as {{.Duration .Status.ETASeconds}}. Its
// texts are wait.js's too (wait.eta.*), so the page reads the same before
// and after its first update.
func (l locale) Duration(secs *int64) string {
	if secs == nil {
		return l.text("wait.eta.unknown")
	}
	d := time.Duration(*secs) * time.Second
	switch {
	case d < time.Minute:
		return l.text("wait.eta.less_than_minute")
	case d < 2*time.Minute:
		return l.text("wait.eta.about_minute")
	case d < time.Hour:
		return l.text("wait.eta.minutes", "minutes", int(d.Minutes()+0.5))
	default:
		return l.text("wait.eta.hours", "hours", int(d.Hours()), "minutes", fmt.Sprintf("%02d", int(d.Minutes())%60))
	}
}

// keptFor writes a max wait as people say it: "6 hours", "90 minutes".
func (l locale) keptFor(d time.Duration) string {
	if d >= time.Hour && d%time.Hour == 0 {
		return l.count("duration.hours", int64(d/time.Hour))
	}
	return l.count("duration.minutes", int64(max(d, time.Minute)/time.Minute))
}

// count writes the plural text key for n, as {n}: the form of n's CLDR
// plural category in the page's language (key.one, key.few, key.other…).
// The first language of the chain that has any form of key answers, in
// its own rules: a language that leaves out a category it has (Polish
// without key.many) falls back to its own key.other, never to English's
// words, and only a language without the text at all gets English's.
func (l locale) count(key string, n int64) string {
	args := []any{"n", strconv.FormatInt(n, 10)}
	for i, t := range l.lang.chain {
		if text, ok := t[key+"."+pluralForm(l.lang.plurals[i], n)]; ok {
			s, _ := fill(text, args, false)
			return s
		}
		if text, ok := t[key+".other"]; ok {
			s, _ := fill(text, args, false)
			return s
		}
	}
	return l.text(key+".other", args...)
}

// opening writes a room's opening time (in UTC) in the page's language:
// "09:00 UTC on 1 December".
func (l locale) opening(t time.Time) string {
	t = t.UTC()
	return l.text("wait.opens_at",
		"hour", fmt.Sprintf("%02d", t.Hour()), "minute", fmt.Sprintf("%02d", t.Minute()),
		"zone", "UTC", "day", t.Day(), "month", l.text("month."+strconv.Itoa(int(t.Month()))))
}

// MarshalJSON writes a message as the JSON error answer,
// {"error": code, "error_description": text}, in the binary's English
// whatever the request's language: it is an API, not page copy.
func (m message) MarshalJSON() ([]byte, error) {
	type answer struct {
		Code string `json:"error"`
		Text string `json:"error_description"`
	}
	text, ok := builtinEnglish()[m.Text]
	if !ok {
		text = m.Text
	}
	return json.Marshal(answer{m.Code, text})
}

// builtinEnglish is the binary's own English catalogue.
var builtinEnglish = sync.OnceValue(func() texts {
	b, err := builtinLocales.ReadFile("locales/en.json")
	if err != nil {
		panic(err)
	}
	var t texts
	if err := json.Unmarshal(b, &t); err != nil {
		panic(err)
	}
	return t
})

// newMessagePage renders m in l: its title and text are keys, or texts
// shown as they are.
func newMessagePage(m message, l locale, staticURL string) messagePage {
	m.Title, m.Text = l.text(m.Title), l.text(m.Text)
	return messagePage{locale: l, message: m, StaticURL: staticURL}
}
