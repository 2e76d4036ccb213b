-- recover: puts back the tasks whose lease ended, found by a read of the
-- lease just before: a task still leased until before ARGV[1] leaves the
-- lease and the active list and goes to the head of pending (RPUSH),
-- marked pending, as asynq's requeue does; one whose hash is gone only
-- leaves them. A lease renewed since the read is left alone.
--
-- KEYS[1] lease         asynq:{T}<priority>}:lease
-- KEYS[2] active list   asynq:{T}<priority>}:active
-- KEYS[3] pending list  asynq:{T}<priority>}:pending
-- KEYS[3+i] the hash of task i
--
-- ARGV[1] cutoff (unix s)   ARGV[1+i] the ID of task i
--
-- Returns how many were put back.
local n = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  local until_ = redis.call('ZSCORE', KEYS[1], id)
  if until_ and tonumber(until_) <= tonumber(ARGV[1]) then
    redis.call('ZREM', KEYS[1], id)
    if redis.call('LREM', KEYS[2], 0, id) > 0 and redis.call('EXISTS', KEYS[2 + i]) == 1 then
      redis.call('RPUSH', KEYS[3], id)
      redis.call('HSET', KEYS[2 + i], 'state', 'pending')
      n = n + 1
    end
  end
end
return n
