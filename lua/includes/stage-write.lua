--[[
includes/stage-write.lua -- stages a changed key for lua/evaluate-batch.lua's write-back after
all requests: its new working copy, its place in the write order, and how its TTL is written
(ttls[key], see that file: false = KEEPTTL, a number = PX).
  reads     key, value (the new state bytes), pending (ttls[key] before this change), keep (true
            when the change kept the stored TTL right), ttl (ms, for PX when not keep)
  assigns   order[#order + 1] = key when pending is nil (the key's first change); ttls[key] = ttl
            when not keep, false when keep and pending is nil (else a pending PX stands);
            working[key] = value
]]
if pending == nil then order[#order + 1] = key end
if not keep then
  ttls[key] = ttl
elseif pending == nil then
  ttls[key] = false
end
working[key] = value
