-- purge_jobs.lua: remove inactive jobs from Redis and tell consumers with a journal entry.
--
-- KEYS[1] the partition's manager fence (the manager lease in the legacy layout)
-- KEYS[2] journal stream   KEYS[3] journal head (hash)
-- KEYS[4] inactive job zset
-- KEYS[4+3i-2] job i eventlog   KEYS[4+3i-1] job i environment   KEYS[4+3i] job i output (i = 1..n)
-- ARGV[1] lease token   ARGV[2] journal entry format version (common/formats.py)
-- ARGV[3] journal MAXLEN (0: none)   ARGV[4] timestamp   ARGV[5..] job ids (i = 1..n)
-- Returns the ids purged; a job that is not inactive is left alone. Errors (nothing written):
-- NOTLEADER when the fence is not ours, WRONGTYPE when the journal, head or job set has the wrong type.
for index, wanted in pairs({[2] = 'stream', [3] = 'hash', [4] = 'zset'}) do
  local kind = redis.call('TYPE', KEYS[index])['ok']
  if kind ~= wanted and kind ~= 'none' then
    return redis.error_reply('WRONGTYPE ' .. KEYS[index] .. ' is a ' .. kind .. ', not a ' .. wanted .. '; nothing purged')
  end
end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('NOTLEADER the manager fence ' .. KEYS[1] .. ' is held by another process')
end
local seq = tonumber(redis.call('HGET', KEYS[3], 'seq') or '0')
local version, maxlen, timestamp = ARGV[2], tonumber(ARGV[3]), ARGV[4]
local purged = {}
local last_id = nil
for i = 1, #ARGV - 4 do
  local job = ARGV[4 + i]
  if redis.call('ZREM', KEYS[4], job) == 1 then
    redis.call('DEL', KEYS[4 + 3 * i - 2], KEYS[4 + 3 * i - 1], KEYS[4 + 3 * i])
    seq = seq + 1
    local fields = {'v', version, 'seq', seq, 'id', job, 'name', 'purge', 'timestamp', timestamp, 'context', '{}', 'data', ''}
    if maxlen > 0 then
      last_id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, '*', unpack(fields))
    else
      last_id = redis.call('XADD', KEYS[2], '*', unpack(fields))
    end
    table.insert(purged, job)
  end
end
if last_id then
  redis.call('HSET', KEYS[3], 'seq', seq, 'last_id', last_id)
  redis.call('HINCRBY', KEYS[3], 'purged', #purged)
end
return purged
