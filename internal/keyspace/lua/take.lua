-- take: asynq's dequeue (see asynq.go) for up to ARGV[2] tasks of one
-- queue, first half: each task moves from pending to active and is leased,
-- as asynq's own dequeue does it. The second half (claim) marks them active
-- and reads them with their records, whose keys are known only now.
--
-- KEYS[1] pending list   asynq:{T}<priority>}:pending
-- KEYS[2] paused flag    asynq:{T}<priority>}:paused
-- KEYS[3] active list    asynq:{T}<priority>}:active
-- KEYS[4] lease          asynq:{T}<priority>}:lease
--
-- ARGV[1] the lease's expiry (unix s)   ARGV[2] how many to take
--
-- Returns the IDs taken, oldest first; none when the queue is paused.
if redis.call('EXISTS', KEYS[2]) == 1 then return {} end
local out = {}
for i = 1, tonumber(ARGV[2]) do
  local id = redis.call('RPOPLPUSH', KEYS[1], KEYS[3])
  if not id then break end
  redis.call('ZADD', KEYS[4], ARGV[1], id)
  out[#out + 1] = id
end
return out
