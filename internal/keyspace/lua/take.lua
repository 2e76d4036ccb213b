-- take: asynq's dequeue (see asynq.go) for up to ARGV[2] tasks of one
-- queue, first half: each task moves from pending to active and is leased,
-- as asynq's own dequeue does it. A queue of asyncgw's layout has two
-- sources, taken in turn while both have tasks: the pending list (tasks
-- that came back: retries and scheduled tasks now due, put back or
-- recovered ones, replays) and the fair line (new jobs, see
-- keyspace.FairKeys), lowest virtual start first, the line's clock moving
-- to the last one taken. The turn is kept in the line's state (alt: the
-- line goes first next time), so that takes of one task alternate too,
-- and what comes back to the queue, such as jobs with a delay, gets half
-- of its takes at most while new jobs wait. The second half (claim)
-- marks the tasks active and reads them with their records, whose keys
-- are known only now.
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
local listDone, lineDone = false, KEYS[5] == nil
local lineNext = false
if not lineDone then
  lineNext = redis.call('HGET', KEYS[6], 'alt') == '1'
end
local taken, last = {}, nil
while #out < n and not (listDone and lineDone) do
  if lineDone or (not listDone and not lineNext) then
    local id = redis.call('RPOPLPUSH', KEYS[1], KEYS[3])
    if id then
      redis.call('ZADD', KEYS[4], ARGV[1], id)
      out[#out + 1] = id
      lineNext = true
    else
      listDone = true
    end
  else
    local got = redis.call('ZPOPMIN', KEYS[5])
    if #got > 0 then
      local m = got[1]
      local nl = string.find(m, '\n', 1, true) or (#m + 1)
      local id, t = string.sub(m, 1, nl - 1), string.sub(m, nl + 1)
      taken[t] = (taken[t] or 0) + 1
      last = got[2]
      redis.call('LPUSH', KEYS[3], id)
      redis.call('ZADD', KEYS[4], ARGV[1], id)
      out[#out + 1] = id
      lineNext = false
    else
      lineDone = true
    end
  end
end
if KEYS[5] then
  for t, k in pairs(taken) do
    if redis.call('HINCRBY', KEYS[6], 'n:' .. t, -k) <= 0 then
      redis.call('HDEL', KEYS[6], 'n:' .. t, 'l:' .. t)
    end
  end
  if last then
    redis.call('HSET', KEYS[6], 'v', last)
  end
  -- The turn matters only while both sources have tasks.
  if not listDone and not lineDone then
    if lineNext then
      redis.call('HSET', KEYS[6], 'alt', '1')
    else
      redis.call('HDEL', KEYS[6], 'alt')
    end
  end
end
return out
