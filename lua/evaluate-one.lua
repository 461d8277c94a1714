--[[
evaluate-one.lua -- the driver for the most common request: exactly one counter op. The assembler
builds one script per algorithm from this file, with that algorithm's @step section spliced in
place of the `-- @step` line, so a decision runs its algorithm's arithmetic inline: no closure,
no Lua function call, no other module. Same semantics as lua/evaluate.lua (and evaluateOps() in
src/limiter/algorithms/evaluate.ts) for n = 1.

Contract
  KEYS[1]   the counter key.
  ARGV[1]   the parameters, packed as lua/evaluate.lua packs them (src/backend/redis/
            script-format.ts marshalEvaluate), for one op: 8 little-endian IEEE-754 doubles
              now (Unix ms, integer; NaN = use redis.call('TIME') truncated to the ms: Redis is
              the one clock, production always sends NaN, tests send a fixed time),
              chargeOnDeny (1 | 0), code (must be this script's algorithm: 1 fixed window,
              2 sliding window, 3 token bucket), windowMs (ms), threshold, burst, hits (>= 0),
              enforce (1 | 0; unused here, see below).
            One binary argument instead of eight decimal strings: Redis turns every argument
            into a Lua string and tonumber() runs strtod on each; struct.unpack does neither.
  Reply     an integer r, or when r would not fit the array { over (1|0), remaining, resetMs }:
              r < 0   over the limit; remaining 0, resetMs = -1 - r
              r >= 0  not over; remaining = r mod (burst + 1), resetMs = floor(r / (burst + 1))
            used when 0 <= remaining <= burst and r < 2^53 (always, for our own state and real
            limits). An integer reply costs Redis a fraction of an array reply. `denied` is not
            in the reply: for one op it is over and enforce, which the caller knows.
  Redis calls: TIME (only when now is NaN), one GET, then at most one SET: `SET key value KEEPTTL`
  when the step says the key's TTL is still right (keep), else `SET key value PX ttl`. No write
  when nothing changed.

Why `enforce` does not matter here
  With one op the write never depends on it: a value to write exists only when the op is not
  over (then the request is admitted) or when chargeOnDeny is set (then everything is charged
  anyway), exactly what evaluateOps does for one op.

Why atomic
  Read, decide and charge must not interleave with another request on the same key, or two
  requests could both take the last unit. A script runs without interleaving.

Assembly (src/backend/redis/lua-assembler.ts): `local CODE = <the algorithm's code>`, then this
file with the `-- @step` line replaced by the algorithm's whole decision (its @decode, @step and
@encode sections) in a `do ... end` block (see lua/fixed-window.lua for the locals they read and
assign), and each `-- @include "includes/<name>.lua"` line by that file's text, indented like the
line (lua/includes/time-now.lua: the Redis clock in ms; lua/includes/encode-outcome.lua: the
reply above, shared with lua/evaluate-batch.lua). Inclusion is textual: no Lua function call.
]]
local now, chargeOnDeny, code, windowMs, threshold, burst, hits = struct.unpack('<ddddddd', ARGV[1])
if code ~= CODE then
  return error({ err = 'ERR meshlimit: algorithm code ' .. tostring(code) .. ' sent to the script for code ' .. CODE })
end
if now ~= now then
  -- @include "includes/time-now.lua"
end
local key = KEYS[1]
local raw = redis.call('GET', key)
local chargeOnOver = chargeOnDeny == 1
local over, remaining, resetMs, value, ttl, keep
-- @step
if value then
  if keep then
    redis.call('SET', key, value, 'KEEPTTL')
  else
    redis.call('SET', key, value, 'PX', string.format('%d', ttl))
  end
end
-- @include "includes/encode-outcome.lua"
return outcome
