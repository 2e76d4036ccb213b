-- take: asynq's dequeue (see asynq.go) for up to ARGV[2] tasks of one
-- queue, first half: each task moves from pending to active and is leased,
-- as asynq's own dequeue does it. The pending list goes first (tasks that
-- came back: retries and scheduled tasks now due, put back or recovered
-- ones, replays); then the queue's fair line (new jobs, see
-- keyspace.FairKeys), lowest virtual start first, the line's clock moving
-- to the last one taken. The second half (claim) marks them active and
-- reads them with their records, whose keys are known only now.
--
-- KEYS[1] pending list   asynq:{T}<priority>}:pending
-- KEYS[2] paused flag    asynq:{T}<priority>}:paused
-- KEYS[3] active list    asynq:{T}<priority>}:active
-- KEYS[4] lease          asynq:{T}<priority>}:lease
-- and for a queue of asyncgw's layout (keyspace.Space.Queue):
-- KEYS[5] fair line      P:{T}:fair:<priority>
-- KEYS[6] its state      P:{T}:fair:<priority>:st
--
-- ARGV[1] the lease's expiry (unix s)   ARGV[2] how many to take
--
-- Returns the IDs taken, in the order taken; none when the queue is paused.
if redis.call('EXISTS', KEYS[2]) == 1 then return {} end
local out = {}
local n = tonumber(ARGV[2])
while #out < n do
  local id = redis.call('RPOPLPUSH', KEYS[1], KEYS[3])
  if not id then break end
  redis.call('ZADD', KEYS[4], ARGV[1], id)
  out[#out + 1] = id
end
if #out < n and KEYS[5] then
  local got = redis.call('ZPOPMIN', KEYS[5], n - #out)
  local taken = {}
  for i = 1, #got, 2 do
    local m = got[i]
    local nl = string.find(m, '\n', 1, true) or (#m + 1)
    local id, t = string.sub(m, 1, nl - 1), string.sub(m, nl + 1)
    taken[t] = (taken[t] or 0) + 1
    redis.call('LPUSH', KEYS[3], id)
    redis.call('ZADD', KEYS[4], ARGV[1], id)
    out[#out + 1] = id
  end
  for t, k in pairs(taken) do
    if redis.call('HINCRBY', KEYS[6], 'n:' .. t, -k) <= 0 then
      redis.call('HDEL', KEYS[6], 'n:' .. t, 'l:' .. t)
    end
  end
  if #got > 0 then
    redis.call('HSET', KEYS[6], 'v', got[#got])
  end
end
return out
