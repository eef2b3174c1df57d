package waitingroom

import (
	"testing"
	"time"
)

// TestStatusWithLanes: the ETA accounts for the lanes. A standard visitor
// moves at the standard lane's share of the rate while a lane has
// visitors, a lane visitor counts only the lane's visitors ahead, at the
// lane's share; with the lane empty the standard visitor gets the whole
// rate again.
func TestStatusWithLanes(t *testing.T) {
	r := Room{ID: "l", State: StateOpen, SessionTTL: time.Hour, MaxWait: time.Hour, Lanes: []Lane{{ID: "vip", Weight: 3}}}
	now := time.Unix(1_800_000_000, 0)
	c := Counters{State: StateOpen, Serving: 0, Tail: 100,
		lanes: &laneView{lanes: []Lane{{ID: "vip", Weight: 3}}, standard: 1, queued: [][]int64{{50, 60}}, sizes: []int64{2}}}
	std := StatusOf(Ticket{Room: "l", Position: 10, JoinedAt: now}, r, c, 60, now)
	if std.Lane != "" || std.Ahead != 9 || std.ETASeconds == nil || *std.ETASeconds != 40 {
		t.Fatalf("standard visitor: %+v (eta %v), want 9 ahead at a quarter of 60/min: 40 s", std, *std.ETASeconds)
	}
	vip := StatusOf(Ticket{Room: "l", Position: 60, JoinedAt: now}, r, c, 60, now)
	if vip.Lane != "vip" || vip.Ahead != 1 || vip.ETASeconds == nil || *vip.ETASeconds != 3 {
		t.Fatalf("vip: %+v (eta %v), want lane vip, 1 ahead at three quarters of 60/min: 3 s", vip, *vip.ETASeconds)
	}
	c.lanes = &laneView{lanes: []Lane{{ID: "vip", Weight: 3}}, standard: 1, queued: [][]int64{nil}, sizes: []int64{0}}
	if st := StatusOf(Ticket{Room: "l", Position: 10, JoinedAt: now}, r, c, 60, now); *st.ETASeconds != 10 {
		t.Fatalf("standard visitor with the lane empty: eta %d, want the whole rate's 10 s", *st.ETASeconds)
	}
}
