-- apply_batch.lua: apply one batch of view changes and move the view's journal cursor,
-- atomically, if (and only if) this worker holds the lister lease and the view is at the
-- seq the batch follows (so no batch is ever applied twice, or out of order).
--
-- KEYS[1] view meta hash   KEYS[2] lister lease   KEYS[3..] keys the operations name
-- ARGV[1] lease token   ARGV[2] expected seq (the view's seq before the batch)
-- ARGV[3] new seq   ARGV[4] new cursor (journal entry id)
-- ARGV[5..] operations, each: command, key index (into KEYS), argument count, arguments...
--           commands: HSET HDEL ZADD ZREM HINCRBY SADD
-- Returns the number of operations applied; errors NOTLEADER, STALE, BADOP and WRONGTYPE change nothing.
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return redis.error_reply('NOTLEADER the lister lease is held by another worker')
end
if (redis.call('HGET', KEYS[1], 'seq') or '') ~= ARGV[2] then
  return redis.error_reply('STALE the view is not at seq ' .. ARGV[2])
end
local type_of = {HSET = 'hash', HDEL = 'hash', ZADD = 'zset', ZREM = 'zset', HINCRBY = 'hash', SADD = 'set'}
local found = {}  -- each key's type, asked once (a batch writes a few keys many times)
local i = 5
while i <= #ARGV do  -- check every operation, and the type of every key it writes, before applying any
  local wanted, index = type_of[ARGV[i]], tonumber(ARGV[i + 1])
  if not wanted or not index or index < 3 or not KEYS[index] then
    return redis.error_reply('BADOP operation ' .. ARGV[i] .. ' on key ' .. ARGV[i + 1])
  end
  if not found[index] then
    found[index] = redis.call('TYPE', KEYS[index])['ok']
  end
  if found[index] ~= 'none' and found[index] ~= wanted then
    return redis.error_reply('WRONGTYPE ' .. KEYS[index] .. ' is a ' .. found[index] .. ', not a ' .. wanted)
  end
  i = i + 3 + tonumber(ARGV[i + 2])
end
local applied = 0
i = 5
while i <= #ARGV do
  local command, key, n = ARGV[i], KEYS[tonumber(ARGV[i + 1])], tonumber(ARGV[i + 2])
  redis.call(command, key, unpack(ARGV, i + 3, i + 2 + n))
  i = i + 3 + n
  applied = applied + 1
end
redis.call('HSET', KEYS[1], 'seq', ARGV[3], 'cursor', ARGV[4])
return applied
