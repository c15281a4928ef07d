-- renew_lease.lua: extend a lease (manager or lister) if, and only if, we still hold it.
--
-- KEYS[1] the lease key
-- ARGV[1] lease token   ARGV[2] ttl in milliseconds
-- Returns 1 if renewed, 0 if the lease is lost.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
