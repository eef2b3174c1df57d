package waitingroom

import (
	"strconv"

	"github.com/redis/go-redis/v9"
)

// Every script touches only keys of one room, and every per-room key carries
// the hash tag {r:<room>}, so each script runs on one Redis Cluster slot.
//
// Scripts that need the room's state fail with NOSEED when the room hash is
// missing (Redis restarted without persistence, or flushed): the store then
// seeds the room again from its configuration and retries once, rather than
// guess a state.

// accrueLua is shared by the scripts that spend admission budget. The budget
// grows by rate × elapsed time while the room is open (so a paused room banks
// nothing), elapsed is capped so a leader handover admits no burst bigger than
// a few seconds' worth, and an idle room (serving = tail) keeps at most one
// second's worth, at least one visitor: enough for the safety net to let a
// quiet site's visitors straight through, never a bank for the next crowd.
const accrueLua = `
local function cap(rate)
  local c = rate / 60
  if c < 1 then c = 1 end
  return c
end
-- known, when given, is {last, budget} as far as the caller read them
-- already (budget may be missing).
local function accrue(h, state, rate, now, serving, tail, known)
  local last, budget
  if known then
    last, budget = known[1], known[2]
  else
    last = redis.call('HGET', h, 'last')
  end
  if last and not budget then budget = redis.call('HGET', h, 'budget') end
  if last then
    last = tonumber(last)
    budget = tonumber(budget or '0')
  else
    -- A room that never ran starts as an idle room does: one second's
    -- worth of budget for the safety net.
    last = now
    budget = cap(rate)
  end
  local elapsed = now - last
  if elapsed < 0 then elapsed = 0 end
  if elapsed > 5000 then elapsed = 5000 end
  if state == 'open' and rate > 0 then
    budget = budget + rate * elapsed / 60000
  else
    budget = 0
  end
  if serving >= tail and budget > cap(rate) then budget = cap(rate) end
  if now > last then last = now end
  return budget, last
end
-- free is how many more visitors a capacity-bound room may let in now:
-- max_active less the active sessions and less those the counter reached
-- who have not continued yet (each holds a slot for the claim window).
-- A room without max_active is unbounded (-1).
local function free(h, active, reached, now)
  local maxActive = tonumber(redis.call('HGET', h, 'max_active') or '0')
  if maxActive <= 0 then return -1 end
  redis.call('ZREMRANGEBYSCORE', active, '-inf', now)
  redis.call('ZREMRANGEBYSCORE', reached, '-inf', now)
  local f = maxActive - redis.call('ZCARD', active) - redis.call('ZCARD', reached)
  if f < 0 then f = 0 end
  return f
end
-- open ends a room's pre-queue once its opening time has come: it records
-- how many joined it and the key that draws their positions, and moves tail
-- past them so later arrivals queue behind them in arrival order.
-- The pre-queue's positions are base+1..base+n, base being tail at the
-- opening, so a room that already had visitors keeps them ahead. It
-- returns true while the room has not opened yet (a join then takes a
-- pre-queue number): once any script opened it, no later join can, even
-- one whose clock runs a little behind. known, when given, is {opened,
-- opens_at} as the caller read them already.
local function open(h, tailKey, now, drawKey, known)
  local opened, opensAt
  if known then
    opened, opensAt = known[1], known[2]
  else
    opened = redis.call('HEXISTS', h, 'opened') == 1
    opensAt = redis.call('HGET', h, 'opens_at')
  end
  if opened then return false end
  opensAt = tonumber(opensAt or '0')
  if opensAt <= 0 then return false end
  if now < opensAt then return true end
  local n = tonumber(redis.call('HGET', h, 'prequeue') or '0')
  local tail = tonumber(redis.call('GET', tailKey) or '0')
  -- The pre-queue's numbers are no joins of a second: the join counts
  -- (see the join's snapshot) start after them.
  redis.call('HSET', h, 'opened', now, 'draw_key', drawKey, 'base', tail, 'jt', tail + n, 'jpt', tail + n)
  redis.call('SET', tailKey, tail + n)
  return false
end
-- prequeueLive says whether position p belongs to a pre-queue that opened
-- less than two grace periods ago: its visitors' pages beat with position
-- 0 until the draw, so they must not be taken for silent at opening.
local function prequeueLive(h, p, now, grace)
  local v = redis.call('HMGET', h, 'opened', 'base', 'prequeue')
  if not v[1] then return false end
  local base, n = tonumber(v[2] or '0'), tonumber(v[3] or '0')
  return p > base and p <= base + n and now < tonumber(v[1]) + 2 * grace
end
-- hold records positions from (from, to] as reached, each holding a slot
-- until deadline.
local function hold(reached, from, to, deadline)
  for p = from + 1, to do
    redis.call('ZADD', reached, deadline, p)
  end
end
`

// keepLua extends a binding bucket's life to at least ttl ms and never
// shortens it (a relative TTL: the callers' clocks may be injected).
// canBind and countBind keep the count of a ticket's extra bindings (from
// its second request on): a ticket at its limit binds no more.
const keepLua = `
local function keepUntil(key, ttl)
  if redis.call('PTTL', key) < tonumber(ttl) then redis.call('PEXPIRE', key, ttl) end
end
local function canBind(counter, limit)
  limit = tonumber(limit)
  return limit <= 0 or tonumber(redis.call('GET', counter) or '0') < limit - 1
end
local function countBind(counter, limit, ttl)
  if tonumber(limit) <= 0 then return end
  redis.call('INCR', counter)
  keepUntil(counter, ttl)
end
`

// limitLua is the join limit: a generic cell rate algorithm per client,
// its state (the theoretical arrival time) in a hash per window, as
// milliseconds from the window's start. (Tenths of a second, rounded,
// would save two bytes a field but drift by up to 0.1 s a join: above
// 600 joins a minute the limit would never bind.)
// limited returns 0 and records the join, or how many ms to wait.
const limitLua = `
local function limited(cur, prev, client, now, interval, burst, ttl, start, window)
  if client == '' then return 0 end
  interval, burst, start = tonumber(interval), tonumber(burst), tonumber(start)
  local tat = 0
  local v = redis.call('HGET', cur, client)
  if v then
    tat = start + tonumber(v)
  else
    v = redis.call('HGET', prev, client)
    if v then tat = start - tonumber(window) + tonumber(v) end
  end
  if tat < now then tat = now end
  local over = tat + interval - now - burst * interval
  if over > 0 then return over end
  redis.call('HSET', cur, client, tat + interval - start)
  redis.call('PEXPIRE', cur, ttl)
  return 0
end
`

// restoreLua keeps a room's counters from going back when Redis lost writes
// (see counterfloor.go). restore raises the tail, serving and the pre-queue to
// what the calling instance remembers of the same epoch, and returns the
// room's epoch, or nil when the room hash is gone (the caller answers
// NOSEED, is seeded and calls again); then the room's fields epoch, lost
// and those named after gap, read in one call; then tail and serving as
// restore left them. The pre-queue's fields (prequeue, opened) are read
// only when there is something to restore of them: most rooms have none,
// and every field read costs every call. ARGV[i..i+8] is restoreArgs'
// block: epoch, tail floor, serving floor, pre-queue floor, opened ms,
// base, draw key, the server's run id when this call found Redis's scripts
// gone (as after a restart or a failover; "" otherwise), the instance's
// margin.
//
// With gap (joins only), a call that finds Redis lost data moves the tail
// on by a margin. Redis lost data when an instance that remembered the room
// had to seed it again (field lost), or when a call that found the scripts
// gone finds the server's run id changed since the room's last such call
// (field run): a restart or a failover. The margin is twice the joins
// Redis counted in the last second or two before (the tail less the join
// snapshot jpt, the tail at the start of the second before), or the
// instance's own estimate. The positions skipped, gap_from < p <= gap_to,
// may belong to visitors whose join Redis lost; the scheduler treats them
// as silent. Before a pre-queue opens, the margin goes to its numbers.
const restoreLua = `
local function restore(h, tk, sk, i, gap, ...)
  local v = redis.call('HMGET', h, 'epoch', 'lost', ...)
  local e = v[1]
  if not e then return nil end
  local tail = tonumber(redis.call('GET', tk) or '0')
  local serving = tonumber(redis.call('GET', sk) or '0')
  local raised = tail
  local lost = false
  local mine = e == ARGV[i]
  if mine then
    local tf, sf, pf = tonumber(ARGV[i+1]), tonumber(ARGV[i+2]), tonumber(ARGV[i+3])
    if tf > raised then raised = tf end
    if serving < sf then
      serving = sf
      redis.call('SET', sk, sf)
    end
    if pf > 0 and pf > tonumber(redis.call('HGET', h, 'prequeue') or '0') then
      redis.call('HSET', h, 'prequeue', pf)
    end
    if ARGV[i+4] ~= '0' and redis.call('HSETNX', h, 'opened', ARGV[i+4]) == 1 then
      redis.call('HSET', h, 'base', ARGV[i+5], 'draw_key', ARGV[i+6])
    end
  end
  if gap and (ARGV[i+7] ~= '' or v[2]) then
    if v[2] then
      redis.call('HDEL', h, 'lost')
      lost = true
    end
    if ARGV[i+7] ~= '' then
      -- Redis no longer knew this script: a restart, a failover, or just
      -- a first use. Only the server's run id tells them apart, and
      -- recording it here makes the first join of a new run the only one
      -- that leaves a gap, however many arrive at once.
      local was = redis.call('HGET', h, 'run')
      if was ~= ARGV[i+7] then
        redis.call('HSET', h, 'run', ARGV[i+7])
        if was then lost = true end
      end
    end
  end
  if lost then
    -- What was handed out in the second or two before the loss: the count
    -- then (the tail, or before opening the pre-queue's numbers), less the
    -- count at the start of the second before (see the join's snapshot).
    local unopened = redis.call('HEXISTS', h, 'opened') == 0 and tonumber(redis.call('HGET', h, 'opens_at') or '0') > 0
    local count = tail
    if unopened then count = tonumber(redis.call('HGET', h, 'prequeue') or '0') end
    local jpt = tonumber(redis.call('HGET', h, 'jpt') or count)
    local margin = 2 * math.max(0, count - jpt)
    if mine and tonumber(ARGV[i+8]) > margin then margin = tonumber(ARGV[i+8]) end
    if margin > 0 then
      if unopened then
        local n = redis.call('HINCRBY', h, 'prequeue', margin)
        redis.call('HSET', h, 'jt', n, 'jpt', n)
      else
        local from = raised
        local g = redis.call('HMGET', h, 'gap_from', 'gap_to')
        local gf, gt = tonumber(g[1] or '0'), tonumber(g[2] or '0')
        -- An earlier gap the counter has not passed yet: one gap.
        if gt > serving and gf < from then from = gf end
        raised = raised + margin
        -- The gap is no joins: the next estimate counts from after it.
        redis.call('HSET', h, 'gap_from', from, 'gap_to', raised, 'jt', raised, 'jpt', raised)
      end
    end
  end
  if raised > tail then redis.call('SET', tk, raised) end
  return e, v, raised, serving
end
`

// seedScript writes a room's configured state and policy unless the same
// configuration was seeded before, so an admin's change survives a rolling
// restart but an edited config file wins. A room without an epoch takes the
// one offered: the instance's remembered epoch when Redis lost the room
// (marked lost, so the next join leaves a gap), else a new one.
// KEYS: room hash, tail, serving. ARGV: seed digest, state, rate, max_active.
// ARGV (continued): opens_at ms, closes_at ms (0: none), method (fifo,
// random), epoch, "1" when the epoch is remembered rather than new.
// Returns the room's epoch.
var seedScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'seed') ~= ARGV[1] then
  redis.call('HSET', KEYS[1], 'seed', ARGV[1], 'state', ARGV[2], 'rate', ARGV[3], 'max_active', ARGV[4],
    'opens_at', ARGV[5], 'closes_at', ARGV[6], 'method', ARGV[7])
end
if redis.call('HSETNX', KEYS[1], 'epoch', ARGV[8]) == 1 and ARGV[9] == '1' then
  redis.call('HSET', KEYS[1], 'lost', 1)
end
redis.call('SETNX', KEYS[2], 0)
redis.call('SETNX', KEYS[3], 0)
return tonumber(redis.call('HGET', KEYS[1], 'epoch'))
`)

// markRunScript records the run id of the server that holds a room: a run
// id that changed says Redis restarted or failed over since the last
// record, and marks the room lost, which its next join turns into a gap
// (restoreLua). A room not seeded is left alone (its seed answers for it).
// KEYS: room hash. ARGV: run id. Returns 1 when the run id changed.
var markRunScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local was = redis.call('HGET', KEYS[1], 'run')
if was == ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'run', ARGV[1])
if was then redis.call('HSET', KEYS[1], 'lost', 1) end
return 1
`)

// infoScript returns INFO of the node that holds KEYS[1] (which it does not
// read): on a Cluster, the node of that room, whose run id tells whether it
// restarted or failed over.
var infoScript = redis.NewScript(`return redis.call('INFO')`)

// restoreScript only restores (restoreLua): the counter cache runs it when
// it finds Redis behind what this instance remembers.
// KEYS: room hash, tail, serving. ARGV: the restore block. Returns the epoch.
var restoreScript = redis.NewScript(restoreLua + `
local e = restore(KEYS[1], KEYS[2], KEYS[3], 1, false)
if not e then return redis.error_reply('NOSEED room not seeded') end
return tonumber(e)
`)

// joinScript hands out the next position and binds the request to the new
// ticket. The binding is checked first so a copied URL never costs a position.
// A request bound to the visitor's own previous ticket (expired, or its
// session over) moves to the new ticket.
//
// The safety net: when nobody is waiting and the room has admission to spare
// (rate budget, capacity), the new ticket is admitted at once.
// Before the room's opening time, a join takes the next pre-queue number
// instead of a position.
// KEYS: room hash, tail, serving, binding, active set, reached set, live
// (current window), returned (skipped visitors who came back wait ahead of
// a newcomer, so the safety net does not apply while there are any), join
// limit's current and previous window (limited joins only).
// ARGV: now ms, ticket id, binding bucket's ttl ms, previous
// ticket id or "", claim ms, draw key (used if this join opens the room),
// live key ttl ms (0: abandonment off), binding field,
// the restore block (restoreLua), then, only for a limited join, the client,
// the limit's interval ms, burst, window ttl ms, and the window's start ms
// and length ms.
// Returns {position, serving, epoch}, {-1} when the request is bound, {-2}
// when closed, {-3, pre-queue number, epoch} before opening, {-4, retry ms}
// when the client is over its join limit.
var joinScript = redis.NewScript(accrueLua + keepLua + limitLua + restoreLua + `
local bound = redis.call('HGET', KEYS[4], ARGV[8])
-- Bound to the new ticket itself: this join ran already and its reply was
-- lost (a read timeout that go-redis retries). It takes a new place; the
-- first is left to nobody, which the scheduler passes over as silent.
if bound and bound ~= ARGV[4] and bound ~= ARGV[2] then return {-1} end
local epoch, v, tail, serving = restore(KEYS[1], KEYS[2], KEYS[3], 9, true,
  'state', 'closes_at', 'js', 'opens_at', 'lw', 'last')
-- v: epoch, lost, state, closes_at, js, opens_at, lw, last.
if not epoch or not v[3] then return redis.error_reply('NOSEED room not seeded') end
epoch = tonumber(epoch)
local state = v[3]
if state == 'closed' then return {-2} end
local now = tonumber(ARGV[1])
local closesAt = tonumber(v[4] or '0')
if closesAt > 0 and now >= closesAt then return {-2} end
-- The join limit's arguments follow the restore block, when it applies.
if ARGV[18] then
  local wait = limited(KEYS[9], KEYS[10], ARGV[18], now, ARGV[19], ARGV[20], ARGV[21], ARGV[22], ARGV[23])
  if wait > 0 then return {-4, wait} end
end
local function bind()
  redis.call('HSET', KEYS[4], ARGV[8], ARGV[2])
  keepUntil(KEYS[4], ARGV[3])
end
-- The count handed out (the tail, or before opening the pre-queue's
-- numbers) at the start of each second, one write a second, not a join:
-- how many a loss of the last second or two may have cost (see restore).
local sec = math.floor(now / 1000)
local function snapshot(count)
  local js = tonumber(v[5] or '0')
  if sec <= js then return end
  local jt = count
  if sec == js + 1 then jt = tonumber(redis.call('HGET', KEYS[1], 'jt') or count) end
  redis.call('HSET', KEYS[1], 'js', sec, 'jt', count, 'jpt', jt)
end
local opensAt = tonumber(v[6] or '0')
if opensAt > 0 then
  local opened = redis.call('HEXISTS', KEYS[1], 'opened') == 1
  if open(KEYS[1], KEYS[2], now, ARGV[6], {opened, opensAt}) then
    local k = redis.call('HINCRBY', KEYS[1], 'prequeue', 1)
    snapshot(k - 1)
    bind()
    return {-3, k, epoch}
  end
  -- The room may just have opened, which moves tail past the pre-queue.
  if not opened then tail = tonumber(redis.call('GET', KEYS[2]) or '0') end
end
snapshot(tail)
-- Admission budget matters to a join only when nobody waits (the safety
-- net); behind a queue the scheduler accrues it on its own, and the join
-- neither reads nor writes it, unless the room has none yet (a new room, or
-- one whose budget Redis lost), which starts counting now.
local rate, factor, budget, last = 0, 1, nil, nil
local accrues = state ~= 'open' or serving >= tail or not v[8]
if accrues then
  -- The leader's throttle (origin health) applies to the safety net too.
  local p = redis.call('HMGET', KEYS[1], 'rate', 'factor')
  factor = tonumber(p[2] or '1')
  rate = tonumber(p[1] or '0') * factor
  budget, last = accrue(KEYS[1], state, rate, now, serving, tail, {v[8]})
end
tail = redis.call('INCR', KEYS[2])
local admit = false
if state == 'passthrough' then
  admit = true
elseif accrues and state == 'open' and serving == tail - 1 and redis.call('SCARD', KEYS[8]) == 0 and factor > 0 then
  local f = free(KEYS[1], KEYS[5], KEYS[6], now)
  if rate > 0 then
    admit = budget >= 1 and f ~= 0
  else
    admit = f > 0
  end
end
if admit and tail > serving then
  serving = tail
  redis.call('SET', KEYS[3], serving)
  if state == 'open' then
    hold(KEYS[6], tail - 1, tail, now + tonumber(ARGV[5]))
  end
end
if accrues then
  if admit and state == 'open' and rate > 0 then budget = budget - 1 end
  redis.call('HSET', KEYS[1], 'budget', budget, 'last', last)
end
bind()
if ARGV[7] ~= '0' then
  redis.call('SETBIT', KEYS[7], tail, 1)
  -- The window's bitmap gets its lifetime once, at its first join.
  if v[7] ~= KEYS[7] then
    redis.call('PEXPIRE', KEYS[7], ARGV[7])
    redis.call('HSET', KEYS[1], 'lw', KEYS[7])
  end
end
return {tail, serving, epoch}
`)

// bindScript binds a request to an existing ticket, or confirms the binding.
// A waiting ticket of another epoch than the room's is stale: Redis lost
// the room, and its position means nothing any more.
// KEYS: binding bucket, the ticket's login counter, room hash, tail,
// serving. ARGV: ticket id, bucket ttl ms, binding field, logins per ticket
// (0: any), counter ttl ms, the ticket's epoch ("0": do not check, as for
// an admitted ticket or one from before epochs), then the restore block.
// Returns 1 when bound to this ticket, 0 when bound to another, 2 when the
// ticket may bind no more requests, -1 stale.
var bindScript = redis.NewScript(keepLua + restoreLua + `
local e = restore(KEYS[3], KEYS[4], KEYS[5], 7, false)
if not e then return redis.error_reply('NOSEED room not seeded') end
if ARGV[6] ~= '0' and ARGV[6] ~= e then return -1 end
local b = redis.call('HGET', KEYS[1], ARGV[3])
if not b then
  if not canBind(KEYS[2], ARGV[4]) then return 2 end
  redis.call('HSET', KEYS[1], ARGV[3], ARGV[1])
  keepUntil(KEYS[1], ARGV[2])
  countBind(KEYS[2], ARGV[4], ARGV[5])
  return 1
end
if b == ARGV[1] then return 1 end
return 0
`)

// admitScript turns a waiting ticket into an admitted one, once, if the
// request is bound to it and the counter has reached it. An admitted ticket
// asking again gets its existing admission until its session ends.
// A request nobody has bound yet (an app that only polled the status JSON)
// is bound here: the first ticket to claim it wins.
// A ticket whose cookie says it was admitted, with a session still running,
// but whose record Redis lost, gets its record back: the cookie (sealed by
// Anteroom) proves the admission, so nobody admitted is sent back to wait.
// A waiting ticket of another epoch is stale and must join again.
// KEYS: room hash, serving, binding, ticket record, active set, tail,
// reached set, skipped, returned, drawn (lottery rooms), the ticket's login
// counter.
// ARGV: ticket id, position, joined ms, now ms, session ttl ms, record ttl
// ms, binding bucket's ttl ms, binding field, logins per ticket (0: any),
// counter ttl ms, the ticket's epoch ("0": unknown), when its cookie says
// it was admitted (ms, 0: not), then the restore block.
// Returns {1, admitted ms, ends ms}, {-1} bound elsewhere, {-2, serving} not
// yet, {-4} session over, {-5} skipped as abandoned (now queued to return),
// {-6} the ticket may bind no more requests, {-7} stale.
var admitScript = redis.NewScript(keepLua + restoreLua + `
local b = redis.call('HGET', KEYS[3], ARGV[8])
if not b then
  if not canBind(KEYS[11], ARGV[9]) then return {-6} end
  redis.call('HSET', KEYS[3], ARGV[8], ARGV[1])
  keepUntil(KEYS[3], ARGV[7])
  countBind(KEYS[11], ARGV[9], ARGV[10])
elseif b ~= ARGV[1] then
  return {-1}
end
local epoch = restore(KEYS[1], KEYS[6], KEYS[2], 13, false)
if not epoch then return redis.error_reply('NOSEED room not seeded') end
local now = tonumber(ARGV[4])
local rec = redis.call('HMGET', KEYS[4], 'admitted', 'ends')
local cookieAdmitted = tonumber(ARGV[12])
if not rec[1] and cookieAdmitted > 0 then
  rec = {ARGV[12], tostring(cookieAdmitted + tonumber(ARGV[5]))}
  if tonumber(rec[2]) > now then
    redis.call('HSET', KEYS[4], 'pos', ARGV[2], 'joined', ARGV[3], 'admitted', rec[1], 'ends', rec[2])
    redis.call('PEXPIRE', KEYS[4], ARGV[6])
    redis.call('ZADD', KEYS[5], rec[2], ARGV[1])
  end
end
if rec[1] then
  if tonumber(rec[2]) <= now then
    -- The session is over: free the request for the visitor's next ticket.
    redis.call('HDEL', KEYS[3], ARGV[8])
    return {-4}
  end
  return {1, tonumber(rec[1]), tonumber(rec[2])}
end
if ARGV[11] ~= '0' and ARGV[11] ~= epoch then return {-7} end
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return redis.error_reply('NOSEED room not seeded') end
local pos = tonumber(ARGV[2])
local serving = tonumber(redis.call('GET', KEYS[2]) or '0')
if pos <= serving and redis.call('GETBIT', KEYS[8], pos) == 1 then
  -- Skipped while silent, and back: let in at the next tick.
  redis.call('SADD', KEYS[9], pos)
  return {-5}
end
if pos > serving and redis.call('GETBIT', KEYS[10], pos) == 1 then
  -- Drawn in a lottery room: in, whatever the counter says.
elseif pos > serving then
  if state ~= 'passthrough' then return {-2, serving} end
  -- Passthrough lets the ticket in; the counter follows it, but never
  -- past tail (which a store that lost its data may have reset).
  local tail = tonumber(redis.call('GET', KEYS[6]) or '0')
  local to = math.min(pos, tail)
  if to > serving then redis.call('SET', KEYS[2], to) end
end
-- In a capacity-bound room, a visitor whose claim window ran out gave
-- their slot back: they get in only if one is free now, else at the
-- next tick like a returning skipped visitor.
local maxActive = tonumber(redis.call('HGET', KEYS[1], 'max_active') or '0')
if maxActive > 0 and state ~= 'passthrough' and not redis.call('ZSCORE', KEYS[7], pos) then
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
  redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', now)
  if redis.call('ZCARD', KEYS[5]) + redis.call('ZCARD', KEYS[7]) >= maxActive then
    redis.call('SETBIT', KEYS[8], pos, 1)
    redis.call('SADD', KEYS[9], pos)
    return {-5}
  end
end
local ends = now + tonumber(ARGV[5])
redis.call('HSET', KEYS[4], 'pos', pos, 'joined', ARGV[3], 'admitted', now, 'ends', ends)
redis.call('PEXPIRE', KEYS[4], ARGV[6])
redis.call('ZADD', KEYS[5], ends, ARGV[1])
redis.call('ZREM', KEYS[7], pos)
return {1, now, ends}
`)

// endSessionScript ends an admitted ticket's session now and frees its slot.
// KEYS: ticket record, active set. ARGV: ticket id, now ms.
var endSessionScript = redis.NewScript(`
local ended = 0
local ends = redis.call('HGET', KEYS[1], 'ends')
if ends and tonumber(ends) > tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'ends', ARGV[2])
  ended = 1
end
redis.call('ZREM', KEYS[2], ARGV[1])
return ended
`)

// advanceScript moves serving forward by n people, never past tail. An
// advance counts people, not positions: the gap a loss of writes left
// (restoreLua, gap_from < p <= gap_to) holds nobody as far as anyone can
// tell, so it is passed over without spending the count, as the tick
// passes it over without spending admissions, and its positions are
// marked skipped like the tick's: a visitor whose join Redis lost and who
// comes back is let in at the next tick rather than for free.
// KEYS: serving, tail, room hash, skipped. ARGV: n, then the restore block.
// Returns {serving, tail, epoch}.
var advanceScript = redis.NewScript(restoreLua + `
local epoch, v = restore(KEYS[3], KEYS[2], KEYS[1], 2, false, 'gap_from', 'gap_to')
if not epoch then return redis.error_reply('NOSEED room not seeded') end
local serving = tonumber(redis.call('GET', KEYS[1]) or '0')
local tail = tonumber(redis.call('GET', KEYS[2]) or '0')
local n = tonumber(ARGV[1])
local gapFrom, gapTo = tonumber(v[3] or '0'), tonumber(v[4] or '0')
local next = serving + n
if gapTo > serving and next > gapFrom then
  -- The people before the gap, then the rest of n after it.
  next = math.max(serving, gapTo) + n - math.max(0, gapFrom - serving)
  if next > tail then next = tail end
  for p = math.max(serving, gapFrom) + 1, math.min(gapTo, next) do
    redis.call('SETBIT', KEYS[4], p, 1)
  end
end
if next > tail then next = tail end
if next > serving then
  redis.call('SET', KEYS[1], next)
  serving = next
end
return {serving, tail, tonumber(epoch)}
`)

// tickScript is one step of the room's scheduler. It runs only for the
// lease's owner (fencing: a paused process that lost its lease cannot
// advance), renews the lease, prunes ended sessions and lets in as many as
// the budget and the room's free capacity allow.
// With abandonment on, the tick lets in first the skipped visitors who came
// back, then walks the queue from serving: a position that was live in the
// current or previous heartbeat window is admitted, a silent one is marked
// skipped and passed over without using budget or capacity, so what is
// admitted counts live people. The walk is bounded per tick.
// KEYS: lease, room hash, serving, tail, active set, reached set, live
// (current window), skipped, returned, live (previous window), drawn
// (lottery rooms).
// Positions in a gap left after Redis lost data (restoreLua) count as
// silent even in a room without abandonment: they are passed over without
// costing admissions.
// ARGV: owner, now ms, lease ttl ms, claim ms, throttle factor (0..1), draw
// key (used if this tick opens the room), abandonment grace ms (0: off),
// random seed, then the restore block, then the room's lanes (laneTickLua:
// their count, the standard lane's weight, each lane's weight; their
// queues follow the keys above).
// Then the event pre-queue's drawn order (shuffle.go): the draws done as
// the caller read them, and the next positions in the order.
// Returns {0} when another instance leads, else {1, admitted, serving,
// tail, skipped, epoch, 1 while an event's pre-queue is being let in in
// its drawn order, then for a room with lanes the admissions of the
// standard lane and of each lane}.
var tickScript = redis.NewScript(accrueLua + restoreLua + laneTickLua + `
local nl = tonumber(ARGV[18] or '0')
local laneCounts = {}
local shuf = nil
do
  local sh = redis.call('HMGET', KEYS[2], 'sh_lo', 'sh_hi', 'sh_n', 'sh_done')
  if sh[1] then
    shuf = {lo = tonumber(sh[1]), hi = tonumber(sh[2]), n = tonumber(sh[3]), done = tonumber(sh[4] or '0')}
  end
end
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return {0} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
local epoch = restore(KEYS[2], KEYS[4], KEYS[3], 9, false)
local state = redis.call('HGET', KEYS[2], 'state')
if not epoch or not state then return redis.error_reply('NOSEED room not seeded') end
local factor = tonumber(ARGV[5])
local rate = tonumber(redis.call('HGET', KEYS[2], 'rate') or '0') * factor
local now = tonumber(ARGV[2])
local claim = tonumber(ARGV[4])
if open(KEYS[2], KEYS[4], now, ARGV[6]) then factor = 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
local serving = tonumber(redis.call('GET', KEYS[3]) or '0')
local tail = tonumber(redis.call('GET', KEYS[4]) or '0')
local budget, last = accrue(KEYS[2], state, rate, now, serving, tail)
local admitted, skipped = 0, 0
local next = serving
if state == 'passthrough' then
  admitted = tail - serving
  next = tail
elseif state == 'open' and factor > 0 then
  if shuf and serving >= shuf.hi then
    -- The counter passed the whole pre-queue (an operator's advance).
    redis.call('HDEL', KEYS[2], 'sh_lo', 'sh_hi', 'sh_n', 'sh_done', 'sh_key')
    shuf = nil
  end
  if shuf and serving < shuf.lo then
    -- Those who waited before the pre-queue go first, in their order.
    tail = math.min(tail, shuf.lo)
  end
  local f = free(KEYS[2], KEYS[5], KEYS[6], now)
  local full = false
  local want = 0
  if rate > 0 then
    want = math.floor(budget)
    if f >= 0 and want > f then want = f; full = true end
  elseif f >= 0 then
    want = f
  end
  local grace = tonumber(ARGV[7])
  local abandon = grace > 0
  local g = redis.call('HMGET', KEYS[2], 'gap_from', 'gap_to')
  local gapFrom, gapTo = tonumber(g[1] or '0'), tonumber(g[2] or '0')
  local function live(p)
    if not abandon then return p <= gapFrom or p > gapTo end
    return redis.call('GETBIT', KEYS[7], p) == 1 or redis.call('GETBIT', KEYS[10], p) == 1
      or prequeueLive(KEYS[2], p, now, grace)
  end
  local function let(p)
    admitted = admitted + 1
    if f >= 0 then redis.call('ZADD', KEYS[6], now + claim, p) end
  end
  local function admitShuffled()
    local s0 = 20 + nl
    if ARGV[s0] ~= tostring(shuf.done) then return end
    local i = s0 + 1
    while admitted < want and ARGV[i] do
      local p = tonumber(ARGV[i])
      i = i + 1
      shuf.done = shuf.done + 1
      -- (A position the counter passed, by an operator's advance, is in.)
      if p > next and redis.call('GETBIT', KEYS[11], p) == 0 then
        if live(p) then
          redis.call('SETBIT', KEYS[11], p, 1)
          let(p)
        else
          -- Silent: passed over as the walk would, let in when back.
          redis.call('SETBIT', KEYS[8], p, 1)
          skipped = skipped + 1
        end
      end
    end
    redis.call('HSET', KEYS[2], 'sh_done', shuf.done)
  end
  local function admitLanes()
    local lanes = tickLanes(nl, KEYS, ARGV, next, tail, live, let, want, admitted)
    next, skipped = lanes.next, skipped + lanes.skipped
    laneCounts = lanes.counts
  end
  do
    while admitted < want do
      local p = redis.call('SPOP', KEYS[9])
      if not p then break end
      p = tonumber(p)
      if redis.call('GETBIT', KEYS[8], p) == 1 then
        redis.call('SETBIT', KEYS[8], p, 0)
        let(p)
      end
    end
  end
  if shuf and next >= shuf.lo then
    -- An event's pre-queue, in its drawn order (shuffleLua).
    admitShuffled()
    if shuf.done >= shuf.n then
      if next < shuf.hi then next = shuf.hi end
      redis.call('HDEL', KEYS[2], 'sh_lo', 'sh_hi', 'sh_n', 'sh_done', 'sh_key')
      shuf = nil
    end
  elseif nl > 0 then
    admitLanes()
  elseif redis.call('HGET', KEYS[2], 'method') == 'random' then
    -- A lottery: each admission goes to a visitor drawn at random among
    -- those waiting (live ones, with abandonment). Park-Miller from a
    -- seed the caller drew, as scripts must not rely on Lua's random.
    local seed = tonumber(ARGV[8]) % 2147483646 + 1
    local span = tail - serving
    local tries = 0
    while admitted < want and span > 0 and tries < want * 20 + 64 do
      tries = tries + 1
      seed = (seed * 16807) % 2147483647
      local p = serving + 1 + (seed % span)
      if redis.call('GETBIT', KEYS[11], p) == 0 and live(p) then
        redis.call('SETBIT', KEYS[11], p, 1)
        let(p)
      end
    end
    -- Where the draw keeps missing (few left), take the first undrawn.
    local p, scanned = serving, 0
    while admitted < want and p < tail and scanned < 10000 do
      p, scanned = p + 1, scanned + 1
      if redis.call('GETBIT', KEYS[11], p) == 0 and live(p) then
        redis.call('SETBIT', KEYS[11], p, 1)
        let(p)
      end
    end
    -- serving moves over the decided front of the queue: drawn, or
    -- silent and so skipped.
    scanned = 0
    while next < tail and scanned < 10000 do
      local q = next + 1
      if redis.call('GETBIT', KEYS[11], q) == 1 then
        next = q
      elseif not live(q) then
        redis.call('SETBIT', KEYS[8], q, 1)
        skipped = skipped + 1
        next = q
      else
        break
      end
      scanned = scanned + 1
    end
  elseif abandon or gapTo > serving then
    local scanned = 0
    while admitted < want and next < tail and scanned < 10000 do
      next = next + 1
      scanned = scanned + 1
      if live(next) then
        let(next)
      else
        redis.call('SETBIT', KEYS[8], next, 1)
        skipped = skipped + 1
      end
    end
  else
    admitted = math.max(0, math.min(want, tail - serving))
    next = serving + admitted
    if f >= 0 then hold(KEYS[6], serving, next, now + claim) end
  end
  if full then
    -- Capacity held the room back: the rate banks nothing meanwhile,
    -- or freeing capacity would release a burst.
    budget = budget - math.floor(budget)
  elseif rate > 0 then
    budget = budget - admitted
  end
end
if next > serving then
  serving = next
  redis.call('SET', KEYS[3], serving)
end
tail = tonumber(redis.call('GET', KEYS[4]) or '0')
if serving >= tail and budget > cap(rate) then budget = cap(rate) end
redis.call('HSET', KEYS[2], 'budget', budget, 'last', last, 'factor', ARGV[5])
local out = {1, admitted, serving, tail, skipped, tonumber(epoch), shuf and 1 or 0}
for i = 1, nl + 1 do out[7 + i] = laneCounts[i] or 0 end
return out
`)

// heartbeatScript records that visitors' pages are alive, in one write per
// room per flush. A skipped visitor who is back joins the returned set, to
// be let in at the next tick.
// KEYS: live (current window), skipped, returned. ARGV: ttl ms, positions…
var heartbeatScript = redis.NewScript(`
for i = 2, #ARGV do
  local p = tonumber(ARGV[i])
  redis.call('SETBIT', KEYS[1], p, 1)
  if redis.call('GETBIT', KEYS[2], p) == 1 then redis.call('SADD', KEYS[3], p) end
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return #ARGV - 1
`)

// releaseScript gives a lease up if this owner still holds it.
// KEYS: lease. ARGV: owner.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// setRoomScript changes fields of a seeded room hash.
// KEYS: room hash, tail, serving. ARGV: field, value, ..., then the
// restore block (restoreArgCount values).
var setRoomScript = redis.NewScript(restoreLua + `
local n = #ARGV - ` + strconv.Itoa(restoreArgCount) + `
if not restore(KEYS[1], KEYS[2], KEYS[3], n + 1, false) then return redis.error_reply('NOSEED room not seeded') end
for i = 1, n, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
`)
