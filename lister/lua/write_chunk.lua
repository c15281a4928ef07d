-- write_chunk.lua: write one chunk of a view generation being built (job documents, sorted-set
-- members, the users set; at the end its stats and meta), if (and only if) the writer's worker
-- holds the partition's lister lease and the generation is still the one being built. A worker
-- that lost its lease (stopped past it, say) and its helpers write nothing more: no orphaned
-- documents in a generation the new holder deleted, no build marker made again.
--
-- KEYS[1] lister lease   KEYS[2] view building hash   KEYS[3..] keys the operations name
-- ARGV[1] lease token   ARGV[2] generation being built   ARGV[3] jobs in this chunk (added to
--         the build's progress, `jobs` in KEYS[2])
-- ARGV[4..] operations, each: command, key index (into KEYS), argument count, arguments...
--           commands: HSET ZADD SADD
-- Returns the number of operations applied; errors NOTLEADER, NOTBUILDING, BADOP and WRONGTYPE change nothing.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('NOTLEADER the lister lease is held by another worker')
end
if redis.call('HGET', KEYS[2], 'generation') ~= ARGV[2] then
  return redis.error_reply('NOTBUILDING generation ' .. ARGV[2] .. ' is not the one being built')
end
local type_of = {HSET = 'hash', ZADD = 'zset', SADD = 'set'}
local i = 4
while i <= #ARGV do  -- check every operation, and the type of every key it writes, before applying any
  local wanted, index = type_of[ARGV[i]], tonumber(ARGV[i + 1])
  if not wanted or not index or index < 3 or not KEYS[index] then
    return redis.error_reply('BADOP operation ' .. ARGV[i] .. ' on key ' .. ARGV[i + 1])
  end
  local found = redis.call('TYPE', KEYS[index])['ok']
  if found ~= 'none' and found ~= wanted then
    return redis.error_reply('WRONGTYPE ' .. KEYS[index] .. ' is a ' .. found .. ', not a ' .. wanted)
  end
  i = i + 3 + tonumber(ARGV[i + 2])
end
local applied = 0
i = 4
while i <= #ARGV do
  local command, key, n = ARGV[i], KEYS[tonumber(ARGV[i + 1])], tonumber(ARGV[i + 2])
  redis.call(command, key, unpack(ARGV, i + 3, i + 2 + n))
  i = i + 3 + n
  applied = applied + 1
end
if tonumber(ARGV[3]) > 0 then
  redis.call('HINCRBY', KEYS[2], 'jobs', ARGV[3])
end
return applied
