-- append_reply.lua: append entries to a full-journal reply stream, and renew its TTL, without
-- persisting or replicating them. A reply is a transient message to one consumer (deleted
-- once read): kept out of the AOF it costs no disk writes and sets off no AOF rewrites (a
-- 100K-job reply is ~80 MB). After a Redis restart it is gone; the consumer's read stalls and
-- it asks again.
--
-- KEYS[1] the reply stream
-- ARGV[1] TTL seconds, then for each entry: k (its number of fields), then k field/value pairs
-- Returns the number of entries appended.
redis.set_repl(redis.REPL_NONE)
local i, appended = 2, 0
while i <= #ARGV do
  local k = tonumber(ARGV[i])
  redis.call('XADD', KEYS[1], '*', unpack(ARGV, i + 1, i + 2 * k))
  i = i + 1 + 2 * k
  appended = appended + 1
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return appended
