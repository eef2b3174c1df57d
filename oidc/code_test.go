package oidc

import (
	"context"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// go-redis sends a command again when its connection failed after the
// command was written, so a script whose reply was lost may run twice.
// The code's two writes recognise their own earlier run: answering a
// request again with the same code, or spending a code again for the same
// redemption, succeeds, while another code or another redemption is still
// refused. Before, a consume sent again counted as a second use of the
// code (RFC 6749 §4.1.2) and revoked the grant it had just bought.
func TestCodeWritesSentAgainRecogniseThemselves(t *testing.T) {
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	const key = "anteroom:ar:test"
	run := func(s *redis.Script, args ...any) int {
		t.Helper()
		n, err := s.Run(ctx, rdb, []string{key}, args...).Int()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	answer := func(code string) int { return run(answerScript, `{"room":"launch"}`, code, 60_000, 1_800_000_060_000) }
	if answer("code-1") != 1 {
		t.Fatal("the first answer was refused")
	}
	if answer("code-1") != 1 {
		t.Fatal("the same answer sent again was refused: the visitor would have to start again")
	}
	if answer("code-2") != 0 {
		t.Fatal("a second code was attached to one request")
	}

	consume := func(code, accessID string) int {
		return run(consumeCodeScript, code, 1_800_000_600_000, 1_800_000_000_000, accessID, "anteroom:rt:x", 1_800_001_800_000)
	}
	if consume("code-2", "at-1") != 0 {
		t.Fatal("a code the request does not have was spent")
	}
	if consume("code-1", "at-1") != 1 {
		t.Fatal("the first redemption was refused")
	}
	if consume("code-1", "at-1") != 1 {
		t.Fatal("the same redemption sent again counted as a second use")
	}
	if consume("code-1", "at-2") != 0 {
		t.Fatal("a second redemption of the code won")
	}
	if answer("code-1") != 0 {
		t.Fatal("a spent request was answered again")
	}
}
