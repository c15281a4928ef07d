-- post_events.lua: append a batch of events, each to its job's eventlog and to the
-- journal under the same entry id, and advance the manager's inbox cursor, atomically.
--
-- KEYS[1] the partition's manager fence (the manager lease itself in the legacy layout)
--                              KEYS[2] journal stream     KEYS[3] journal head (hash)
-- KEYS[4] inbox cursor         KEYS[5] active job set     KEYS[6] inactive job zset
-- KEYS[6+2i-1] job i eventlog  KEYS[6+2i] job i environment (string) (i = 1..n)
-- ARGV[1] lease token   ARGV[2] journal entry format version (common/formats.py)
-- ARGV[3] inbox cursor ('' keeps it)   ARGV[4] journal MAXLEN (0: none)
-- ARGV[5] n events, then 6 per event: job id, name, timestamp, context,
--         public blob (redacted jobspec on submit, R on alloc, else ''): field `data` of
--         both the eventlog entry and the journal entry (every entry has the same fields, so
--         Redis stores their names once per stream node),
--         private blob (environment JSON on submit, else ''): only in the environment key
-- Returns {last journal id, last seq, then for each job set aside: its id, why}. A job whose own
-- keys are wrong (its eventlog not a stream, its environment not a string, a submit of a job that
-- has an eventlog, an eventlog with entries after the journal) is set aside: none of its events is
-- written, the others are. Errors (nothing written): NOTLEADER when the fence is not ours,
-- WRONGTYPE when a key of the partition (journal, head, cursor, job sets) has the wrong type.
local function kind_of(key)
  return redis.call('TYPE', key)['ok']
end
for index, wanted in pairs({[2] = 'stream', [3] = 'hash', [4] = 'string', [5] = 'set', [6] = 'zset'}) do
  local kind = kind_of(KEYS[index])
  if kind ~= wanted and kind ~= 'none' then
    return redis.error_reply('WRONGTYPE ' .. KEYS[index] .. ' is a ' .. kind .. ', not a ' .. wanted .. '; nothing posted')
  end
end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('NOTLEADER the manager fence ' .. KEYS[1] .. ' is held by another process')
end
local version, n = ARGV[2], tonumber(ARGV[5])
local E = 5  -- the arguments before the first event's
local last_id = redis.call('HGET', KEYS[3], 'last_id') or '0-0'

-- Check everything before the first write: Redis does not roll a failed script back.
local function problem_of(eventlog, environment, name, private)  -- why this event's job is set aside, or nil
  local kind = kind_of(eventlog)
  if kind ~= 'stream' and kind ~= 'none' then
    return eventlog .. ' is a ' .. kind .. ', not a stream'
  end
  if name == 'submit' and private ~= '' then
    local env_kind = kind_of(environment)
    if env_kind ~= 'string' and env_kind ~= 'none' then
      return environment .. ' is a ' .. env_kind .. ', not a string'
    end
  end
  if kind == 'stream' then
    if name == 'submit' then
      return eventlog .. ' exists: the job was submitted before'
    end
    -- entries strictly after the journal's last id (none, normally: an empty reply is cheap)
    if #redis.call('XREVRANGE', eventlog, '+', '(' .. last_id, 'COUNT', 1) > 0 then
      return eventlog .. ' has entries after the journal'
    end
  end
  return nil
end
local checked, aside, reply = {}, {}, {}
for i = 1, n do
  local a = E + (i - 1) * 6
  local job, eventlog = ARGV[a + 1], KEYS[6 + 2 * i - 1]
  if not aside[job] and (not checked[eventlog] or ARGV[a + 2] == 'submit') then
    checked[eventlog] = true
    local problem = problem_of(eventlog, KEYS[6 + 2 * i], ARGV[a + 2], ARGV[a + 6])
    if problem then
      aside[job] = true
      table.insert(reply, job)
      table.insert(reply, problem)
    end
  end
end

local seq = tonumber(redis.call('HGET', KEYS[3], 'seq') or '0')
local maxlen = tonumber(ARGV[4])
local written = 0
for i = 1, n do
  local a = E + (i - 1) * 6
  local job, name, ts, ctx = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local public, private = ARGV[a + 5], ARGV[a + 6]
  local eventlog, environment = KEYS[6 + 2 * i - 1], KEYS[6 + 2 * i]
  if not aside[job] then
    written = written + 1
    seq = seq + 1
    local fields = {'v', version, 'seq', seq, 'id', job, 'name', name, 'timestamp', ts, 'context', ctx, 'data', public}
    local entry = {'name', name, 'timestamp', ts, 'context', ctx, 'data', public}
    if name == 'submit' then
      if private ~= '' then redis.call('SET', environment, private) end
      redis.call('SADD', KEYS[5], job)
    elseif name == 'clean' or name == 'invalidate' then
      redis.call('SREM', KEYS[5], job)
      redis.call('ZADD', KEYS[6], ts, job)
    end
    if maxlen > 0 then
      last_id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, '*', unpack(fields))
    else
      last_id = redis.call('XADD', KEYS[2], '*', unpack(fields))
    end
    redis.call('XADD', eventlog, last_id, unpack(entry))
  end
end
if written > 0 then
  redis.call('HSET', KEYS[3], 'seq', seq, 'last_id', last_id)
end
if ARGV[3] ~= '' then
  redis.call('SET', KEYS[4], ARGV[3])
end
table.insert(reply, 1, seq)
table.insert(reply, 1, last_id)
return reply
