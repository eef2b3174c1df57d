package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/anteroom/anteroom/config"
)

func TestRoomScheduleAndAbandonment(t *testing.T) {
	base := `issuer: https://queue.example.com
secrets: {cookie_keys: ["0123456789abcdef0123456789abcdef"]}
clients: [{id: shop, secret: shop-secret-0123456789, redirect_uris: ["https://shop.example.com/cb"], room: launch}]
rooms:
  - id: launch
`
	env := func(string) (string, bool) { return "", false }
	tests := []struct {
		name, room string
		wantErr    string
		check      func(t *testing.T, r config.Room)
	}{
		{"defaults", "", "", func(t *testing.T, r config.Room) {
			if o, c := r.Schedule(); !o.IsZero() || !c.IsZero() || r.Abandonment() != 2*time.Minute {
				t.Fatalf("schedule %v %v, abandonment %v", o, c, r.Abandonment())
			}
		}},
		{"schedule", "    opens_at: 2026-12-01T09:00:00+01:00\n    closes_at: 2026-12-01T18:00:00+01:00\n", "", func(t *testing.T, r config.Room) {
			o, c := r.Schedule()
			if !o.Equal(time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)) || c.Sub(o) != 9*time.Hour {
				t.Fatalf("schedule %v %v", o, c)
			}
		}},
		{"abandonment off", "    abandon_after: 0s\n", "", func(t *testing.T, r config.Room) {
			if r.Abandonment() != 0 {
				t.Fatalf("abandonment %v", r.Abandonment())
			}
		}},
		{"abandonment set", "    abandon_after: 45s\n", "", func(t *testing.T, r config.Room) {
			if r.Abandonment() != 45*time.Second {
				t.Fatalf("abandonment %v", r.Abandonment())
			}
		}},
		{"lottery", "    queueing: random\n", "", func(t *testing.T, r config.Room) {
			if r.Queueing != "random" {
				t.Fatalf("queueing %q", r.Queueing)
			}
		}},
		{"lanes", "    lanes: [{id: vip, weight: 3}, {id: standard, weight: 1}]\n", "", func(t *testing.T, r config.Room) {
			if len(r.Lanes) != 2 || r.Lanes[0] != (config.Lane{ID: "vip", Weight: 3}) {
				t.Fatalf("lanes %+v", r.Lanes)
			}
		}},
		{"lane weight", "    lanes: [{id: vip, weight: 0}]\n", "rooms[0].lanes[0].weight: must be between 1 and 1000, got 0", nil},
		{"lane id", "    lanes: [{id: VIP, weight: 2}]\n", `rooms[0].lanes[0].id: must match`, nil},
		{"lane twice", "    lanes: [{id: vip, weight: 2}, {id: vip, weight: 1}]\n", `rooms[0].lanes[1].id: "vip" is listed twice`, nil},
		{"lanes in a lottery", "    queueing: random\n    lanes: [{id: vip, weight: 2}]\n", "rooms[0].lanes: a room with lanes must queue fifo", nil},
		{"unknown queueing", "    queueing: lifo\n", `rooms[0].queueing: must be fifo or random, got "lifo"`, nil},
		{"abandonment too short", "    abandon_after: 10s\n", "rooms[0].abandon_after: must be 0s (off) or at least 30s, got 10s", nil},
		{"opens_at without zone", "    opens_at: 2026-12-01T09:00:00\n", `rooms[0].opens_at: must be an RFC 3339 time with a zone`, nil},
		{"closes before opening", "    opens_at: 2026-12-01T09:00:00Z\n    closes_at: 2026-12-01T08:00:00Z\n", "rooms[0].closes_at: must be after opens_at", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte(base+tc.room), env)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, cfg.Rooms[0])
		})
	}
}
