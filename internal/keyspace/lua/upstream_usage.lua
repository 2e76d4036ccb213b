-- upstream_usage: what a limited upstream host uses now, for the admin
-- API and the metrics: calls in flight (live leases), jobs held back by
-- its limits (due to come back, or overdue by less than a minute), the
-- adaptive limit, how long a Retry-After pause still lasts, and the
-- latency figures. Read only.
--
-- KEYS[1] leases   P:{up:<host>}:leases
-- KEYS[2] pause    P:{up:<host>}:pause
-- KEYS[3] state    P:{up:<host>}:state
-- KEYS[4] held     P:{up:<host>}:held
--
-- Returns {in use, held, adaptive limit ×1000 (0: none kept), pause left (ms), latency (ms), baseline (ms)}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local inuse = redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
local held = redis.call('ZCOUNT', KEYS[4], now - 60000, '+inf')
local st = redis.call('HMGET', KEYS[3], 'limit', 'lat', 'base')
local pause = (tonumber(redis.call('GET', KEYS[2])) or 0) - now
return {inuse, held, math.floor((tonumber(st[1]) or 0) * 1000), math.max(pause, 0),
  math.floor(tonumber(st[2]) or 0), math.floor(tonumber(st[3]) or 0)}
