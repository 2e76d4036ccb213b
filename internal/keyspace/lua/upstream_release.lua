-- upstream_release: a call to a limited upstream host is over. Its lease
-- goes; the call's time feeds the host's latency figures; a Retry-After
-- from the upstream pauses every call to it until then; and with
-- adaptive concurrency the limit grows by 1/limit after a call answered
-- no slower than 1.5 times the baseline, and halves after an overload
-- (429, 503, a timeout), at most once per baseline call time.
--
-- KEYS[1] leases   P:{up:<host>}:leases
-- KEYS[2] pause    P:{up:<host>}:pause
-- KEYS[3] state    P:{up:<host>}:state   (see upstream_acquire)
--
-- ARGV[1] holder   ARGV[2] call time (ms; -1: no call was made)
-- ARGV[3] outcome: ok, slow (answered, not an overload), overload
-- ARGV[4] Retry-After (ms; 0: none)   ARGV[5] concurrency   ARGV[6] adaptive (0/1)
--
-- Returns {the adaptive limit ×1000 (0 when not adaptive), 1 when this call set a pause}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREM', KEYS[1], ARGV[1])
local ms = tonumber(ARGV[2])
if ms < 0 then
  return {0, 0}
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
  local conc = tonumber(ARGV[5])
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
return {math.floor(limit * 1000), paused}
