-- accept: stores a new job in one step — its record with its first event,
-- its asynq task (written as asynq's client writes it, see asynq.go), its
-- Idempotency-Key — or nothing.
--
-- KEYS[1] record              P:{T}:j:<id>
-- KEYS[2] tenant stream       P:{T}:t:<tenant>:events
-- KEYS[3] tenant outbox       P:{T}:t:<tenant>:outbox
-- KEYS[4] tenant job index    P:{T}:t:<tenant>:jobs
-- then, when ARGV[12] is 1:
-- KEYS[k] idempotency key     P:{T}:t:<tenant>:idem:<hash>
-- then, when ARGV[14] is 1:
-- KEYS[k]   task hash         asynq:{T}<priority>}:t:<id>
-- KEYS[k+1] pending list or scheduled set of the task's queue
-- then, when ARGV[20] is not "" (a job with an ordering key, and a task):
-- KEYS[k+2] its key's line    P:{T}:t:<tenant>:ord:<hash>
-- KEYS[k+3] waiting counts    P:{T}:ord:waiting
-- then, when ARGV[21] is 1 (the task is to join its queue's fair line),
-- after those (at k+2 without an ordering key, k+4 with one):
-- KEYS[f]   the fair line      P:{T}:fair:<queue>
-- KEYS[f+1] its state          P:{T}:fair:<queue>:st
--
-- ARGV[1] doc (the job resource as JSON)    ARGV[2] req (the stored request)
-- ARGV[3] state                             ARGV[4] stream maxlen
-- ARGV[5] event channel  P:{T}:events       ARGV[6] tenant
-- ARGV[7] job id                            ARGV[8] idempotency ttl (s)
-- ARGV[9] callback URL ("" for none)        ARGV[10] callback states (",a,b,")
-- ARGV[11] now (unix ms)                    ARGV[12] has idempotency key (0/1)
-- ARGV[13] request fingerprint              ARGV[14] has task (0/1)
-- ARGV[15] task message                     ARGV[16] task scheduled (0/1)
-- ARGV[17] its score (unix s) when scheduled, or pending since (unix ns)
-- ARGV[18] publish command: SPUBLISH, or PUBLISH without sharded pub/sub
-- ARGV[19] job index horizon (ms): older index entries are trimmed, and
--          an index with no accept for that long expires
-- ARGV[20] the job's entry in its key's line ("" for none)
-- ARGV[21] 1: a task due now joins the fair line (see keyspace.FairKeys)
--          rather than the pending list; 0 or absent: the pending list
-- ARGV[22] with ARGV[21]: the step of the tenant's virtual start, 1/weight
--
-- A job with an ordering key joins the end of its key's line. When the
-- line was empty it is the head and its task is written as any other;
-- otherwise the task message (and its score when scheduled, else 0) waits
-- in the record (tmsg, tsc) until the job ahead ends (update, promote).
--
-- Returns the event's stream ID; false if the job or its task exists; or,
-- when the key stands for a job already, {s, fp, id, st} of that key ("p"
-- for s: an earlier version's claim still pending), having written nothing.
-- Publishes "tenant\nid\n1\nstreamID\nstate\ndoc" on the event channel.
local k = 5
local idem
if ARGV[12] == '1' then
  idem = KEYS[k]
  k = k + 1
  local v = redis.call('HMGET', idem, 's', 'fp', 'id', 'st')
  if v[1] then return v end
end
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
if ARGV[14] == '1' then
  if redis.call('EXISTS', KEYS[k]) == 1 then return false end
  local ahead = 0
  local f = k + 2
  if ARGV[20] and ARGV[20] ~= '' then
    ahead = redis.call('RPUSH', KEYS[k+2], ARGV[20]) - 1
    f = k + 4
  end
  if ahead > 0 then
    local tsc = 0
    if ARGV[16] == '1' then tsc = ARGV[17] end
    redis.call('HSET', KEYS[1], 'tmsg', ARGV[15], 'tsc', tsc)
    redis.call('HINCRBY', KEYS[k+3], ARGV[6], 1)
  elseif ARGV[16] == '1' then
    redis.call('HSET', KEYS[k], 'msg', ARGV[15], 'state', 'scheduled')
    redis.call('ZADD', KEYS[k+1], ARGV[17], ARGV[7])
  else
    redis.call('HSET', KEYS[k], 'msg', ARGV[15], 'state', 'pending', 'pending_since', ARGV[17])
    if ARGV[21] == '1' then
      local st = redis.call('HMGET', KEYS[f+1], 'v', 'l:' .. ARGV[6], 'n:' .. ARGV[6])
      local vs = math.max(tonumber(st[1]) or 0, tonumber(st[2]) or 0) + tonumber(ARGV[22])
      redis.call('HSET', KEYS[f+1], 'l:' .. ARGV[6], vs, 'n:' .. ARGV[6], (tonumber(st[3]) or 0) + 1)
      redis.call('ZADD', KEYS[f], vs, ARGV[7] .. '\n' .. ARGV[6])
    else
      redis.call('LPUSH', KEYS[k+1], ARGV[7])
    end
  end
end
if idem then
  redis.call('HSET', idem, 's', 'd', 'fp', ARGV[13], 'id', ARGV[7], 'st', ARGV[3])
  redis.call('EXPIRE', idem, ARGV[8])
end
redis.call('HSET', KEYS[1], 't', ARGV[6], 'doc', ARGV[1], 'req', ARGV[2], 'state', ARGV[3], 'seq', 1)
if ARGV[9] ~= '' then
  redis.call('HSET', KEYS[1], 'cb', ARGV[9], 'cbev', ARGV[10])
  if string.find(ARGV[10], ',' .. ARGV[3] .. ',', 1, true) then
    redis.call('ZADD', KEYS[3], ARGV[11], ARGV[7] .. '\n1')
  end
end
redis.call('ZADD', KEYS[4], ARGV[11], ARGV[7])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. (tonumber(ARGV[11]) - tonumber(ARGV[19])))
redis.call('PEXPIRE', KEYS[4], ARGV[19])
local sid = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'j', ARGV[7], 's', 1, 'k', ARGV[3], 'd', ARGV[1])
redis.call(ARGV[18], ARGV[5], ARGV[6] .. '\n' .. ARGV[7] .. '\n1\n' .. sid .. '\n' .. ARGV[3] .. '\n' .. ARGV[1])
return sid
