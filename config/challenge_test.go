package config_test

import (
	"os"
	"strings"
	"testing"

	"github.com/anteroom/anteroom/config"
)

// withChallenge is the design example with a challenge (one YAML line of
// flow mapping) added to its room.
func withChallenge(ch string) string {
	return strings.Replace(designConfig, "    max_wait: 6h\n", "    max_wait: 6h\n    challenge: "+ch+"\n", 1)
}

func TestChallengeDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse([]byte(designConfig), env(designEnv))
	if err != nil {
		t.Fatal(err)
	}
	want := config.Challenge{Mode: "off", MaxNumber: config.DefaultChallengeMaxNumber, JoinsPerSecond: config.DefaultChallengeJoinsPerSecond}
	if got := cfg.Rooms[0].Challenge; got != want {
		t.Fatalf("challenge %+v, want %+v", got, want)
	}
	cfg, err = config.Parse([]byte(withChallenge(`{mode: under_load, joins_per_second: 20}`)), env(designEnv))
	if err != nil {
		t.Fatal(err)
	}
	want = config.Challenge{Mode: "under_load", MaxNumber: config.DefaultChallengeMaxNumber, JoinsPerSecond: 20}
	if got := cfg.Rooms[0].Challenge; got != want {
		t.Fatalf("challenge %+v, want %+v", got, want)
	}
	if err := cfg.Rooms[0].Challenge.Policy().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestChallengeErrorsNameTheKey(t *testing.T) {
	t.Parallel()
	const key = "rooms[0].challenge."
	cases := map[string]string{
		`{mode: sometimes}`:        key + `mode: must be off, always or under_load, got "sometimes"`,
		`{max_number: -5}`:         key + "max_number: must be between 1 and 100000000, got -5",
		`{max_number: 1000000000}`: key + "max_number: must be between 1 and 100000000, got 1000000000",
		`{joins_per_second: -1}`:   key + "joins_per_second: must be > 0",
		`{mode: always, extra: 1}`: "extra",
	}
	for yaml, want := range cases {
		_, err := config.Parse([]byte(withChallenge(yaml)), env(designEnv))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", yaml, err, want)
		}
	}
}

// TestREADMEChallengeExample loads the challenge example of docs/security.md as a
// reader would copy it.
func TestREADMEChallengeExample(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../docs/security.md")
	if err != nil {
		t.Fatal(err)
	}
	const first = "# A room that asks new visitors for a proof of work while it is busy.\n"
	_, rest, ok := strings.Cut(string(data), "```yaml\n"+first)
	if !ok {
		t.Fatal("docs/security.md has no challenge example")
	}
	block, _, _ := strings.Cut(rest, "```")
	cfg, err := config.Parse([]byte(first+block), env(designEnv))
	if err != nil {
		t.Fatalf("README challenge example: %v", err)
	}
	want := config.Challenge{Mode: "under_load", MaxNumber: 200000, JoinsPerSecond: 50}
	if got := cfg.Rooms[0].Challenge; got != want || want.MaxNumber != config.DefaultChallengeMaxNumber {
		t.Fatalf("README challenge example: %+v", got)
	}
}
