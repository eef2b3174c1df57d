package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/anteroom/anteroom/challenge"
)

// altchaScript runs in node with ALTCHA's own library (altcha-lib, its v1
// API: the protocol of https://altcha.org/docs/api-specification): it
// solves the challenge on stdin with solveChallenge, encodes the payload
// as ALTCHA's widget does (btoa of the JSON), and checks it with
// verifySolution under the HMAC key, as an ALTCHA server would.
const altchaScript = `
import { solveChallenge, verifySolution } from "altcha-lib/v1";
let input = "";
for await (const chunk of process.stdin) input += chunk;
const { challenge: c, hmacKey } = JSON.parse(input);
const solution = await solveChallenge(c.challenge, c.salt, c.algorithm, c.maxnumber).promise;
if (!solution) { console.log(JSON.stringify({ error: "no solution" })); process.exit(0); }
const payload = btoa(JSON.stringify({ algorithm: c.algorithm, challenge: c.challenge, number: solution.number, salt: c.salt, signature: c.signature }));
const verified = await verifySolution(payload, hmacKey);
console.log(JSON.stringify({ payload, verified, number: solution.number }));
`

// altchaLib is the directory whose node_modules holds altcha-lib
// ($ANTEROOM_ALTCHA_LIB, which .ci/run installs), or skips the test (fails
// it with ANTEROOM_TEST_NODE=required).
func altchaLib(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("ANTEROOM_ALTCHA_LIB")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "altcha-lib", "package.json")); dir == "" || err != nil {
		if os.Getenv("ANTEROOM_TEST_NODE") == "required" {
			t.Fatalf("altcha-lib is required (ANTEROOM_TEST_NODE=required) but ANTEROOM_ALTCHA_LIB=%q holds none", dir)
		}
		t.Skip("altcha-lib not installed: set ANTEROOM_ALTCHA_LIB to a directory with node_modules/altcha-lib (.ci/run does)")
	}
	return dir
}

// TestChallengeSolvedByALTCHAsOwnLibrary: Anteroom's challenge, as a JSON
// client gets it, is solved by altcha-lib's solveChallenge and its
// signature verified by altcha-lib's verifySolution under Anteroom's key;
// the payload ALTCHA builds buys the place.
func TestChallengeSolvedByALTCHAsOwnLibrary(t *testing.T) {
	node := nodeBinary(t)
	lib := altchaLib(t)
	h := newHarness(t, challengeRoom("always", 20000))
	b := h.browser()
	_, doc := askChallenge(t, h, b)
	iss, err := challenge.New([][]byte{[]byte(cookieKey)})
	if err != nil {
		t.Fatal(err)
	}
	in, _ := json.Marshal(map[string]any{"challenge": doc.Challenge, "hmacKey": iss.HMACKey()})
	cmd := exec.Command(node, "--input-type=module", "-e", altchaScript)
	cmd.Dir = lib
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node with altcha-lib: %v\n%s", err, out)
	}
	var res struct {
		Payload  string `json:"payload"`
		Verified bool   `json:"verified"`
		Error    string `json:"error"`
	}
	if err := json.Unmarshal(out, &res); err != nil || res.Error != "" {
		t.Fatalf("altcha-lib: %s (%v)", out, err)
	}
	if !res.Verified {
		t.Fatalf("altcha-lib's verifySolution refuses Anteroom's challenge: %s", out)
	}
	code, body, _ := postProof(t, b, doc.ProofURL, res.Payload)
	var st status
	if err := json.Unmarshal(body, &st); code != http.StatusOK || err != nil || st.Position != 1 {
		t.Fatalf("ALTCHA's payload: %d %s", code, body)
	}
}
