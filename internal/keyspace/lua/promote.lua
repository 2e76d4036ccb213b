-- promote: starts the head of an ordering key's line, once the job ahead
-- of it has ended: if the head is still the expected entry and its record
-- still holds its task message (tmsg: the job waits and has no task yet),
-- its task is written as the accept script writes one (see asynq.go) and
-- the message leaves the record. A line whose head has its task (or is
-- empty) leaves the promote set; one whose head's task hash is still there
-- (a replay's last cycle, being cleared away) stays, for the next sweep.
-- A head whose record is gone is dropped from the line.
--
-- KEYS[1] the line         P:{T}:t:<tenant>:ord:<hash>
-- KEYS[2] promote set      P:{T}:ord:promote
-- KEYS[3] head's record    P:{T}:j:<id>
-- KEYS[4] its task hash    asynq:{T}<priority>}:t:<id>
-- KEYS[5] its queue's pending list   KEYS[6] its queue's scheduled set
-- KEYS[7] waiting counts   P:{T}:ord:waiting
-- KEYS[8] its queue's fair line    KEYS[9] the fair line's state
--
-- ARGV[1] the head's entry   ARGV[2] its job id   ARGV[3] tenant
-- ARGV[4] now (unix s)       ARGV[5] now (unix ns)
-- ARGV[6] 1: a task due now joins the fair line, as in accept; 0: the
--         pending list
-- ARGV[7] with ARGV[6]: the step of the tenant's virtual start, 1/weight
--
-- Returns 1 when the head has its task (written now or before) or the
-- line is empty, 2 when its last task is still in the way, or the entry
-- now at the head when it is not ARGV[1] (to be promoted in its turn).
local head = redis.call('LINDEX', KEYS[1], 0)
if not head then
  redis.call('SREM', KEYS[2], KEYS[1])
  return 1
end
if head ~= ARGV[1] then return head end
local v = redis.call('HMGET', KEYS[3], 'tmsg', 'tsc', 't')
if not v[3] then
  redis.call('LPOP', KEYS[1])
  local next = redis.call('LINDEX', KEYS[1], 0)
  if not next then
    redis.call('SREM', KEYS[2], KEYS[1])
    return 1
  end
  if redis.call('HINCRBY', KEYS[7], ARGV[3], -1) <= 0 then
    redis.call('HDEL', KEYS[7], ARGV[3])
  end
  return next
end
if not v[1] then
  redis.call('SREM', KEYS[2], KEYS[1])
  return 1
end
if redis.call('EXISTS', KEYS[4]) == 1 then return 2 end
local score = tonumber(v[2]) or 0
if score > tonumber(ARGV[4]) then
  redis.call('HSET', KEYS[4], 'msg', v[1], 'state', 'scheduled')
  redis.call('ZADD', KEYS[6], score, ARGV[2])
else
  redis.call('HSET', KEYS[4], 'msg', v[1], 'state', 'pending', 'pending_since', ARGV[5])
  if ARGV[6] == '1' then
    local st = redis.call('HMGET', KEYS[9], 'v', 'l:' .. ARGV[3], 'n:' .. ARGV[3])
    local vs = math.max(tonumber(st[1]) or 0, tonumber(st[2]) or 0) + tonumber(ARGV[7])
    redis.call('HSET', KEYS[9], 'l:' .. ARGV[3], vs, 'n:' .. ARGV[3], (tonumber(st[3]) or 0) + 1)
    redis.call('ZADD', KEYS[8], vs, ARGV[2] .. '\n' .. ARGV[3])
  else
    redis.call('LPUSH', KEYS[5], ARGV[2])
  end
end
redis.call('HDEL', KEYS[3], 'tmsg', 'tsc')
redis.call('SREM', KEYS[2], KEYS[1])
return 1
