package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEdgeFastlyKeys: `anteroom edge fastly-keys` writes one anteroom_keys
// item per key of the JWKS ("ALG PEM", which TestFastlyVCLTokens verifies
// real tokens with), warns about each key the dictionary lacks, and
// refuses a private or unsupported key.
func TestEdgeFastlyKeys(t *testing.T) {
	// The keys the end-to-end tests' instances published (e2e writes the
	// fixture; TestFastlyVCLTokens checks tokens against these items).
	raw, err := os.ReadFile("../../deploy/edge/testdata/fixture.json")
	if err != nil {
		t.Fatal(err)
	}
	var fx struct {
		Instances []struct {
			Alg  string          `json:"alg"`
			JWKS json.RawMessage `json:"jwks"`
		} `json:"instances"`
	}
	if err := json.Unmarshal(raw, &fx); err != nil {
		t.Fatal(err)
	}
	var jwks json.RawMessage
	for _, in := range fx.Instances {
		if in.Alg == "ES256" {
			jwks = in.JWKS // an ES256 key and the RS256 key before it
		}
	}
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	jwksPath := write("jwks.json", string(jwks))
	var out, errOut bytes.Buffer
	if code := run([]string{"edge", "fastly-keys", jwksPath}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var doc struct{ Items []fastlyDictionaryItem }
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	// Two keys, then the entry that tells the VCL the edge has keys (it
	// fails open only without it).
	if len(doc.Items) != 3 || doc.Items[2] != (fastlyDictionaryItem{Op: "upsert", Key: fastlyPublishedItem, Value: "1"}) {
		t.Fatalf("items: %+v", doc.Items)
	}
	full := doc.Items
	doc.Items = doc.Items[:2]
	algs := map[string]bool{}
	for _, it := range doc.Items {
		alg, pem, _ := strings.Cut(it.Value, " ")
		algs[alg] = true
		if it.Op != "upsert" || it.Key == "" || !strings.HasPrefix(pem, "-----BEGIN PUBLIC KEY-----\n") {
			t.Errorf("item %+v", it)
		}
	}
	if !algs["RS256"] || !algs["ES256"] {
		t.Errorf("algorithms %v, want RS256 and ES256", algs)
	}

	// The dictionary has the first key only: the second is reported.
	have, _ := json.Marshal([]fastlyDictionaryItem{doc.Items[0]})
	out.Reset()
	errOut.Reset()
	code := run([]string{"edge", "fastly-keys", "-current", write("current.json", string(have)), jwksPath}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), doc.Items[1].Key) || strings.Contains(errOut.String(), doc.Items[0].Key) {
		t.Fatalf("exit %d, stderr %q: want a warning for %s only", code, errOut.String(), doc.Items[1].Key)
	}
	all, _ := json.Marshal(full)
	errOut.Reset()
	if code := run([]string{"edge", "fastly-keys", "-current", write("all.json", string(all)), jwksPath}, &out, &errOut); code != 0 || errOut.Len() != 0 {
		t.Fatalf("with every key: exit %d, %q", code, errOut.String())
	}

	for name, jwks := range map[string]string{
		"private": `{"keys":[{"kty":"EC","kid":"a","alg":"ES256","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}]}`,
		"HS256":   `{"keys":[{"kty":"oct","kid":"a","alg":"HS256","k":"c2VjcmV0"}]}`,
		"empty":   `{"keys":[]}`,
	} {
		errOut.Reset()
		if code := run([]string{"edge", "fastly-keys", write(name+".json", jwks)}, &out, &errOut); code != exitConfig {
			t.Errorf("%s: exit %d, want %d (%s)", name, code, exitConfig, errOut.String())
		}
	}
}
