--[[
override-change.lua -- sets or removes one tenant override (src/admin/override-store.ts), bumps
the overrides version every replica polls, and appends the audit entry with the old value.

Contract
  KEYS[1]  the overrides hash: field = override id (JSON of domain and entries), value = the
           override as JSON.
  KEYS[2]  the version counter (a string integer) replicas poll (OVERRIDES_POLL_MS).
  KEYS[3]  the audit list, newest first, trimmed to ARGV[4] entries.
           All three share the hash tag {meshlimit-admin}, so they live in one Redis Cluster slot.
  ARGV[1]  the override id (the hash field).
  ARGV[2]  the new override JSON, or '' to remove it.
  ARGV[3]  the audit entry as JSON without its closing brace; the script appends
           ',"old":<old override JSON or null>}' (only the script knows the old value atomically).
  ARGV[4]  most audit entries kept (OVERRIDES_AUDIT_MAX), integer >= 1.
  ARGV[5]  most overrides held (OVERRIDES_MAX), integer >= 1.
  Reply    {status, old}: status 1 done, 0 nothing to remove, -1 refused (ARGV[5] overrides held
           and this id is new); old is the previous JSON or false.
  Redis calls: HGET, HLEN (set of a new id only), HSET or HDEL, INCR, LPUSH, LTRIM.

Why atomic: the old value in the audit entry must be the one this change replaced, and the
version must move after the hash changed, never before (a replica polling in between would
reload the old hash and then miss the change until the next one).
]]
local old = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[2] == '' then
  if not old then return {0, false} end
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  if not old and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[5]) then return {-1, false} end
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
redis.call('INCR', KEYS[2])
redis.call('LPUSH', KEYS[3], ARGV[3] .. ',"old":' .. (old or 'null') .. '}')
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[4]) - 1)
return {1, old}
