-- release_lease.lua: give a lease up, if we hold it, so a standby takes over now.
--
-- KEYS[1] the lease key
-- ARGV[1] lease token
-- Returns 1 if released, 0 if it was not ours.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
