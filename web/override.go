package web

// An operator's override directory (config web.dir) gives the waiting room
// its own look and words. It mirrors the embedded layout:
//
//	templates/wait.html, templates/message.html   replace the built-in ones
//	static/...                                    replace or add static files
//	locales/<tag>.json                            add or override texts
//
// Each file falls back to the built-in one, so a directory holding only
// static/style.css changes only the colours. Everything is checked at
// start-up: a template that does not parse, uses a field the page does not
// have, or a message key no catalogue has stops Anteroom with an error
// naming the file, rather than failing a visitor's request.

import (
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/template/parse"
	"time"

	"github.com/anteroom/anteroom/waitingroom"
)

// replaceable are the templates an override directory may replace; the
// operator dashboard's are package operator's, which web.dir never reaches.
var replaceable = []string{"wait.html", "message.html"}

// required are the fields a template must use: without them the page
// cannot do its job. Each inner list needs one of its fields.
var required = map[string][][]string{
	// The continue form, the status it follows, and the texts wait.js
	// shows.
	"wait.html": {{"ContinueURL"}, {"StatusURL", "EventsURL"}, {"Strings"}},
	// What happened and what to do.
	"message.html": {{"Text"}},
}

// theme is what the visitor's pages are made of.
type theme struct {
	pages   *template.Template
	static  fs.FS
	locales *catalogue
}

// loadTheme parses the templates and reads the catalogue, from dir over the
// embedded files when dir is not empty, and checks them. funcs are the
// templates' functions.
func loadTheme(dir string, funcs template.FuncMap) (*theme, error) {
	var upper fs.FS
	if dir != "" {
		st, err := os.Stat(dir)
		if err != nil {
			return nil, fmt.Errorf("web directory: %w", err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("web directory %s: not a directory", dir)
		}
		upper = os.DirFS(dir)
		if err := checkOverrideLayout(upper, dir); err != nil {
			return nil, err
		}
	}
	locales, err := loadCatalogue(upper, dir)
	if err != nil {
		return nil, err
	}
	files := layered{upper: upper, lower: assets}
	// A file of its own first, so that an error names it alone.
	for _, name := range replaceable {
		b, err := readUpper(upper, "templates/"+name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "templates", name), err)
		}
		if b == nil {
			continue
		}
		if _, err := template.New(name).Funcs(funcs).Parse(string(b)); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "templates", name), err)
		}
	}
	pages, err := template.New("").Funcs(funcs).ParseFS(files, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("parse templates: %w", err)
	}
	for _, name := range replaceable {
		source := "built-in templates/" + name
		if b, _ := readUpper(upper, "templates/"+name); b != nil {
			source = filepath.Join(dir, "templates", name)
		}
		if err := checkTemplate(pages, name, locales); err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
	}
	static, err := fs.Sub(files, "static")
	if err != nil {
		return nil, err
	}
	return &theme{pages: pages, static: filesOnly{static}, locales: locales}, nil
}

// checkOverrideLayout rejects a template the directory cannot replace, so
// that a misspelt wait.html does not silently leave the built-in page.
func checkOverrideLayout(upper fs.FS, dir string) error {
	entries, err := fs.ReadDir(upper, "templates")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, "templates"), err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".html") && !slices.Contains(replaceable, e.Name()) {
			return fmt.Errorf("%s: only %s can be replaced", filepath.Join(dir, "templates", e.Name()), strings.Join(replaceable, " and "))
		}
	}
	return nil
}

// readUpper reads name from upper; nil without an error when there is no
// such file (or no upper).
func readUpper(upper fs.FS, name string) ([]byte, error) {
	if upper == nil {
		return nil, nil
	}
	b, err := fs.ReadFile(upper, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// checkTemplate makes sure template name of set uses the fields the page
// needs and renders every kind of page a visitor can see without an error:
// a misspelt field or message key fails here, at start-up.
func checkTemplate(set *template.Template, name string, locales *catalogue) error {
	used := fieldsUsed(set, name)
	for _, alternatives := range required[name] {
		if !slices.ContainsFunc(alternatives, func(f string) bool { return used[f] }) {
			return fmt.Errorf("must use .%s", strings.Join(alternatives, " or ."))
		}
	}
	// Rendering escapes the templates it runs, after which nothing more
	// could be parsed into the set: render a copy.
	set, err := set.Clone()
	if err != nil {
		return err
	}
	for _, l := range locales.langs {
		for _, data := range samplePages(name, locale{lang: l, strict: true}) {
			if err := set.ExecuteTemplate(io.Discard, name, data); err != nil {
				return err
			}
		}
	}
	return nil
}

// samplePages are page data for template name covering what a visitor
// can see.
func samplePages(name string, l locale) []any {
	switch name {
	case "wait.html":
		eta := int64(420)
		base := waitPage{locale: l, RoomName: "Launch", Message: "We let people in in the order they arrived.",
			StatusURL: "https://anteroom.invalid/wait/x?format=json", EventsURL: "https://anteroom.invalid/wait/x/events",
			ContinueURL: "https://anteroom.invalid/wait/x/continue", StaticURL: "https://anteroom.invalid/static",
			KeptFor: l.keptFor(6 * time.Hour)}
		var out []any
		for _, st := range []waitingroom.VisitorStatus{
			{State: waitingroom.VisitorWaiting, Position: 1042, Serving: 980, Ahead: 61, ETASeconds: &eta},
			{State: waitingroom.VisitorWaiting, Position: 1042, Serving: 980, Ahead: 61, ETASeconds: &eta, QueueFull: true},
			{State: waitingroom.VisitorWaiting, Position: 3, Serving: 1},
			{State: waitingroom.VisitorPaused, Position: 1042, Serving: 980, Ahead: 61},
			{State: waitingroom.VisitorClosed, Position: 1042, Serving: 980, Ahead: 61},
			{State: waitingroom.VisitorAdmitted, Position: 1042, Serving: 1042},
		} {
			p := base
			p.Status = st
			p.ETA = l.Duration(st.ETASeconds)
			out = append(out, p)
		}
		p := base
		opens := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
		p.Status = waitingroom.VisitorStatus{State: waitingroom.VisitorWaiting, OpensAt: new(opens.Unix())}
		p.OpensAt = &opening{ISO: opens.Format(time.RFC3339), Text: l.opening(opens)}
		p.ETA = l.Duration(nil)
		return append(out, p)
	case "message.html":
		var out []any
		for _, m := range []message{msgUnknown, msgExpired, msgClaimed, msgClosed, msgNoTicket, msgLoggedOut, msgUnavailable} {
			out = append(out, newMessagePage(m, l, "https://anteroom.invalid/static"))
		}
		return out
	}
	return nil
}

// fieldsUsed returns the names of the fields and methods template name
// (and the templates it calls) refers to.
func fieldsUsed(set *template.Template, name string) map[string]bool {
	used := map[string]bool{}
	seen := map[string]bool{}
	var walk func(parse.Node)
	walkTemplate := func(name string) {
		if seen[name] {
			return
		}
		seen[name] = true
		if t := set.Lookup(name); t != nil && t.Tree != nil {
			walk(t.Tree.Root)
		}
	}
	walk = func(n parse.Node) {
		switch n := n.(type) {
		case *parse.ListNode:
			if n != nil {
				for _, c := range n.Nodes {
					walk(c)
				}
			}
		case *parse.ActionNode:
			walk(n.Pipe)
		case *parse.PipeNode:
			if n != nil {
				for _, c := range n.Cmds {
					walk(c)
				}
			}
		case *parse.CommandNode:
			for _, a := range n.Args {
				walk(a)
			}
		case *parse.FieldNode:
			used[n.Ident[0]] = true
		case *parse.VariableNode:
			if len(n.Ident) > 1 {
				used[n.Ident[1]] = true
			}
		case *parse.ChainNode:
			walk(n.Node)
			if len(n.Field) > 0 {
				used[n.Field[0]] = true
			}
		case *parse.IfNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.RangeNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.WithNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.TemplateNode:
			walk(n.Pipe)
			walkTemplate(n.Name)
		}
	}
	walkTemplate(name)
	return used
}

// layered is an fs.FS of two layers: a file is opened from upper when upper
// has it and from lower otherwise. Directories always come from lower, so
// listing (fs.Glob, ParseFS) sees lower's names: a file of upper replaces
// one of them, or is only found when asked for by name.
type layered struct{ upper, lower fs.FS }

func (l layered) Open(name string) (fs.File, error) {
	if l.upper != nil {
		f, err := l.upper.Open(name)
		switch {
		case err == nil:
			if st, err := f.Stat(); err == nil && !st.IsDir() {
				return f, nil
			}
			f.Close()
		case !errors.Is(err, fs.ErrNotExist):
			return nil, err
		}
	}
	return l.lower.Open(name)
}

// filesOnly serves files but no directories, so /static/ lists nothing.
type filesOnly struct{ fs.FS }

func (f filesOnly) Open(name string) (fs.File, error) {
	file, err := f.FS.Open(name)
	if err != nil {
		return nil, err
	}
	if st, err := file.Stat(); err != nil || st.IsDir() {
		file.Close()
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return file, nil
}

// Interface guards.
var (
	_ fs.FS = layered{}
	_ fs.FS = filesOnly{}
)
