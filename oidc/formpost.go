package oidc

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
)

// The library's form_post page submits itself from an inline onload
// attribute, which Anteroom's Content-Security-Policy (no inline script)
// blocks: the visitor would be left on a blank page. This one allows exactly
// its own script, by hash, and posts only to the relying party's origin; a
// button does the same without JavaScript.

const formPostScript = `document.forms[0].submit();`

var (
	formPostCSP = func() string {
		sum := sha256.Sum256([]byte(formPostScript))
		return "default-src 'none'; script-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; frame-ancestors 'none'; base-uri 'none'"
	}()
	formPostPage = template.Must(template.New("form_post").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Continue</title></head>
<body><form method="post" action="{{.Action}}">{{range .Fields}}{{if .Value}}
<input type="hidden" name="{{.Name}}" value="{{.Value}}">{{end}}{{end}}
<noscript><button type="submit">Continue</button></noscript>
</form><script>` + formPostScript + `</script></body></html>
`))
)

// formField is a parameter of a form_post response; an empty one is left
// out.
type formField struct{ Name, Value string }

// formPost answers with the authorization response's fields (the code and
// state, or an error) as an auto-submitting form to redirectURI
// (response_mode=form_post).
func (p *Provider) formPost(w http.ResponseWriter, redirectURI string, fields ...formField) error {
	u, err := url.Parse(redirectURI)
	if err != nil {
		return err
	}
	var page bytes.Buffer
	if err := formPostPage.Execute(&page, struct {
		Action string
		Fields []formField
	}{redirectURI, fields}); err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", formPostCSP+"; form-action "+u.Scheme+"://"+u.Host)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(page.Bytes())
	return nil
}
