-- append_reply.lua: append entries to a full-journal reply stream, and renew its TTL, without
-- feeding the writes to the AOF or to replicas. A reply is a transient message to one consumer
-- (deleted once read): this way it costs no disk writes and sets off no AOF rewrites (a
-- 100K-job reply is ~80 MB). An AOF rewrite or a replica's full sync that runs while a reply
-- exists copies it like any key; its TTL takes it away. After a Redis restart a reply being
-- written is gone; the consumer's read stalls and it asks again.
--
-- KEYS[1] the reply stream
-- ARGV[1] TTL seconds   ARGV[2] '1' for the first entries of a reply, else '0'
-- then for each entry: its id ('*' or explicit), k (its number of fields), then k field/value
-- pairs
-- Returns the number of entries appended. Errors: GONE (nothing appended) when later entries
-- find no stream (the consumer deleted it: it gave up); BADREPLY when an explicit id is not
-- above the stream's last one (someone else wrote to the stream; the first XADD of a chunk
-- fails then, so nothing is appended).
redis.set_repl(redis.REPL_NONE)
if ARGV[2] == '0' and redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.error_reply('GONE ' .. KEYS[1] .. ' was deleted by its consumer')
end
local i, appended = 3, 0
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
