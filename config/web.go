package config

import (
	"os"
	"path/filepath"
)

// Web configures what visitors see.
type Web struct {
	// Dir is a directory that gives the visitor's pages their own look and
	// words. Each file it holds replaces the built-in one of that name,
	// and every other file comes from the binary: templates/wait.html and
	// templates/message.html, anything under static/ (served at /static/),
	// and locales/<tag>.json, which adds a language (fr.json) or replaces
	// texts of one. It is read at start-up, and a template that does not
	// parse or render, or an unknown message key, stops start-up with an
	// error naming the file. Empty: the built-in pages.
	Dir string `yaml:"dir"`
	// SiteURL is the site behind the waiting room (https://shop.example.com),
	// where the "back to the site" link of the error pages goes. Empty:
	// the site the visitor came from, when their browser said so
	// (Referer), else no link.
	SiteURL string `yaml:"site_url"`
}

func (v *validator) web(w *Web) {
	if w.SiteURL != "" {
		if u, err := httpURL(w.SiteURL); err != nil {
			v.add("web.site_url", "%v", err)
		} else if u.User != nil {
			v.add("web.site_url", "must not contain user info")
		}
	}
	const p = "web.dir"
	if w.Dir == "" {
		return
	}
	if !filepath.IsAbs(w.Dir) {
		v.add(p, "must be an absolute path, got %q", w.Dir)
		return
	}
	st, err := os.Stat(w.Dir)
	switch {
	case err != nil:
		v.add(p, "%v", err)
	case !st.IsDir():
		v.add(p, "%s is not a directory", w.Dir)
	}
}
