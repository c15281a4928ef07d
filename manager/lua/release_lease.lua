-- release_lease.lua: give the manager lease up, if we hold it, so a standby takes over now.
--
-- KEYS[1] manager lease
-- ARGV[1] lease token
-- Returns 1 if released, 0 if it was not ours.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
