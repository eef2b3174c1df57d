package waitingroom

import "github.com/redis/go-redis/v9"

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
local function accrue(h, state, rate, now, serving, tail)
  local last = redis.call('HGET', h, 'last')
  local budget
  if last then
    last = tonumber(last)
    budget = tonumber(redis.call('HGET', h, 'budget') or '0')
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
-- one whose clock runs a little behind.
local function open(h, tailKey, now, drawKey)
  if redis.call('HEXISTS', h, 'opened') == 1 then return false end
  local opensAt = tonumber(redis.call('HGET', h, 'opens_at') or '0')
  if opensAt <= 0 then return false end
  if now < opensAt then return true end
  local n = tonumber(redis.call('HGET', h, 'prequeue') or '0')
  local tail = tonumber(redis.call('GET', tailKey) or '0')
  redis.call('HSET', h, 'opened', now, 'draw_key', drawKey, 'base', tail)
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
// its state (the theoretical arrival time) in a hash per window, as tenths
// of a second from the window's start, rounded down (a client may come
// back up to 0.1 s early): a short value keeps the field small.
// limited returns 0 and records the join, or how many ms to wait.
const limitLua = `
local function limited(cur, prev, client, now, interval, burst, ttl, start, window)
  if client == '' then return 0 end
  interval, burst, start = tonumber(interval), tonumber(burst), tonumber(start)
  local tat = 0
  local v = redis.call('HGET', cur, client)
  if v then
    tat = start + tonumber(v) * 100
  else
    v = redis.call('HGET', prev, client)
    if v then tat = start - tonumber(window) + tonumber(v) * 100 end
  end
  if tat < now then tat = now end
  local over = tat + interval - now - burst * interval
  if over > 0 then return over end
  redis.call('HSET', cur, client, math.floor((tat + interval - start) / 100))
  redis.call('PEXPIRE', cur, ttl)
  return 0
end
`

// seedScript writes a room's configured state and policy unless the same
// configuration was seeded before, so an admin's change survives a rolling
// restart but an edited config file wins.
// KEYS: room hash, tail, serving. ARGV: seed digest, state, rate, max_active.
// ARGV (continued): opens_at ms, closes_at ms (0: none), method (fifo, random).
var seedScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'seed') ~= ARGV[1] then
  redis.call('HSET', KEYS[1], 'seed', ARGV[1], 'state', ARGV[2], 'rate', ARGV[3], 'max_active', ARGV[4],
    'opens_at', ARGV[5], 'closes_at', ARGV[6], 'method', ARGV[7])
end
redis.call('SETNX', KEYS[2], 0)
redis.call('SETNX', KEYS[3], 0)
return 1
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
// limit's current and previous window.
// ARGV: now ms, ticket id, binding bucket's ttl ms, previous
// ticket id or "", claim ms, draw key (used if this join opens the room),
// live key ttl ms (0: abandonment off), binding field, client ("": not
// limited), limit interval ms, burst, limit window ttl ms, the window's
// start ms and length ms.
// Returns {position, serving}, {-1} when the request is bound, {-2} when
// closed, {-3, pre-queue number} before opening, {-4, retry ms} when the
// client is over its join limit.
var joinScript = redis.NewScript(accrueLua + keepLua + limitLua + `
local bound = redis.call('HGET', KEYS[4], ARGV[8])
if bound and bound ~= ARGV[4] then return {-1} end
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return redis.error_reply('NOSEED room not seeded') end
if state == 'closed' then return {-2} end
local now = tonumber(ARGV[1])
local closesAt = tonumber(redis.call('HGET', KEYS[1], 'closes_at') or '0')
if closesAt > 0 and now >= closesAt then return {-2} end
local wait = limited(KEYS[9], KEYS[10], ARGV[9], now, ARGV[10], ARGV[11], ARGV[12], ARGV[13], ARGV[14])
if wait > 0 then return {-4, wait} end
if open(KEYS[1], KEYS[2], now, ARGV[6]) then
  local k = redis.call('HINCRBY', KEYS[1], 'prequeue', 1)
  redis.call('HSET', KEYS[4], ARGV[8], ARGV[2])
  keepUntil(KEYS[4], ARGV[3])
  return {-3, k}
end
-- The leader's throttle (origin health) applies to the safety net too.
local rate = tonumber(redis.call('HGET', KEYS[1], 'rate') or '0') * tonumber(redis.call('HGET', KEYS[1], 'factor') or '1')
local serving = tonumber(redis.call('GET', KEYS[3]) or '0')
local tail = tonumber(redis.call('GET', KEYS[2]) or '0')
local budget, last = accrue(KEYS[1], state, rate, now, serving, tail)
tail = redis.call('INCR', KEYS[2])
local admit = false
if state == 'passthrough' then
  admit = true
elseif state == 'open' and serving == tail - 1 and redis.call('SCARD', KEYS[8]) == 0
    and tonumber(redis.call('HGET', KEYS[1], 'factor') or '1') > 0 then
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
if admit and state == 'open' and rate > 0 then budget = budget - 1 end
redis.call('HSET', KEYS[1], 'budget', budget, 'last', last)
redis.call('HSET', KEYS[4], ARGV[8], ARGV[2])
keepUntil(KEYS[4], ARGV[3])
if ARGV[7] ~= '0' then
  redis.call('SETBIT', KEYS[7], tail, 1)
  redis.call('PEXPIRE', KEYS[7], ARGV[7])
end
return {tail, serving}
`)

// bindScript binds a request to an existing ticket, or confirms the binding.
// KEYS: binding bucket, the ticket's login counter. ARGV: ticket id, bucket
// ttl ms, binding field, logins per ticket (0: any), counter ttl ms.
// Returns 1 when bound to this ticket, 0 when bound to another, 2 when the
// ticket may bind no more requests.
var bindScript = redis.NewScript(keepLua + `
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
// KEYS: room hash, serving, binding, ticket record, active set, tail,
// reached set, skipped, returned, drawn (lottery rooms), the ticket's login
// counter.
// ARGV: ticket id, position, joined ms, now ms, session ttl ms, record ttl
// ms, binding bucket's ttl ms, binding field, logins per ticket (0: any),
// counter ttl ms.
// Returns {1, admitted ms, ends ms}, {-1} bound elsewhere, {-2, serving} not
// yet, {-4} session over, {-5} skipped as abandoned (now queued to return),
// {-6} the ticket may bind no more requests.
var admitScript = redis.NewScript(keepLua + `
local b = redis.call('HGET', KEYS[3], ARGV[8])
if not b then
  if not canBind(KEYS[11], ARGV[9]) then return {-6} end
  redis.call('HSET', KEYS[3], ARGV[8], ARGV[1])
  keepUntil(KEYS[3], ARGV[7])
  countBind(KEYS[11], ARGV[9], ARGV[10])
elseif b ~= ARGV[1] then
  return {-1}
end
local now = tonumber(ARGV[4])
local rec = redis.call('HMGET', KEYS[4], 'admitted', 'ends')
if rec[1] then
  if tonumber(rec[2]) <= now then
    -- The session is over: free the request for the visitor's next ticket.
    redis.call('HDEL', KEYS[3], ARGV[8])
    return {-4}
  end
  return {1, tonumber(rec[1]), tonumber(rec[2])}
end
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

// advanceScript moves serving forward by n, never past tail.
// KEYS: serving, tail. ARGV: n. Returns {serving, tail}.
var advanceScript = redis.NewScript(`
local serving = tonumber(redis.call('GET', KEYS[1]) or '0')
local tail = tonumber(redis.call('GET', KEYS[2]) or '0')
local next = serving + tonumber(ARGV[1])
if next > tail then next = tail end
if next > serving then
  redis.call('SET', KEYS[1], next)
  serving = next
end
return {serving, tail}
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
// ARGV: owner, now ms, lease ttl ms, claim ms, throttle factor (0..1), draw
// key (used if this tick opens the room), abandonment grace ms (0: off),
// random seed.
// Returns {0} when another instance leads, else {1, admitted, serving,
// tail, skipped}.
var tickScript = redis.NewScript(accrueLua + `
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return {0} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
local state = redis.call('HGET', KEYS[2], 'state')
if not state then return redis.error_reply('NOSEED room not seeded') end
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
  local function live(p)
    return not abandon or redis.call('GETBIT', KEYS[7], p) == 1 or redis.call('GETBIT', KEYS[10], p) == 1
      or prequeueLive(KEYS[2], p, now, grace)
  end
  local function let(p)
    admitted = admitted + 1
    if f >= 0 then redis.call('ZADD', KEYS[6], now + claim, p) end
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
  if redis.call('HGET', KEYS[2], 'method') == 'random' then
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
  elseif abandon then
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
if serving >= tail and budget > cap(rate) then budget = cap(rate) end
redis.call('HSET', KEYS[2], 'budget', budget, 'last', last, 'factor', ARGV[5])
return {1, admitted, serving, tail, skipped}
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
// KEYS: room hash. ARGV: field, value, ...
var setRoomScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('NOSEED room not seeded') end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
`)
