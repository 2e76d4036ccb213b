-- upstream_acquire: one call to a limited upstream host asks for a slot.
-- Everything is on Redis's clock (TIME), so the processes' clocks do not
-- matter. In order, the call is refused while the upstream's Retry-After
-- pause lasts; while the leases (calls in flight, expired ones dropped
-- first) reach the concurrency limit (the adaptive one, when kept, never
-- above it); or while the rate's generic cell rate algorithm (GCRA, as in
-- rate_limit) has no token. Otherwise it takes a lease and the token: the
-- limits are checked against the calls as they are made.
--
-- A refused call is given a time to come back, and the job is noted in
-- the held set until then: after the jobs held already, one call time
-- divided by the limit apart (concurrency) or one token apart (rate,
-- from the next token), so that the calls held back come back spread out
-- at about the pace they can be served; at the end of a pause. Refused
-- again before its time, a job is told the same time. None is sent
-- further ahead than ARGV[8] ms.
--
-- KEYS[1] leases     P:{up:<host>}:leases   holders scored by lease expiry (ms)
-- KEYS[2] rate TAT   P:{up:<host>}:tat      the GCRA's theoretical arrival time (µs)
-- KEYS[3] pause      P:{up:<host>}:pause    paused until (ms), from a Retry-After
-- KEYS[4] state      P:{up:<host>}:state    hash: limit (adaptive), lat (ms), base (ms), dec (ms)
-- KEYS[5] held       P:{up:<host>}:held     jobs held back, scored by when they come back (ms)
--
-- ARGV[1] holder   ARGV[2] lease (ms)   ARGV[3] concurrency (0: none)
-- ARGV[4] rate per second (0: none)   ARGV[5] burst   ARGV[6] adaptive (0/1)
-- ARGV[7] the job (its task's key)   ARGV[8] the furthest a job is sent ahead (ms)
--
-- Returns {0, in use, limit} when the lease is taken, or
-- {reason, in use, limit, wait ms} when refused: reason 1 concurrency,
-- 2 rate, 3 paused.
local t = redis.call('TIME')
local nowus = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now = math.floor(nowus / 1000)
local conc = tonumber(ARGV[3])
local rate = tonumber(ARGV[4])
local furthest = tonumber(ARGV[8])

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now - 60000)
local inuse = redis.call('ZCARD', KEYS[1])
local limit = conc
if conc > 0 and ARGV[6] == '1' then
  local l = tonumber(redis.call('HGET', KEYS[4], 'limit'))
  if l then
    limit = math.max(1, math.min(conc, math.floor(l)))
  end
end

-- hold notes the job as held until at (ms).
local function hold(reason, at)
  redis.call('ZADD', KEYS[5], at, ARGV[7])
  redis.call('PEXPIRE', KEYS[5], math.ceil(at - now) + 60000)
  return {reason, inuse, limit, math.ceil(at - now)}
end

-- reserve holds the job at the first free place after min ms from now,
-- places being step ms apart and taken by the jobs held already (those
-- still to come back): a job back late from an earlier hold, or new, takes
-- a place left free rather than one behind every other.
local function reserve(reason, min, step)
  local ahead = 0
  if step > 0 then
    for _ = 1, 16 do
      -- (+1: times are whole ms from microseconds, so a time held a moment
      -- earlier for the same token may round one ms later than this one)
      local n = redis.call('ZCOUNT', KEYS[5], '(' .. now, now + min + ahead * step + 1)
      if n <= ahead then
        break
      end
      ahead = n
    end
  end
  return hold(reason, math.min(now + min + ahead * step, now + furthest))
end

local pause = tonumber(redis.call('GET', KEYS[3]))
if pause and pause > now then
  return reserve(3, pause - now, 0)
end
local mine = tonumber(redis.call('ZSCORE', KEYS[5], ARGV[7]))
if conc > 0 and inuse >= limit then
  if mine and mine > now then
    -- Early for the time it was given, and no slot yet: the same time.
    return {1, inuse, limit, math.ceil(mine - now)}
  end
  -- A slot frees about every call time / limit.
  local lat = tonumber(redis.call('HGET', KEYS[4], 'lat')) or 100
  local step = math.max(1, math.floor(lat / limit))
  return reserve(1, step, step)
end
if rate > 0 then
  local interval = 1000000 / rate
  local tolerance = interval * tonumber(ARGV[5])
  local tat = math.max(tonumber(redis.call('GET', KEYS[2]) or 0), nowus)
  local after = tat - nowus + interval
  if after > tolerance then
    if mine and mine > now then
      return {2, inuse, limit, math.ceil(mine - now)}
    end
    -- The next token comes in (after - tolerance); those held already
    -- take the ones after it.
    return reserve(2, math.ceil((after - tolerance) / 1000), math.ceil(interval / 1000))
  end
  redis.call('SET', KEYS[2], string.format('%.17g', tat + interval), 'PX', math.ceil(after / 1000) + 1)
end
if conc > 0 then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) + 1000)
  inuse = inuse + 1
end
redis.call('ZREM', KEYS[5], ARGV[7])
return {0, inuse, limit}
