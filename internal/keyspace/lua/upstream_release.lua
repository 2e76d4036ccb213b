-- upstream_release: a call to a limited upstream host is over. Its lease
-- goes; the call's time feeds the host's latency figures; a Retry-After
-- from the upstream pauses every call to it until then; and with
-- adaptive concurrency the limit grows by 1/limit after a call answered
-- no slower than 1.5 times the baseline, and halves after an overload
-- (429, 503, a timeout), at most once per baseline call time.
--
-- A slot given back while jobs are held back for later (their time still
-- to come), no pause lasts and the rate has a token names the first
-- ARGV[7] of them, earliest first, so that the worker can bring one
-- forward to take it: held jobs go back to their queue with times in
-- whole seconds, and would otherwise leave the slot empty until the next
-- second.
--
-- KEYS[1] leases   P:{up:<host>}:leases
-- KEYS[2] pause    P:{up:<host>}:pause
-- KEYS[3] state    P:{up:<host>}:state   (see upstream_acquire)
-- KEYS[4] held     P:{up:<host>}:held    (see upstream_acquire)
-- KEYS[5] rate TAT P:{up:<host>}:tat     (see upstream_acquire)
--
-- ARGV[1] holder   ARGV[2] call time (ms; -1: no call was made)
-- ARGV[3] outcome: ok, slow (answered, not an overload), overload
-- ARGV[4] Retry-After (ms; 0: none)   ARGV[5] concurrency   ARGV[6] adaptive (0/1)
-- ARGV[7] how many held jobs to name (0: none)
-- ARGV[8] rate per second (0: none)   ARGV[9] burst
--
-- Returns {the adaptive limit ×1000 (0 when not adaptive), 1 when this
-- call set a pause, the held jobs named...}.
local t = redis.call('TIME')
local nowus = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now = math.floor(nowus / 1000)
redis.call('ZREM', KEYS[1], ARGV[1])
-- noToken: the rate (as in upstream_acquire) has no token now.
local function noToken()
  local rate = tonumber(ARGV[8])
  if rate == 0 then
    return false
  end
  local interval = 1000000 / rate
  local tat = math.max(tonumber(redis.call('GET', KEYS[5]) or 0), nowus)
  return tat - nowus + interval > interval * tonumber(ARGV[9])
end

-- waiting names the held jobs that may take the free slot: none while a
-- pause lasts, every slot is taken again (limit: the concurrency kept),
-- or the rate has no token.
local function waiting(out, limit)
  local n = tonumber(ARGV[7])
  if n == 0 then
    return out
  end
  local held = redis.call('ZRANGEBYSCORE', KEYS[4], '(' .. now, '+inf', 'LIMIT', 0, n)
  if #held == 0 or (tonumber(redis.call('GET', KEYS[2])) or 0) > now
      or redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf') >= math.floor(limit) or noToken() then
    return out
  end
  for _, m in ipairs(held) do
    out[#out + 1] = m
  end
  return out
end

local conc = tonumber(ARGV[5])
local ms = tonumber(ARGV[2])
if ms < 0 then
  local limit = conc
  if ARGV[6] == '1' then
    limit = tonumber(redis.call('HGET', KEYS[3], 'limit')) or conc
  end
  return waiting({0, 0}, limit)
end
local paused = 0
local ra = tonumber(ARGV[4])
if ra > 0 then
  local cur = tonumber(redis.call('GET', KEYS[2])) or 0
  if now + ra > cur then
    redis.call('SET', KEYS[2], now + ra, 'PX', ra)
    paused = 1
  end
end
local lat = tonumber(redis.call('HGET', KEYS[3], 'lat'))
local base = tonumber(redis.call('HGET', KEYS[3], 'base'))
if ARGV[3] ~= 'overload' then
  lat = lat and (lat * 0.8 + ms * 0.2) or ms
  redis.call('HSET', KEYS[3], 'lat', lat)
end
local limit = 0
if ARGV[6] == '1' then
  limit = tonumber(redis.call('HGET', KEYS[3], 'limit')) or conc
  if ARGV[3] == 'overload' then
    local dec = tonumber(redis.call('HGET', KEYS[3], 'dec')) or 0
    if now - dec >= math.max(base or 0, 100) then
      limit = math.max(1, limit / 2)
      redis.call('HSET', KEYS[3], 'dec', now)
    end
  elseif ARGV[3] == 'ok' then
    if base == nil or ms <= base * 1.5 then
      limit = math.min(conc, limit + 1 / limit)
    end
    -- The baseline follows the fast answers quickly and the slow ones
    -- slowly, so that a slowing upstream stops the growth.
    if base == nil then
      base = ms
    elseif ms < base then
      base = base * 0.7 + ms * 0.3
    else
      base = base * 0.98 + ms * 0.02
    end
    redis.call('HSET', KEYS[3], 'base', base)
  end
  redis.call('HSET', KEYS[3], 'limit', string.format('%.6f', limit))
end
redis.call('PEXPIRE', KEYS[3], 86400000)
local out = {math.floor(limit * 1000), paused}
if ARGV[6] ~= '1' then
  return waiting(out, conc)
end
return waiting(out, limit)
