--[[
includes/time-now.lua -- Redis's clock in integer Unix ms, for a script whose caller sent no `now`
(Redis is the one clock: production sends none, tests send a fixed time).
  reads     nothing; calls redis.call('TIME') once
  assigns   now = TIME's seconds x 1000 + its microseconds truncated to the ms
  declares  t, us: include it in a block of its own (`if now ~= now then ... end`)
TIME gives seconds and microseconds as strings; `+ 0` converts each once and `%` floors without a
Lua function call. Reading TIME before writes needs effects replication, the default since Redis 5.
]]
local t = redis.call('TIME')
local us = t[2] + 0
now = t[1] * 1000 + (us - us % 1000) / 1000
