-- unfair: moves up to ARGV[1] tasks of a queue's fair line to its pending
-- list, in the line's order, for workers on asynq's public API only,
-- whose dequeue reads the pending list alone (a gateway on the direct
-- path may have put them in the line). The line's clock moves as a take
-- moves it.
--
-- KEYS[1] fair line      P:{T}:fair:<priority>
-- KEYS[2] its state      P:{T}:fair:<priority>:st
-- KEYS[3] pending list   asynq:{T}<priority>}:pending
--
-- ARGV[1] how many to move
--
-- Returns how many were moved.
local got = redis.call('ZPOPMIN', KEYS[1], tonumber(ARGV[1]))
local moved = {}
for i = 1, #got, 2 do
  local m = got[i]
  local nl = string.find(m, '\n', 1, true) or (#m + 1)
  local id, t = string.sub(m, 1, nl - 1), string.sub(m, nl + 1)
  moved[t] = (moved[t] or 0) + 1
  redis.call('LPUSH', KEYS[3], id)
end
for t, k in pairs(moved) do
  if redis.call('HINCRBY', KEYS[2], 'n:' .. t, -k) <= 0 then
    redis.call('HDEL', KEYS[2], 'n:' .. t, 'l:' .. t)
  end
end
if #got > 0 then
  redis.call('HSET', KEYS[2], 'v', got[#got])
end
return #got / 2
