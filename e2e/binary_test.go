package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// The process tests (process_e2e_test.go, streams_process_e2e_test.go,
// starting_e2e_test.go…) and the CLI tests (admin_test.go) run the real
// anteroom command. It is built once per test run, the first time a test
// asks for it, with the tests' own race detector setting and GOFLAGS (the
// go command reads them from the environment).
var binary struct {
	once sync.Once
	dir  string // removed by TestMain
	path string
	err  error
}

// anteroomBinary returns the path of the anteroom command built from this
// checkout, building it on first use.
func anteroomBinary(t testing.TB) string {
	t.Helper()
	binary.once.Do(func() {
		binary.dir, binary.err = os.MkdirTemp("", "anteroom-e2e-")
		if binary.err != nil {
			return
		}
		path := filepath.Join(binary.dir, "anteroom")
		args := []string{"build", "-o", path}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command(goCommand(), append(args, "./cmd/anteroom")...)
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			binary.err = fmt.Errorf("go build ./cmd/anteroom: %w\n%s", err, out)
			return
		}
		binary.path = path
	})
	if binary.err != nil {
		t.Fatal(binary.err)
	}
	return binary.path
}

// removeBinary deletes what anteroomBinary built; TestMain calls it.
func removeBinary() {
	if binary.dir != "" {
		_ = os.RemoveAll(binary.dir)
	}
}

// goCommand is the go command of the toolchain running the tests.
func goCommand() string {
	if p := filepath.Join(os.Getenv("GOROOT"), "bin", "go"); os.Getenv("GOROOT") != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "go"
}

// runAnteroom runs `anteroom args…` to its end, with the test's
// environment, and returns its exit code and output.
func runAnteroom(t testing.TB, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(anteroomBinary(t), args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("anteroom %v: %v", args, err)
	}
	return code, out.String(), errOut.String()
}

// fastlyDictionaryItem is one item of Fastly's batch dictionary update, as
// `anteroom edge fastly-keys` writes it.
type fastlyDictionaryItem struct {
	Op    string `json:"op,omitempty"`
	Key   string `json:"item_key"`
	Value string `json:"item_value"`
}

// fastlyKeyItems runs `anteroom edge fastly-keys` on jwks, as an operator
// does to fill the edge dictionary, and returns the items it writes.
func fastlyKeyItems(t testing.TB, jwks []byte) []fastlyDictionaryItem {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runAnteroom(t, "edge", "fastly-keys", path)
	if code != 0 {
		t.Fatalf("anteroom edge fastly-keys: exit %d\n%s", code, errOut)
	}
	var batch struct {
		Items []fastlyDictionaryItem `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &batch); err != nil {
		t.Fatalf("anteroom edge fastly-keys wrote %q: %v", out, err)
	}
	return batch.Items
}
