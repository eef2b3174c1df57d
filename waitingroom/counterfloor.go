package waitingroom

import (
	"crypto/rand"
	"encoding/binary"
	"log/slog"
	"strconv"
	"sync"
	"time"
)

// Redis can lose writes: with appendfsync everysec the last second or two
// before a crash, with no persistence (or a lost append-only file)
// everything. Visitors keep their positions in their cookies, so a tail
// that went back would hand the same positions out again, and a serving
// counter that went back would send admitted visitors back to waiting.
//
// So every instance keeps, per room, a floor under each counter: the highest
// value it has seen (counterFloor, below), and every script that reads or
// moves them first raises them back to the calling instance's floors
// ("never backwards"). The floors live in the instance's process only; they
// are not a store of their own, only what makes Redis's counters monotonic. As long
// as the instances survive, Redis losing data costs no position and moves
// no counter back.
//
// One instance cannot know what another handed out just before the crash
// (it refreshes every half second), so the first join after Redis lost data
// also leaves a gap: the tail jumps by about two seconds' worth of joins,
// estimated from counters Redis persisted and from the instance's own
// samples. Positions in the gap belong to nobody, or to a visitor whose
// join Redis lost; the scheduler passes over them as it does over silent
// visitors, so they cost no admissions, and a real visitor there is let in
// when they come back.
//
// When every instance restarted as well, nobody remembers: the room starts
// a new epoch, a random number kept in the room hash and in each ticket. A
// waiting ticket of another epoch joins again (at the back); an admitted one
// is still honoured, as its cookie proves the admission.

// epochBits bounds an epoch to what a Lua number and a Redis integer reply
// carry exactly.
const epochBits = 48

// newEpoch draws a random non-zero epoch.
func newEpoch() int64 {
	var b [8]byte
	for {
		_, _ = rand.Read(b[:])
		if e := int64(binary.BigEndian.Uint64(b[:]) >> (64 - epochBits)); e != 0 {
			return e
		}
	}
}

// marginWindow is how far back the instance's own estimate of the join rate
// looks, and marginFactor how much it pads it. appendfsync everysec loses
// up to two seconds of writes in the worst case.
const (
	marginWindow   = 2 * time.Second
	marginFactor   = 2
	sampleInterval = 250 * time.Millisecond
	samples        = 16
)

// counterFloor is what this instance has seen of one room's shared
// counters: the floor under each, so that no answer and no script call of
// this instance lets them go back when Redis loses writes, plus samples of
// the join rate for the gap a loss leaves (see marginLocked). One per room,
// created with the Store and never dropped.
type counterFloor struct {
	mu sync.Mutex
	floorState
}

// floorState is counterFloor's state, which a new epoch resets as a whole:
// floors of another epoch belong to tickets that must join again.
type floorState struct {
	epoch int64
	// epochArg is epoch as the scripts compare it, kept to spare a
	// conversion per call.
	epochArg string
	tail     int64
	serving  int64
	prequeue int64
	// opened, base and drawKey are the room's pre-queue opening, once seen.
	opened, base int64
	drawKey      string
	// recent samples what was handed out (see sampleLocked) on the
	// store's clock, for the join rate.
	recent [samples]struct{ at, tail int64 }
	next   int
}

// seen folds counters read from Redis (or returned by a script) into the
// floors. Counters of another epoch replace it: Redis lost the room and
// another instance started afresh, so what this one remembers belongs to
// tickets that must join again.
func (m *counterFloor) seen(room string, now time.Time, epoch, tail, serving int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seenLocked(room, now, epoch, tail, serving)
}

func (m *counterFloor) seenLocked(room string, now time.Time, epoch, tail, serving int64) {
	if epoch == 0 {
		return
	}
	if m.epoch != epoch {
		if m.epoch != 0 {
			slog.Warn("redis lost the room and nobody remembered it: a new epoch starts, waiting visitors join again",
				"room", room, "tail", m.tail, "serving", m.serving)
		}
		m.floorState = floorState{epoch: epoch, epochArg: strconv.FormatInt(epoch, 10)}
	}
	m.tail = max(m.tail, tail)
	m.serving = max(m.serving, serving)
	m.sampleLocked(now)
}

// sampleLocked records what the room has handed out, for the join rate:
// positions, and before the opening pre-queue numbers too (a pre-queue's
// numbers become positions at the opening, so they are not counted twice
// after it).
func (m *counterFloor) sampleLocked(now time.Time) {
	count := m.tail
	if m.opened == 0 {
		count += m.prequeue
	}
	ms := now.UnixMilli()
	last := m.recent[(m.next+samples-1)%samples]
	if last.at == 0 || ms-last.at >= sampleInterval.Milliseconds() {
		m.recent[m.next] = struct{ at, tail int64 }{ms, count}
		m.next = (m.next + 1) % samples
	} else if count > last.tail {
		m.recent[(m.next+samples-1)%samples].tail = count
	}
}

// seenPreQueue folds a pre-queue number a join handed out.
func (m *counterFloor) seenPreQueue(room string, now time.Time, epoch, number int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seenLocked(room, now, epoch, 0, 0)
	if m.epoch == epoch && number > m.prequeue {
		m.prequeue = number
		m.sampleLocked(now)
	}
}

// seenCounters folds a full read of the room (the cache's refresh).
func (m *counterFloor) seenCounters(room string, now time.Time, c Counters) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seenLocked(room, now, c.Epoch, c.Tail, c.Serving)
	if m.epoch != c.Epoch {
		return
	}
	m.prequeue = max(m.prequeue, c.PreQueue)
	if c.Opened && m.opened == 0 {
		m.opened, m.base, m.drawKey = c.openedAt, c.preQueueBase, c.drawKey
	}
}

// raise returns c with its counters raised to what this instance
// remembers of the same epoch: what a page shows never goes back.
func (m *counterFloor) raise(c Counters) Counters {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c.Epoch == m.epoch && m.epoch != 0 {
		c.Tail = max(c.Tail, m.tail)
		c.Serving = max(c.Serving, m.serving)
	}
	return c
}

// behind reports whether Redis holds less of the room than this instance
// saw: the room is gone, or its counters of the same epoch went back.
func (m *counterFloor) behind(c Counters) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.epoch == 0 {
		return false
	}
	if c.Epoch == 0 {
		return true
	}
	return c.Epoch == m.epoch && (c.Tail < m.tail || c.Serving < m.serving || c.PreQueue < m.prequeue || (m.opened != 0 && !c.Opened))
}

// marginLocked is the instance's estimate of how many positions the other
// instances may have handed out that it has not seen: the joins it saw over
// the last marginWindow of samples, padded by marginFactor.
func (m *counterFloor) marginLocked() int64 {
	newest := m.recent[(m.next+samples-1)%samples]
	if newest.at == 0 {
		return 0
	}
	oldest := newest
	for i := 1; i < samples; i++ {
		s := m.recent[(m.next+samples-1-i)%samples]
		if s.at == 0 || newest.at-s.at > marginWindow.Milliseconds() {
			break
		}
		oldest = s
	}
	return marginFactor * (newest.tail - oldest.tail)
}

// restoreArgs is the ARGV block every counter script ends with (see
// restoreLua): the epoch this instance remembers, its floors, the
// pre-queue's opening, the server's run id when this call found Redis's
// scripts gone ("" otherwise), and the margin to leave if Redis lost data.
func (m *counterFloor) restoreArgs(run string) []any {
	m.mu.Lock()
	defer m.mu.Unlock()
	return []any{m.epochArg, m.tail, m.serving, m.prequeue, m.opened, m.base, m.drawKey, run, m.marginLocked()}
}

// restoreArgCount is len(restoreArgs(…)).
const restoreArgCount = 9

// seedEpoch is the epoch a seed offers a room that has none: the one this
// instance remembers ("1": Redis lost the room), else a new one ("0").
func (m *counterFloor) seedEpoch() (int64, string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.epoch != 0 {
		return m.epoch, "1"
	}
	return newEpoch(), "0"
}
