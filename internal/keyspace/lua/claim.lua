-- claim: the second half of take, for the tasks it took: each task hash is
-- marked active as asynq's dequeue marks it, and read with the job record
-- of the same ID. A task whose hash is gone is left active and leased, as
-- asynq would leave it, for the recoverer.
--
-- KEYS[2i-1] task hash   asynq:{T}<priority>}:t:<id>
-- KEYS[2i]   its record  P:{T}:j:<id>
-- (no ARGV)
--
-- Returns five items per task, in order: its message, then the t (tenant),
-- doc, seq and req of its record; false for each that is missing.
local out = {}
for i = 1, #KEYS, 2 do
  local msg = redis.call('HGET', KEYS[i], 'msg')
  if msg then
    redis.call('HSET', KEYS[i], 'state', 'active')
    redis.call('HDEL', KEYS[i], 'pending_since')
  end
  local rec = redis.call('HMGET', KEYS[i+1], 't', 'doc', 'seq', 'req')
  out[#out + 1] = msg
  out[#out + 1] = rec[1]
  out[#out + 1] = rec[2]
  out[#out + 1] = rec[3]
  out[#out + 1] = rec[4]
end
return out
