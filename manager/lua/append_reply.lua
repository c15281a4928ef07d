-- append_reply.lua: append entries to a full-journal reply stream, and renew its TTL, without
-- persisting or replicating them. A reply is a transient message to one consumer (deleted
-- once read): kept out of the AOF it costs no disk writes and sets off no AOF rewrites (a
-- 100K-job reply is ~80 MB). After a Redis restart it is gone; the consumer's read stalls and
-- it asks again.
--
-- KEYS[1] the reply stream
-- ARGV[1] TTL seconds, then for each entry: its id ('*' or explicit), k (its number of
--         fields), then k field/value pairs
-- Returns the number of entries appended; an error (nothing more appended) if an explicit id
-- is not above the stream's last one (someone else wrote to the stream).
redis.set_repl(redis.REPL_NONE)
local i, appended = 2, 0
while i <= #ARGV do
  local k = tonumber(ARGV[i + 1])
  local added = redis.pcall('XADD', KEYS[1], ARGV[i], unpack(ARGV, i + 2, i + 1 + 2 * k))
  if type(added) == 'table' and added.err then
    return redis.error_reply('BADREPLY ' .. KEYS[1] .. ': ' .. added.err)
  end
  i = i + 2 + 2 * k
  appended = appended + 1
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return appended
