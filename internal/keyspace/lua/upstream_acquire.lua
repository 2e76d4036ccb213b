-- upstream_acquire: one call to a limited upstream host asks for a slot.
-- Everything is on Redis's clock (TIME), so the processes' clocks do not
-- matter. In order, the call is refused while the upstream's Retry-After
-- pause lasts, while its leases (calls in flight, expired ones dropped
-- first) reach the concurrency limit (the adaptive one, when kept, which
-- never exceeds it), or while the rate's generic cell rate algorithm
-- (GCRA, as in rate_limit) has no token; otherwise it takes a lease and
-- the token. A refused call is given a time to come back: the upstream's
-- next free reservation, so that the calls held back return spread out at
-- about the pace they can be served (at most ARGV[8] ms ahead), and the
-- job is noted as held until then.
--
-- KEYS[1] leases     P:{up:<host>}:leases   holders scored by lease expiry (ms)
-- KEYS[2] rate TAT   P:{up:<host>}:tat      the GCRA's theoretical arrival time (µs)
-- KEYS[3] pause      P:{up:<host>}:pause    paused until (ms), from a Retry-After
-- KEYS[4] state      P:{up:<host>}:state    hash: limit (adaptive), lat (ms), base (ms), dec (ms), next (ms)
-- KEYS[5] held       P:{up:<host>}:held     jobs held back, scored by when they come back (ms)
--
-- ARGV[1] holder   ARGV[2] lease (ms)   ARGV[3] concurrency (0: none)
-- ARGV[4] rate per second (0: none)   ARGV[5] burst   ARGV[6] adaptive (0/1)
-- ARGV[7] job ID (for the held set)   ARGV[8] the furthest a reservation goes (ms)
--
-- Returns {0, in use, limit} when the lease is taken, or
-- {reason, in use, limit, wait ms} when refused: reason 1 concurrency,
-- 2 rate, 3 paused.
local t = redis.call('TIME')
local nowus = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now = math.floor(nowus / 1000)
local conc = tonumber(ARGV[3])
local rate = tonumber(ARGV[4])

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

-- refuse notes the job as held and gives it a time to come back: the
-- next reservation, step ms after the last one handed out, no earlier
-- than min ms from now.
local function refuse(reason, min, step)
  local next = tonumber(redis.call('HGET', KEYS[4], 'next')) or 0
  local at = math.max(next, now + min) + step
  at = math.min(at, now + tonumber(ARGV[8]))
  redis.call('HSET', KEYS[4], 'next', at)
  redis.call('PEXPIRE', KEYS[4], 86400000)
  redis.call('ZADD', KEYS[5], at, ARGV[7])
  redis.call('PEXPIRE', KEYS[5], at - now + 60000)
  return {reason, inuse, limit, at - now}
end

local pause = tonumber(redis.call('GET', KEYS[3]))
if pause and pause > now then
  return refuse(3, pause - now, 0)
end
if conc > 0 and inuse >= limit then
  -- A slot frees about every call time / limit.
  local lat = tonumber(redis.call('HGET', KEYS[4], 'lat')) or 100
  return refuse(1, 0, math.max(1, math.floor(lat / limit)))
end
local tat
if rate > 0 then
  local interval = 1000000 / rate
  local tolerance = interval * tonumber(ARGV[5])
  local debt = 0
  local stored = redis.call('GET', KEYS[2])
  if stored then
    debt = math.max(tonumber(stored) - nowus, 0)
  end
  local after = debt + interval
  if after > tolerance then
    return refuse(2, math.ceil((after - tolerance) / 1000), math.ceil(interval / 1000))
  end
  redis.call('SET', KEYS[2], string.format('%.17g', nowus + after), 'PX', math.ceil(after / 1000) + 1)
end
if conc > 0 then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) + 1000)
  inuse = inuse + 1
end
redis.call('ZREM', KEYS[5], ARGV[7])
return {0, inuse, limit}
