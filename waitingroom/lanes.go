package waitingroom

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Priority lanes. A room may have lanes besides its standard queue: a
// visitor who enters a priority code moves into the code's lane and keeps
// their place in the order of arrival (their position, which is their join
// time's order). The scheduler shares each tick's admissions among the
// lanes that have someone waiting, by weight (smooth weighted round robin,
// so over any run of admissions each lane's share is within one of its
// weight's). Nobody is renumbered: a lane's visitor keeps their position,
// and the standard counter passes over the positions a lane admitted
// without spending an admission on them, so a standard visitor's number
// never grows and nobody behind them is put ahead by anything but a code.
//
// In Redis (all under the room's hash tag): a sorted set per lane of the
// positions waiting in it (score = position), the drawn bitmap marks the
// positions a lane admitted (admitScript lets those in whatever the
// counter says, as for a lottery), one hash per code (by the SHA-256 of
// its normalised text, never the text) and one hash of issued and used
// counts per lane.

// StandardLane is the id of the lane of visitors without a code: the room's
// ordinary queue, weight 1 unless the room's lanes say otherwise.
const StandardLane = "standard"

// Lane is one priority lane of a room.
type Lane struct {
	// ID names the lane in codes, the admin API and Redis keys.
	ID string `json:"id"`
	// Weight is the lane's share of admissions while it has visitors: a
	// lane of weight 3 beside a standard lane of 1 gets three of every
	// four.
	Weight int `json:"weight"`
}

// laneIDPattern restricts lane ids as room ids are: they name Redis keys.
var laneIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// MaxLaneWeight bounds a lane's weight.
const MaxLaneWeight = 1000

// ValidateLanes reports lanes no room can run, naming the lane by index
// ("lanes[1].weight: …") so that a configuration or an API can prefix its
// own path.
func ValidateLanes(lanes []Lane, method Method) error {
	seen := map[string]bool{}
	for i, l := range lanes {
		p := fmt.Sprintf("lanes[%d]", i)
		switch {
		case !laneIDPattern.MatchString(l.ID):
			return fmt.Errorf("%s.id: must match %s, got %q", p, laneIDPattern, l.ID)
		case seen[l.ID]:
			return fmt.Errorf("%s.id: %q is listed twice", p, l.ID)
		case l.Weight < 1 || l.Weight > MaxLaneWeight:
			return fmt.Errorf("%s.weight: must be between 1 and %d, got %d", p, MaxLaneWeight, l.Weight)
		}
		seen[l.ID] = true
	}
	if len(lanes) > 0 && method == MethodRandom {
		// A lottery has no order for a lane to keep.
		return errors.New("lanes: a room with lanes must queue fifo, not random")
	}
	return nil
}

// priority lists the room's lanes other than the standard one, in their
// configured order, and the standard lane's weight.
func (r Room) priority() ([]Lane, int) {
	std := 1
	var out []Lane
	for _, l := range r.Lanes {
		if l.ID == StandardLane {
			std = l.Weight
			continue
		}
		out = append(out, l)
	}
	return out, std
}

// HasLane reports whether lane is one of the room's priority lanes (not the
// standard one).
func (r Room) HasLane(lane string) bool {
	p, _ := r.priority()
	return slices.ContainsFunc(p, func(l Lane) bool { return l.ID == lane })
}

func (k roomKeys) lane(id string) string  { return k.tag + "lane:" + id }
func (k roomKeys) code(sum string) string { return k.tag + "code:" + sum }
func (k roomKeys) codeStats() string      { return k.tag + "codes" }

// laneArgs are the tick's extra keys (each lane's queue) and arguments
// (count, standard weight, each lane's weight).
func (s *Store) laneArgs(r Room) ([]string, []any) {
	lanes, std := r.priority()
	if len(lanes) == 0 {
		return nil, []any{0, 1}
	}
	k := s.keys(r.ID)
	keys := make([]string, len(lanes))
	args := []any{len(lanes), std}
	for i, l := range lanes {
		keys[i] = k.lane(l.ID)
		args = append(args, l.Weight)
	}
	return keys, args
}

// laneTickLua is the tick's share of admissions among lanes (see
// tickScript: the lanes' queues are KEYS[12…], their count ARGV[18], the
// standard weight ARGV[19], the lanes' weights ARGV[20…]). Each admission
// goes to the lane whose running credit is highest among those with
// someone waiting (smooth weighted round robin: each such lane gains its
// weight, the chosen one loses the sum); the credits persist in the room
// hash (field wrr) so that the shares hold across ticks and leaders.
// The standard lane admits the next position the counter reaches that no
// lane admitted already (passing those for free, and silent ones as
// skipped); a position still queued in a lane that the counter reaches is
// admitted by the counter like anyone else's there (it is their turn by
// arrival anyway) and leaves its lane.
const laneTickLua = `
local function tickLanes(nl, KEYS, ARGV, next, tail, live, let, want, admitted)
  local w = {tonumber(ARGV[19])}
  for i = 1, nl do w[i + 1] = tonumber(ARGV[19 + i]) end
  local cur = {}
  local saved = redis.call('HGET', KEYS[2], 'wrr')
  if saved then
    local ok, v = pcall(cjson.decode, saved)
    if ok and type(v) == 'table' then cur = v end
  end
  if #cur ~= nl + 1 then cur = {} end
  for i = 1, nl + 1 do cur[i] = cur[i] or 0 end
  local counts, skipped, scanned = {}, 0, 0
  for i = 1, nl + 1 do counts[i] = 0 end
  local function stdPeek()
    while next < tail and scanned < 10000 do
      local q = next + 1
      scanned = scanned + 1
      if redis.call('GETBIT', KEYS[11], q) == 1 then
        next = q
      elseif not live(q) then
        redis.call('SETBIT', KEYS[8], q, 1)
        for i = 1, nl do redis.call('ZREM', KEYS[11 + i], q) end
        skipped = skipped + 1
        next = q
      else
        return q
      end
    end
    return nil
  end
  local function lanePeek(i)
    while true do
      local top = redis.call('ZRANGE', KEYS[11 + i], 0, 0)
      if not top[1] then return nil end
      local p = tonumber(top[1])
      if p > next then return p end
      -- The counter passed it already (an operator's advance).
      redis.call('ZREM', KEYS[11 + i], top[1])
    end
  end
  while admitted < want do
    local heads, total, best = {}, 0, nil
    local sp = stdPeek()
    if sp then
      cur[1] = cur[1] + w[1]
      total, best = w[1], 1
    end
    for i = 1, nl do
      heads[i] = lanePeek(i)
      if heads[i] then
        cur[i + 1] = cur[i + 1] + w[i + 1]
        total = total + w[i + 1]
        if not best or cur[i + 1] > cur[best] then best = i + 1 end
      end
    end
    if not best then break end
    cur[best] = cur[best] - total
    counts[best] = counts[best] + 1
    admitted = admitted + 1
    if best == 1 then
      next = sp
      for i = 1, nl do redis.call('ZREM', KEYS[11 + i], sp) end
      let(sp)
    else
      local p = heads[best - 1]
      redis.call('ZREM', KEYS[10 + best], p)
      redis.call('SETBIT', KEYS[11], p, 1)
      let(p)
    end
  end
  -- The front the lanes decided already costs the counter nothing.
  while next < tail and scanned < 10000 and redis.call('GETBIT', KEYS[11], next + 1) == 1 do
    next = next + 1
    scanned = scanned + 1
  end
  redis.call('HSET', KEYS[2], 'wrr', cjson.encode(cur))
  return {next = next, skipped = skipped, counts = counts}
end
`

// Errors of a priority code, which the visitor is told apart. A code that
// fails spends nothing.
var (
	// ErrNoLanes is returned for a room without priority lanes.
	ErrNoLanes = errors.New("room has no priority lanes")
	// ErrCodeUnknown is returned for a code that was never issued for
	// the room (or was mistyped).
	ErrCodeUnknown = errors.New("unknown priority code")
	// ErrCodeExpired is returned for a code past its expiry.
	ErrCodeExpired = errors.New("priority code expired")
	// ErrCodeUsedUp is returned for a code whose uses are all spent.
	ErrCodeUsedUp = errors.New("priority code used up")
	// ErrCodeTooEarly is returned while the visitor is in a pre-queue (the
	// room's, or an event's until its drawn order has let them in): a
	// lane cannot move anyone ahead of the draw.
	ErrCodeTooEarly = errors.New("priority codes apply once the room has opened")
	// ErrCodeNotNeeded is returned for a visitor the counter or a lane
	// reached already, or who was admitted.
	ErrCodeNotNeeded = errors.New("visitor is admitted already")
	// ErrInLane is returned for a visitor already in a lane (any lane):
	// a second code would spend a use for nothing.
	ErrInLane = errors.New("visitor is in a priority lane already")
)

// CodeSpec is what IssueCodes creates.
type CodeSpec struct {
	// Count is how many codes, 1 to MaxCodesPerIssue.
	Count int
	// Lane is the priority lane a code moves its visitor into.
	Lane string
	// Uses is how many visitors each code may move (at least 1).
	Uses int
	// ExpiresAt ends the codes' validity (zero: they never expire).
	ExpiresAt time.Time
}

// MaxCodesPerIssue bounds one IssueCodes call, so that one request's
// answer and pipeline stay small.
const MaxCodesPerIssue = 10000

// MaxCodeUses bounds one code's uses.
const MaxCodeUses = 1_000_000

// codeAlphabet is Crockford's base32: no I, L, O or U, so a code read
// aloud or copied by hand survives (normaliseCode maps the look-alikes).
const codeAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// codeLength is a code's characters: 12 × 5 = 60 random bits, shown as
// three groups of four.
const codeLength = 12

// newCode draws a random code, grouped as XXXX-XXXX-XXXX.
func newCode() string {
	var b [codeLength]byte
	_, _ = rand.Read(b[:])
	out := make([]byte, 0, codeLength+2)
	for i, c := range b {
		if i > 0 && i%4 == 0 {
			out = append(out, '-')
		}
		out = append(out, codeAlphabet[c&31])
	}
	return string(out)
}

// normaliseCode is the code as stored: upper case, without separators
// and spaces, look-alike letters mapped as Crockford's base32 says.
// It returns "" for text that cannot be a code.
func normaliseCode(s string) string {
	out := make([]byte, 0, codeLength)
	for _, c := range []byte(strings.ToUpper(s)) {
		switch {
		case c == '-' || c == ' ' || c == '\t':
			continue
		case c == 'O':
			c = '0'
		case c == 'I' || c == 'L':
			c = '1'
		}
		if strings.IndexByte(codeAlphabet, c) < 0 || len(out) == codeLength {
			return ""
		}
		out = append(out, c)
	}
	if len(out) != codeLength {
		return ""
	}
	return string(out)
}

// codeSum is what Redis keeps of a code: its SHA-256. The codes are 60
// random bits, so the hash needs no key to resist guessing.
func codeSum(normalised string) string {
	sum := sha256.Sum256([]byte(normalised))
	return hex.EncodeToString(sum[:16])
}

// IssueCodes creates spec.Count random codes for room and returns them:
// the only time they are seen, for Redis keeps only their hashes.
func (s *Store) IssueCodes(ctx context.Context, room string, spec CodeSpec) ([]string, error) {
	r, err := s.room(room)
	if err != nil {
		return nil, err
	}
	if len(r.Lanes) == 0 {
		return nil, ErrNoLanes
	}
	switch {
	case spec.Count < 1 || spec.Count > MaxCodesPerIssue:
		return nil, specErrorf("count", "must be between 1 and %d, got %d", MaxCodesPerIssue, spec.Count)
	case !r.HasLane(spec.Lane):
		return nil, specErrorf("lane", "%q is not a priority lane of room %q", spec.Lane, room)
	case spec.Uses < 1 || spec.Uses > MaxCodeUses:
		return nil, specErrorf("uses", "must be between 1 and %d, got %d", MaxCodeUses, spec.Uses)
	case !spec.ExpiresAt.IsZero() && !spec.ExpiresAt.After(s.now()):
		return nil, specErrorf("expires_at", "must be in the future, got %s", spec.ExpiresAt.Format(time.RFC3339))
	}
	k := s.keys(room)
	codes := make([]string, spec.Count)
	pipe := s.rdb.Pipeline()
	expires := unixMilli(spec.ExpiresAt)
	for i := range codes {
		codes[i] = newCode()
		key := k.code(codeSum(normaliseCode(codes[i])))
		pipe.HSet(ctx, key, "lane", spec.Lane, "uses", spec.Uses, "expires", expires)
		if expires > 0 {
			// Redis forgets the code a day after it expired; until then
			// the visitor is told "expired", not "unknown".
			pipe.PExpire(ctx, key, spec.ExpiresAt.Sub(s.now())+24*time.Hour)
		}
	}
	pipe.HIncrBy(ctx, k.codeStats(), "issued:"+spec.Lane, int64(spec.Count))
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("issue codes for room %q: %w", room, err)
	}
	return codes, nil
}

// redeemScript spends one use of a code and moves a waiting visitor into
// its lane, atomically: however many instances redeem one code at once,
// it is spent exactly as many times as it has uses.
// A visitor of an event's pre-queue is refused until its order is drawn
// and let in: a lane cannot move anyone ahead of the draw, so the use
// would be spent for nothing.
// KEYS: code, serving, drawn, code stats, room hash, each lane's queue.
// ARGV: position, now ms, then each lane's id (in the keys' order), then
// each lane's field of uses in the code stats (the script builds no
// string: see internal/testredis's Cluster rules).
// Returns {1, lane}, {-1} unknown, {-2} expired, {-3} used up, {-4}
// reached already, {-5, lane} in a lane already, {-6} the code's lane is
// no longer one of the room's, {-7} in an event's pre-queue.
var redeemScript = redis.NewScript(`
local c = redis.call('HMGET', KEYS[1], 'lane', 'uses', 'expires')
if not c[1] then return {-1} end
local now, pos = tonumber(ARGV[2]), tonumber(ARGV[1])
local expires = tonumber(c[3] or '0')
if expires > 0 and now >= expires then return {-2} end
if tonumber(c[2] or '0') <= 0 then return {-3} end
local serving = tonumber(redis.call('GET', KEYS[2]) or '0')
if pos <= serving or redis.call('GETBIT', KEYS[3], pos) == 1 then return {-4} end
local pq = redis.call('HMGET', KEYS[5], 'pq_event', 'pq_lo', 'sh_lo', 'sh_hi')
if (pq[1] and pos > tonumber(pq[2] or '0')) or (pq[3] and pos > tonumber(pq[3]) and pos <= tonumber(pq[4] or '0')) then
  return {-7}
end
local into = nil
local nl = #KEYS - 5
for i = 6, #KEYS do
  if redis.call('ZSCORE', KEYS[i], pos) then return {-5, ARGV[i - 3]} end
  if ARGV[i - 3] == c[1] then into = i end
end
if not into then return {-6} end
redis.call('HINCRBY', KEYS[1], 'uses', -1)
redis.call('ZADD', KEYS[into], pos, pos)
redis.call('HINCRBY', KEYS[4], ARGV[into - 3 + nl], 1)
return {1, c[1]}
`)

// Redeem spends one use of code for the waiting ticket t and moves it into
// the code's lane, keeping its position. It returns the lane. A code that
// fails (ErrCodeUnknown, ErrCodeExpired, ErrCodeUsedUp, ErrInLane,
// ErrCodeNotNeeded, ErrCodeTooEarly, ErrNoLanes) spends nothing and
// changes nothing.
func (s *Store) Redeem(ctx context.Context, t Ticket, code string) (string, error) {
	r, err := s.room(t.Room)
	if err != nil {
		return "", err
	}
	lanes, _ := r.priority()
	switch {
	case len(lanes) == 0:
		return "", ErrNoLanes
	case t.Admitted():
		return "", ErrCodeNotNeeded
	case t.Position == 0:
		c, err := s.Status(ctx, t.Room)
		if err != nil {
			return "", err
		}
		if t = c.Resolve(t); t.Position == 0 {
			return "", ErrCodeTooEarly
		}
	}
	n := normaliseCode(code)
	if n == "" {
		return "", ErrCodeUnknown
	}
	k := s.keys(t.Room)
	keys := []string{k.code(codeSum(n)), k.serving, k.drawn, k.codeStats(), k.hash}
	args := []any{t.Position, s.now().UnixMilli()}
	for _, l := range lanes {
		keys = append(keys, k.lane(l.ID))
		args = append(args, l.ID)
	}
	for _, l := range lanes {
		args = append(args, "used:"+l.ID)
	}
	res, err := redeemScript.Run(ctx, s.rdb, keys, args...).Slice()
	if err != nil {
		return "", fmt.Errorf("redeem a code in room %q: %w", t.Room, err)
	}
	st, _ := res[0].(int64)
	lane := ""
	if len(res) > 1 {
		lane, _ = res[1].(string)
	}
	switch st {
	case 1:
		return lane, nil
	case -1, -6:
		return "", ErrCodeUnknown
	case -2:
		return "", ErrCodeExpired
	case -3:
		return "", ErrCodeUsedUp
	case -4:
		return "", ErrCodeNotNeeded
	case -5:
		return lane, ErrInLane
	case -7:
		return "", ErrCodeTooEarly
	}
	return "", fmt.Errorf("redeem a code in room %q: unexpected answer %v", t.Room, res)
}

// LaneCodes is one lane's codes as the admin API and dashboard count them.
type LaneCodes struct {
	Lane   string `json:"lane"`
	Weight int    `json:"weight"`
	// Issued counts the codes created for the lane, Used the uses spent.
	Issued int64 `json:"codes_issued"`
	Used   int64 `json:"codes_used"`
}

// CodeStats counts each priority lane's codes issued and uses spent.
func (s *Store) CodeStats(ctx context.Context, room string) ([]LaneCodes, error) {
	r, err := s.room(room)
	if err != nil {
		return nil, err
	}
	lanes, _ := r.priority()
	if len(lanes) == 0 {
		return nil, nil
	}
	m, err := s.rdb.HGetAll(ctx, s.keys(room).codeStats()).Result()
	if err != nil {
		return nil, fmt.Errorf("read code counts of room %q: %w", room, err)
	}
	out := make([]LaneCodes, len(lanes))
	for i, l := range lanes {
		out[i] = LaneCodes{Lane: l.ID, Weight: l.Weight}
		out[i].Issued, _ = strconv.ParseInt(m["issued:"+l.ID], 10, 64)
		out[i].Used, _ = strconv.ParseInt(m["used:"+l.ID], 10, 64)
	}
	return out, nil
}

// laneCacheMax bounds the positions of one lane that a counters read
// fetches (so that a poll can tell a lane visitor their place without
// Redis); beyond it a lane's visitors are told the lane's size instead.
const laneCacheMax = 10000

// laneView is what a counters read saw of a room's lanes. Counters holds a
// pointer to it, so Counters stays comparable; it is never changed after
// the read.
type laneView struct {
	lanes    []Lane
	standard int
	// queued[i] is lane i's waiting positions, ascending (at most
	// laneCacheMax); sizes[i] how many wait in it.
	queued [][]int64
	sizes  []int64
}

func (v *laneView) equal(o *laneView) bool {
	if v == nil || o == nil {
		return v == o
	}
	if !slices.Equal(v.sizes, o.sizes) || !slices.Equal(v.lanes, o.lanes) || v.standard != o.standard {
		return false
	}
	for i := range v.queued {
		if !slices.Equal(v.queued[i], o.queued[i]) {
			return false
		}
	}
	return true
}

// queueLanes queues the reads of room's lanes on pipe; the function it
// returns assembles them (nil for a room without lanes).
func (s *Store) queueLanes(ctx context.Context, pipe redis.Pipeliner, room string) func() *laneView {
	r := s.cur.Load().rooms[room]
	lanes, std := r.priority()
	if len(lanes) == 0 {
		return func() *laneView { return nil }
	}
	k := s.keys(room)
	ranges := make([]*redis.StringSliceCmd, len(lanes))
	cards := make([]*redis.IntCmd, len(lanes))
	for i, l := range lanes {
		ranges[i] = pipe.ZRange(ctx, k.lane(l.ID), 0, laneCacheMax-1)
		cards[i] = pipe.ZCard(ctx, k.lane(l.ID))
	}
	return func() *laneView {
		v := &laneView{lanes: lanes, standard: std, queued: make([][]int64, len(lanes)), sizes: make([]int64, len(lanes))}
		for i := range lanes {
			for _, m := range ranges[i].Val() {
				if p, err := strconv.ParseInt(m, 10, 64); err == nil {
					v.queued[i] = append(v.queued[i], p)
				}
			}
			v.sizes[i] = cards[i].Val()
		}
		return v
	}
}

// LaneStatus is one lane as the counters saw it.
type LaneStatus struct {
	ID      string `json:"id"`
	Weight  int    `json:"weight"`
	Waiting int64  `json:"waiting"`
}

// Lanes lists the room's priority lanes with how many wait in each (nil
// for a room without lanes). The standard lane is not listed: its
// visitors are Waiting less the lanes'.
func (c Counters) Lanes() []LaneStatus {
	if c.lanes == nil {
		return nil
	}
	out := make([]LaneStatus, len(c.lanes.lanes))
	for i, l := range c.lanes.lanes {
		out[i] = LaneStatus{ID: l.ID, Weight: l.Weight, Waiting: c.lanes.sizes[i]}
	}
	return out
}

// laneOf finds position in the lanes: the lane's index and how many of
// its visitors are ahead, or -1 for a standard visitor.
func (c Counters) laneOf(position int64) (int, int64) {
	if c.lanes == nil {
		return -1, 0
	}
	for i, q := range c.lanes.queued {
		if j, found := slices.BinarySearch(q, position); found {
			return i, int64(j)
		}
	}
	return -1, 0
}

// LaneOf names the lane position waits in, "" for the standard queue.
func (c Counters) LaneOf(position int64) string {
	if i, _ := c.laneOf(position); i >= 0 {
		return c.lanes.lanes[i].ID
	}
	return ""
}

// laneShare is the share of admissions lane i gets (-1: the standard lane)
// while the lanes with someone waiting now keep waiting: its weight over
// the sum of theirs.
func (c Counters) laneShare(i int) float64 {
	if c.lanes == nil {
		return 1
	}
	var mine, total int
	standardWaits := c.Waiting() > sum(c.lanes.sizes)
	if standardWaits || i < 0 {
		total += c.lanes.standard
	}
	if i < 0 {
		mine = c.lanes.standard
	}
	for j, l := range c.lanes.lanes {
		if c.lanes.sizes[j] > 0 || j == i {
			total += l.Weight
		}
		if j == i {
			mine = l.Weight
		}
	}
	if total == 0 {
		return 1
	}
	return float64(mine) / float64(total)
}

func sum(xs []int64) int64 {
	var n int64
	for _, x := range xs {
		n += x
	}
	return n
}

// SpecError is a request the store refuses as written (codes, events),
// naming the field at fault: the caller's mistake, not the store's.
type SpecError struct {
	// Key is the field, as the admin API spells it.
	Key string
	// Problem says what is wrong with it.
	Problem string
}

func (e *SpecError) Error() string { return e.Key + ": " + e.Problem }

func specErrorf(key, format string, args ...any) error {
	return &SpecError{Key: key, Problem: fmt.Sprintf(format, args...)}
}
