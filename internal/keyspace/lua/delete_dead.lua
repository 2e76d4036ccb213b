-- delete_dead: takes a dead job out of its dead-letter list and lets its
-- record expire like any other ended job.
--
-- KEYS[1] record        P:{T}:j:<id>
-- KEYS[2] event list    P:{T}:j:<id>:ev
-- KEYS[3] dead letters  P:{T}:t:<tenant>:dlq:<queue>
-- KEYS[4] deliveries    P:{T}:j:<id>:wh
--
-- ARGV[1] job id   ARGV[2] ttl (s)   ARGV[3] tenant
--
-- Returns 1, or 0 if the job is not in the list (or is another tenant's).
local cur = redis.call('HMGET', KEYS[1], 'state', 't')
if cur[1] ~= 'dead' or cur[2] ~= ARGV[3] then return 0 end
if redis.call('ZREM', KEYS[3], ARGV[1]) == 0 then return 0 end
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('EXPIRE', KEYS[4], ARGV[2])
return 1
