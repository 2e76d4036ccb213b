-- rate_limit: the generic cell rate algorithm (GCRA) on Redis's clock.
--
-- The key holds the theoretical arrival time (TAT) in µs of Redis TIME: the
-- moment the bucket will be full again. debt = TAT - now is how much the
-- bucket lacks, in time; a request adds one interval of debt and is allowed
-- if the debt stays within burst intervals. The arithmetic is relative to
-- now: absolute times near 1.7e15 µs are exact only to about 0.25 µs, which
-- is fine for the stored TAT but not for counting tokens.
--
-- KEYS[1] bucket   P:rl:{<key>}
--
-- ARGV[1] rate (per second)   ARGV[2] burst   ARGV[3] epsilon
--
-- Returns {allowed (0/1), remaining, reset µs, retry after µs}.
local interval = 1000000 / tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local debt = 0
local tat = redis.call('GET', KEYS[1])
if tat then
  debt = math.max(tonumber(tat) - now, 0)
end
local after = debt + interval
if after > tolerance then
  return {0, 0, math.ceil(debt), math.ceil(after - tolerance)}
end
redis.call('SET', KEYS[1], string.format('%.17g', now + after), 'PX', math.ceil(after / 1000))
return {1, math.floor((tolerance - after) / interval + tonumber(ARGV[3])), math.ceil(after), 0}
