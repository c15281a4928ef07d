-- journal_snapshot.lua: the journal position and the jobs that exist at that position,
-- read in one atomic step; the start of a full journal.
--
-- KEYS[1] journal head (hash)   KEYS[2] active job set   KEYS[3] inactive job zset
-- ARGV: none
-- Returns {last journal id, seq, jobs purged so far, inactive ids by t_inactive, active ids}.
local head = redis.call('HMGET', KEYS[1], 'last_id', 'seq', 'purged')
return {head[1] or '0-0', head[2] or '0', head[3] or '0', redis.call('ZRANGE', KEYS[3], 0, -1),
        redis.call('SMEMBERS', KEYS[2])}
