-- upstream_renew: a call still in flight to a limited upstream host keeps
-- its slot for another lease. A lease already dropped (the holder was
-- silent for longer than a lease) is not taken again.
--
-- KEYS[1] leases   P:{up:<host>}:leases
--
-- ARGV[1] holder   ARGV[2] lease (ms)
--
-- Returns 1 when the lease was renewed, 0 when it was gone.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) + 1000)
return 1
