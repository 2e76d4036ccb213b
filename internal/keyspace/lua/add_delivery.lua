-- add_delivery: notes a webhook delivery of a job's event. The list lives
-- as long as the record (the record scripts keep them in step).
--
-- KEYS[1] record       P:{T}:j:<id>
-- KEYS[2] deliveries   P:{T}:j:<id>:wh
--
-- ARGV[1] the event's seq   ARGV[2] delivery ID
--
-- Returns 1.
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[2], ttl)
elseif ttl == -2 then
  redis.call('DEL', KEYS[2])
end
return 1
