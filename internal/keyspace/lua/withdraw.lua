-- withdraw: takes a canceled job's task out of its queue's fair line
-- before a worker takes it: the entry leaves the line, its tenant's count
-- falls, and the task hash is deleted. A task no longer in the line (taken
-- meanwhile, or never there) is left alone.
--
-- KEYS[1] fair line   P:{T}:fair:<priority>
-- KEYS[2] its state   P:{T}:fair:<priority>:st
-- KEYS[3] task hash   asynq:{T}<priority>}:t:<id>
--
-- ARGV[1] job id      ARGV[2] tenant
--
-- Returns 1 when the task was withdrawn, 0 otherwise.
if redis.call('ZREM', KEYS[1], ARGV[1] .. '\n' .. ARGV[2]) == 0 then return 0 end
if redis.call('HINCRBY', KEYS[2], 'n:' .. ARGV[2], -1) <= 0 then
  redis.call('HDEL', KEYS[2], 'n:' .. ARGV[2], 'l:' .. ARGV[2])
end
redis.call('DEL', KEYS[3])
return 1
