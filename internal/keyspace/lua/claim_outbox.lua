-- claim_outbox: takes up to ARGV[3] due entries of a tenant's outbox and
-- makes them due again at the lease's end, so that an entry whose taker
-- dies is taken again.
--
-- KEYS[1] outbox   P:{T}:t:<tenant>:outbox
--
-- ARGV[1] now (unix ms)   ARGV[2] lease until (unix ms)   ARGV[3] count
--
-- Returns the entries ("id\nseq").
local due = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, ARGV[3])
for _, m in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[2], m) end
return due
