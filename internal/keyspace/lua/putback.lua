-- putback: returns taken tasks to the head of their queue, as asynq
-- requeues the tasks of a worker that shuts down (a task no longer active
-- is left alone).
--
-- KEYS[1] active list   asynq:{T}<priority>}:active
-- KEYS[2] lease         asynq:{T}<priority>}:lease
-- KEYS[3] pending list  asynq:{T}<priority>}:pending
-- KEYS[3+i] the hash of task i
--
-- ARGV[i] the ID of task i
--
-- Returns how many were put back.
local n = 0
for i = 1, #ARGV do
  local id = ARGV[i]
  if redis.call('LREM', KEYS[1], 0, id) > 0 then
    redis.call('ZREM', KEYS[2], id)
    redis.call('RPUSH', KEYS[3], id)
    redis.call('HSET', KEYS[3 + i], 'state', 'pending')
    n = n + 1
  end
end
return n
