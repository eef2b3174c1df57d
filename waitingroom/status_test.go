package waitingroom_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/anteroom/anteroom/waitingroom"
)

func TestStatusOf(t *testing.T) {
	r := rateRoom("launch", 60)
	waiting := waitingroom.Ticket{ID: waitingroom.NewTicketID(), Room: "launch", Position: 10, JoinedAt: t0}
	admitted := waiting
	admitted.AdmittedAt = t0.Add(time.Minute)
	open := func(serving int64, rate float64) waitingroom.Counters {
		return waitingroom.Counters{State: waitingroom.StateOpen, Policy: waitingroom.Policy{RatePerMinute: rate}, Serving: serving, Tail: 20}
	}
	withState := func(c waitingroom.Counters, st waitingroom.State) waitingroom.Counters {
		c.State = st
		return c
	}
	eta := func(s int64) *int64 { return &s }
	now := t0.Add(time.Minute)
	cases := []struct {
		name  string
		tk    waitingroom.Ticket
		c     waitingroom.Counters
		now   time.Time
		state waitingroom.VisitorState
		ahead int64
		eta   *int64
	}{
		{"waiting at 60/min", waiting, open(4, 60), now, waitingroom.VisitorWaiting, 5, eta(6)},
		{"next in line", waiting, open(9, 60), now, waitingroom.VisitorWaiting, 0, eta(1)},
		{"eta rounds up", waiting, open(7, 7), now, waitingroom.VisitorWaiting, 2, eta(26)}, // 3 × 60 / 7 = 25.7
		{"eta fractional rate", waiting, open(9, 0.5), now, waitingroom.VisitorWaiting, 0, eta(120)},
		{"fast rate", waiting, open(0, 6000), now, waitingroom.VisitorWaiting, 9, eta(1)}, // 0.1 s → 1
		{"manual: no eta", waiting, open(4, 0), now, waitingroom.VisitorWaiting, 5, nil},
		{"capacity only: no eta", waiting, waitingroom.Counters{State: waitingroom.StateOpen, Policy: waitingroom.Policy{MaxActive: 5}, Serving: 4}, now, waitingroom.VisitorWaiting, 5, nil},
		{"reached by the counter", waiting, open(10, 60), now, waitingroom.VisitorAdmitted, 0, nil},
		{"passed by the counter", waiting, open(15, 60), now, waitingroom.VisitorAdmitted, 0, nil},
		{"admitted ticket", admitted, open(0, 60), now, waitingroom.VisitorAdmitted, 0, nil},
		{"waiting, expired", waiting, open(4, 60), t0.Add(r.MaxWait), waitingroom.VisitorExpired, 0, nil},
		{"reached but expired", waiting, open(15, 60), t0.Add(r.MaxWait), waitingroom.VisitorExpired, 0, nil},
		{"admitted, session over", admitted, open(15, 60), admitted.SessionEnd(r), waitingroom.VisitorExpired, 0, nil},
		{"admitted, session on", admitted, open(15, 60), admitted.SessionEnd(r).Add(-time.Millisecond), waitingroom.VisitorAdmitted, 0, nil},
		{"closed", waiting, withState(open(4, 60), waitingroom.StateClosed), now, waitingroom.VisitorClosed, 5, nil},
		{"paused", waiting, withState(open(4, 60), waitingroom.StatePaused), now, waitingroom.VisitorPaused, 5, nil},
		{"closed but reached", waiting, withState(open(10, 60), waitingroom.StateClosed), now, waitingroom.VisitorAdmitted, 0, nil},
		{"paused but admitted", admitted, withState(open(0, 60), waitingroom.StatePaused), now, waitingroom.VisitorAdmitted, 0, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := waitingroom.StatusOf(tc.tk, r, tc.c, tc.c.Policy.RatePerMinute, tc.now)
			if st.Room != "launch" || st.Position != tc.tk.Position || st.Serving != tc.c.Serving {
				t.Fatalf("room/position/serving = %s/%d/%d", st.Room, st.Position, st.Serving)
			}
			if st.State != tc.state || st.Ahead != tc.ahead {
				t.Fatalf("state %q ahead %d, want %q ahead %d", st.State, st.Ahead, tc.state, tc.ahead)
			}
			switch {
			case tc.eta == nil && st.ETASeconds != nil:
				t.Fatalf("eta %d, want none", *st.ETASeconds)
			case tc.eta != nil && st.ETASeconds == nil:
				t.Fatalf("no eta, want %d", *tc.eta)
			case tc.eta != nil && *st.ETASeconds != *tc.eta:
				t.Fatalf("eta %d, want %d", *st.ETASeconds, *tc.eta)
			}
		})
	}
}

func TestStatusJSON(t *testing.T) {
	r := manualRoom("launch")
	tk := waitingroom.Ticket{ID: waitingroom.NewTicketID(), Room: "launch", Position: 3, JoinedAt: t0}
	st := waitingroom.StatusOf(tk, r, waitingroom.Counters{State: waitingroom.StateOpen, Serving: 1}, 0, t0)
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"room":"launch","state":"waiting","position":3,"serving":1,"ahead":1,"eta_seconds":null,"queue_full":false,"progress":33}`
	if string(b) != want {
		t.Fatalf("JSON = %s, want %s", b, want)
	}
	r.Policy.RatePerMinute = 60
	st = waitingroom.StatusOf(tk, r, waitingroom.Counters{State: waitingroom.StateOpen, Policy: r.Policy, Serving: 1}, r.Policy.RatePerMinute, t0)
	b, _ = json.Marshal(st)
	if !strings.Contains(string(b), `"eta_seconds":2`) {
		t.Fatalf("JSON = %s, want eta_seconds 2", b)
	}
}

func TestETA(t *testing.T) {
	open := waitingroom.Counters{State: waitingroom.StateOpen, Policy: waitingroom.Policy{RatePerMinute: 30}}
	for n, want := range map[int64]int64{-5: 0, 0: 0, 1: 2, 2: 4, 31: 62} {
		if got := waitingroom.ETA(n, open, 30); got == nil || *got != want {
			t.Errorf("ETA(%d) at 30/min = %v, want %d", n, got, want)
		}
	}
	for _, st := range []waitingroom.State{waitingroom.StatePaused, waitingroom.StateClosed, waitingroom.StatePassthrough} {
		c := open
		c.State = st
		if got := waitingroom.ETA(3, c, 30); got != nil {
			t.Errorf("ETA in a %s room = %d, want none", st, *got)
		}
	}
	if got := waitingroom.ETA(3, waitingroom.Counters{State: waitingroom.StateOpen}, 0); got != nil {
		t.Errorf("ETA in a manual room = %d, want none", *got)
	}
}

func TestStatusOfLottery(t *testing.T) {
	r := rateRoom("sale", 60)
	c := waitingroom.Counters{State: waitingroom.StateOpen, Policy: r.Policy, Serving: 10, Tail: 110, Method: waitingroom.MethodRandom}
	st := waitingroom.StatusOf(waitingroom.Ticket{Room: "sale", Position: 100, JoinedAt: t0}, r, c, 60, t0)
	if st.State != waitingroom.VisitorWaiting || st.Ahead != 0 || st.ETASeconds == nil || *st.ETASeconds != 50 {
		t.Fatalf("lottery status %+v (eta %v)", st, st.ETASeconds)
	}
}

// The bar of the waiting page is progress since the visitor's own join:
// number 2 who found nobody ahead has come nowhere yet (serving ÷ position
// said 50 %), and number 100,000 with 1,000 still ahead of the 2,000 who
// were ahead at the join is half way (serving ÷ position said 99 %).
func TestStatusProgressSinceTheVisitorsJoin(t *testing.T) {
	r := manualRoom("launch")
	open := func(serving int64) waitingroom.Counters {
		return waitingroom.Counters{State: waitingroom.StateOpen, Serving: serving, Tail: 200_000}
	}
	for _, x := range []struct {
		position, servingAtJoin, serving int64
		want                             int
	}{
		{2, 1, 1, 0},
		{100_000, 97_999, 99_000, 50},
		{100_000, 97_999, 97_999, 0},
		{100_000, 97_999, 99_999, 99},
		{11, 0, 10, 90},     // a ticket of an earlier version: since the room began
		{5, 3, 1, 0},        // a counter behind the join (restored): no negative progress
		{100, 50, 100, 100}, // admitted
	} {
		tk := waitingroom.Ticket{ID: waitingroom.NewTicketID(), Room: "launch", Position: x.position, ServingAtJoin: x.servingAtJoin, JoinedAt: t0}
		if got := waitingroom.StatusOf(tk, r, open(x.serving), 0, t0).Progress; got != x.want {
			t.Errorf("position %d joined at %d, serving %d: progress %d, want %d", x.position, x.servingAtJoin, x.serving, got, x.want)
		}
	}
}
