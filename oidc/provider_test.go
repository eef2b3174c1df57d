package oidc

import (
	"strings"
	"testing"

	"github.com/anteroom/anteroom/config"
)

func TestGateClientIDsAreReserved(t *testing.T) {
	for _, id := range []string{"anteroom-gate", "anteroom-gate-launch", "anteroom-gate-x"} {
		_, err := NewProvider(Options{Issuer: "https://queue.example.com", Clients: []config.Client{{ID: id, Room: "launch"}}})
		if err == nil || !strings.Contains(err.Error(), "reserved for the built-in gate") {
			t.Fatalf("client %q: %v", id, err)
		}
	}
}
