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
-- Returns {last journal id, last seq}; error NOTLEADER when the lease is not ours.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('NOTLEADER the manager fence ' .. KEYS[1] .. ' is held by another process')
end
local version, n = ARGV[2], tonumber(ARGV[5])
local E = 5  -- the arguments before the first event's
local last_id = redis.call('HGET', KEYS[3], 'last_id') or '0-0'

-- Check everything before the first write: Redis does not roll a failed script back.
local function after(a, b)  -- is stream id a after stream id b?
  local a_ms, a_seq = string.match(a, '(%d+)-(%d+)')
  local b_ms, b_seq = string.match(b, '(%d+)-(%d+)')
  a_ms, b_ms = tonumber(a_ms), tonumber(b_ms)
  return a_ms > b_ms or (a_ms == b_ms and tonumber(a_seq) > tonumber(b_seq))
end
local checked = {}
for i = 1, n do
  local key = KEYS[6 + 2 * i - 1]
  local name = ARGV[E + (i - 1) * 6 + 2]
  if not checked[key] then
    checked[key] = true
    local kind = redis.call('TYPE', key)['ok']
    if kind ~= 'stream' and kind ~= 'none' then
      return redis.error_reply('WRONGTYPE ' .. key .. ' is a ' .. kind .. ', not a stream; nothing posted')
    end
    if kind == 'stream' then
      if name == 'submit' then
        return redis.error_reply('DUPLICATE ' .. key .. ' exists: the job was submitted before; nothing posted')
      end
      local newest = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
      if #newest > 0 and after(newest[1][1], last_id) then
        return redis.error_reply('AHEAD ' .. key .. ' has entries after the journal; nothing posted')
      end
    end
  end
end

local seq = tonumber(redis.call('HGET', KEYS[3], 'seq') or '0')
local maxlen = tonumber(ARGV[4])
for i = 1, n do
  local a = E + (i - 1) * 6
  local job, name, ts, ctx = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local public, private = ARGV[a + 5], ARGV[a + 6]
  local eventlog, environment = KEYS[6 + 2 * i - 1], KEYS[6 + 2 * i]
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
if n > 0 then
  redis.call('HSET', KEYS[3], 'seq', seq, 'last_id', last_id)
end
if ARGV[3] ~= '' then
  redis.call('SET', KEYS[4], ARGV[3])
end
return {last_id, seq}
