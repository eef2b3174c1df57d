package main

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/go-jose/go-jose/v4"
)

// fastlyDictionaryItem is one item of Fastly's batch dictionary update
// (PATCH /service/{id}/dictionary/{id}/items).
type fastlyDictionaryItem struct {
	Op    string `json:"op,omitempty"`
	Key   string `json:"item_key"`
	Value string `json:"item_value"`
}

// edgeCmd runs `anteroom edge COMMAND`: helpers for the edge connectors.
func edgeCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "fastly-keys" {
		out, code := stderr, exitConfig
		if len(args) == 1 && (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
			out, code = stdout, 0
		}
		fmt.Fprint(out, `usage:
  anteroom edge fastly-keys [-current ITEMS.json] JWKS.json
      writes the anteroom_keys edge dictionary items for a JWKS (Anteroom's
      {issuer}/keys) as a Fastly batch update; with -current (the items the
      dictionary holds now, as Fastly's API lists them: GET
      /service/{id}/dictionary/{id}/items) it warns about every key of the JWKS the dictionary lacks and
      exits 1 when there is one.
`)
		return code
	}
	fs := flag.NewFlagSet("fastly-keys", flag.ContinueOnError)
	fs.SetOutput(stderr)
	current := fs.String("current", "", "the dictionary's items now (JSON list of {item_key, item_value})")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: anteroom edge fastly-keys [-current ITEMS.json] JWKS.json")
		return exitConfig
	}
	raw, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "anteroom edge fastly-keys: %v\n", err)
		return exitConfig
	}
	items, err := fastlyKeyItems(raw)
	if err != nil {
		fmt.Fprintf(stderr, "anteroom edge fastly-keys: %s: %v\n", fs.Arg(0), err)
		return exitConfig
	}
	status := 0
	if *current != "" {
		cur, err := os.ReadFile(*current)
		if err != nil {
			fmt.Fprintf(stderr, "anteroom edge fastly-keys: %v\n", err)
			return exitConfig
		}
		var have []fastlyDictionaryItem
		if err := json.Unmarshal(cur, &have); err != nil {
			fmt.Fprintf(stderr, "anteroom edge fastly-keys: %s: %v\n", *current, err)
			return exitConfig
		}
		for _, kid := range missingFastlyKeys(items, have) {
			status = 1
			if kid == fastlyPublishedItem {
				fmt.Fprintf(stderr, "warning: the edge dictionary lacks %q: until it has it, rooms with on_error: fail_open let a cookie with any made-up kid through\n", kid)
				continue
			}
			// Tokens signed with this key are sent to the queue at the
			// edge until the dictionary has it.
			fmt.Fprintf(stderr, "warning: key %q of the JWKS has no entry in the edge dictionary\n", kid)
		}
	}
	out, _ := json.MarshalIndent(map[string]any{"items": items}, "", "  ")
	fmt.Fprintln(stdout, string(out))
	return status
}

// fastlyKeyItems turns a public JWKS into anteroom_keys entries: the kid
// as the key, "ALG PEM" as the value, which anteroom.vcl splits to pick
// digest.rsa_verify or digest.ecdsa_verify and to refuse a token whose
// header names another algorithm.
func fastlyKeyItems(jwks []byte) ([]fastlyDictionaryItem, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwks, &set); err != nil {
		return nil, fmt.Errorf("read the jwks: %w", err)
	}
	if len(set.Keys) == 0 {
		return nil, fmt.Errorf("the jwks has no keys")
	}
	var items []fastlyDictionaryItem
	for i, k := range set.Keys {
		if k.KeyID == "" || (k.Algorithm != "RS256" && k.Algorithm != "ES256") {
			return nil, fmt.Errorf("keys[%d]: needs a kid and alg RS256 or ES256, as Anteroom publishes it", i)
		}
		if !k.IsPublic() {
			return nil, fmt.Errorf("keys[%d] (%s): is a private key; use the public JWKS from {issuer}/keys", i, k.KeyID)
		}
		der, err := x509.MarshalPKIXPublicKey(k.Key)
		if err != nil {
			return nil, fmt.Errorf("keys[%d] (%s): %w", i, k.KeyID, err)
		}
		p := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		items = append(items, fastlyDictionaryItem{Op: "upsert", Key: k.KeyID, Value: k.Algorithm + " " + string(p)})
	}
	// The VCL fails open (on_error: fail_open) only while the dictionary
	// has no keys at all, which it tells by this entry: a visitor can make
	// up a kid, not the dictionary's contents.
	items = append(items, fastlyDictionaryItem{Op: "upsert", Key: fastlyPublishedItem, Value: "1"})
	return items, nil
}

// fastlyPublishedItem is the anteroom_keys entry that says the edge has
// Anteroom's keys; no kid can name it (the VCL reads kids without a colon).
const fastlyPublishedItem = "anteroom:published"

// missingFastlyKeys lists the kids of want that have lacks.
func missingFastlyKeys(want, have []fastlyDictionaryItem) []string {
	got := map[string]bool{}
	for _, it := range have {
		got[it.Key] = true
	}
	var out []string
	for _, it := range want {
		if !got[it.Key] {
			out = append(out, it.Key)
		}
	}
	sort.Strings(out)
	return out
}
