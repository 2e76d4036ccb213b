-- update: writes a job's new state with its event, if the record is still
-- at the expected seq, and with a task to retire, retires it as asynq's
-- Done does (see asynq.go), if it is still active.
--
-- The record's state and doc are the job's latest event, seq; the events
-- before it are in the event list, whose i-th element (1-based) is event
-- i, "state\ndoc". So a new job has no list: each change first appends the
-- event the record held. A job that becomes dead joins its dead-letter
-- list; one that leaves dead (a replay) is taken out of it. Only a job
-- that ended has an expiry, so only one that leaves a terminal state
-- loses it. An event a callback hears of goes into the outbox in the same
-- step: an event is never written without its webhook.
--
-- KEYS[1] record        P:{T}:j:<id>
-- KEYS[2] event list    P:{T}:j:<id>:ev
-- KEYS[3] tenant stream P:{T}:t:<tenant>:events
-- KEYS[4] dead letters  P:{T}:t:<tenant>:dlq:<queue>
-- KEYS[5] outbox        P:{T}:t:<tenant>:outbox
-- KEYS[6] deliveries    P:{T}:j:<id>:wh
-- and, to retire the task (all asynq:{T}<priority>}:…):
-- KEYS[7] active list   KEYS[8] lease   KEYS[9] task hash
-- KEYS[10] processed count of the day   KEYS[11] processed count in all
-- and, for a job with an ordering key (ARGV[18] set), after those:
-- KEYS[o] its key's line  KEYS[o+1] promote set P:{T}:ord:promote
-- KEYS[o+2] waiting counts P:{T}:ord:waiting
--
-- ARGV[1] doc            ARGV[2] state       ARGV[3] expected seq
-- ARGV[4] from-terminal allowed (0/1)        ARGV[5] ttl (s; 0: none)
-- ARGV[6] stream maxlen  ARGV[7] event channel P:{T}:events
-- ARGV[8] tenant         ARGV[9] job id
-- ARGV[10] has raw result body (0/1)         ARGV[11] raw result body
-- ARGV[12] time of death (unix ms)           ARGV[13] now (unix ms)
-- ARGV[14] publish command: SPUBLISH, or PUBLISH without sharded pub/sub
-- with KEYS[7..11]: ARGV[15] task id, ARGV[16] the day's count's expiry
-- (unix s), ARGV[17] the count at which the total starts again from one
-- ("" all three, without a task to retire, when ARGV[18] is set).
-- For a job with an ordering key: ARGV[18] its entry in the line,
-- ARGV[19] the task message of a replay, ARGV[20] its score (unix s;
-- 0: due now).
--
-- A job with an ordering key that ends leaves its line: if it was the
-- head and the line goes on, the line joins the promote set and the next
-- head's entry is returned, for promote to write its task. A job that
-- leaves dead (a replay) joins the end of its line, its task message kept
-- in the record (tmsg, tsc) until it is the head; when it is the head at
-- once, the line joins the promote set and its own entry is returned.
--
-- Returns {seq, streamID, retired (0/1), entry to promote or ""}; {-1}
-- not found (or another tenant's), {-2} terminal, {-3} conflict.
local cur = redis.call('HMGET', KEYS[1], 'state', 'seq', 'cbev', 'doc', 't')
if not cur[1] or cur[5] ~= ARGV[8] then return {-1} end
if cur[2] ~= ARGV[3] then return {-3} end
local s = cur[1]
local ended = s == 'succeeded' or s == 'failed' or s == 'dead' or s == 'canceled'
if ended and ARGV[4] ~= '1' then return {-2} end
local seq = tonumber(cur[2]) + 1
if redis.call('LLEN', KEYS[2]) < seq - 1 then
  redis.call('RPUSH', KEYS[2], s .. '\n' .. cur[4])
end
if ARGV[10] == '1' then
  redis.call('HSET', KEYS[1], 'doc', ARGV[1], 'state', ARGV[2], 'seq', seq, 'rbody', ARGV[11])
else
  redis.call('HSET', KEYS[1], 'doc', ARGV[1], 'state', ARGV[2], 'seq', seq)
end
if cur[3] and string.find(cur[3], ',' .. ARGV[2] .. ',', 1, true) then
  redis.call('ZADD', KEYS[5], ARGV[13], ARGV[9] .. '\n' .. seq)
end
local sid = redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*', 'j', ARGV[9], 's', seq, 'k', ARGV[2], 'd', ARGV[1])
redis.call(ARGV[14], ARGV[7], ARGV[8] .. '\n' .. ARGV[9] .. '\n' .. seq .. '\n' .. sid .. '\n' .. ARGV[2] .. '\n' .. ARGV[1])
if ARGV[2] == 'dead' then
  redis.call('ZADD', KEYS[4], ARGV[12], ARGV[9])
elseif s == 'dead' then
  redis.call('ZREM', KEYS[4], ARGV[9])
end
local ttl = tonumber(ARGV[5])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
  redis.call('EXPIRE', KEYS[6], ttl)
elseif ended then
  redis.call('PERSIST', KEYS[1])
  redis.call('PERSIST', KEYS[2])
  redis.call('PERSIST', KEYS[6])
end
local retired = 0
local promote = ''
local ord = ARGV[18]
if ord then
  local o = 7
  if ARGV[15] ~= '' then o = 12 end
  local line, set, waiting = KEYS[o], KEYS[o + 1], KEYS[o + 2]
  local now_ended = ARGV[2] == 'succeeded' or ARGV[2] == 'failed' or ARGV[2] == 'dead' or ARGV[2] == 'canceled'
  if now_ended and not ended then
    local head = redis.call('LINDEX', line, 0) == ord
    if redis.call('LREM', line, 1, ord) > 0 then
      redis.call('HDEL', KEYS[1], 'tmsg', 'tsc')
      if redis.call('LLEN', line) > 0 then
        if redis.call('HINCRBY', waiting, ARGV[8], -1) <= 0 then
          redis.call('HDEL', waiting, ARGV[8])
        end
        if head then
          redis.call('SADD', set, line)
          promote = redis.call('LINDEX', line, 0)
        end
      end
    end
  elseif ended and not now_ended and ARGV[19] ~= '' then
    redis.call('HSET', KEYS[1], 'tmsg', ARGV[19], 'tsc', ARGV[20])
    if redis.call('RPUSH', line, ord) == 1 then
      redis.call('SADD', set, line)
      promote = ord
    else
      redis.call('HINCRBY', waiting, ARGV[8], 1)
    end
  end
end
if ARGV[15] and ARGV[15] ~= '' and redis.call('LREM', KEYS[7], 0, ARGV[15]) > 0 then
  redis.call('ZREM', KEYS[8], ARGV[15])
  redis.call('DEL', KEYS[9])
  if redis.call('INCR', KEYS[10]) == 1 then
    redis.call('EXPIREAT', KEYS[10], ARGV[16])
  end
  if redis.call('GET', KEYS[11]) == ARGV[17] then
    redis.call('SET', KEYS[11], 1)
  else
    redis.call('INCR', KEYS[11])
  end
  retired = 1
end
return {seq, sid, retired, promote}
