--[[
sliding-window.lua -- the sliding-window (weighted two-window) counter math. Twin of
src/limiter/algorithms/sliding-window.ts: same arithmetic in the same order, same stored bytes.

Contract (one counter, as the drivers lua/evaluate.lua, lua/evaluate-one.lua and lua/refund.lua
slice a request)
  KEYS slice: 1 key, the counter. Stored value, 25 bytes: struct.pack('<Bddd', 83, start, cur,
              prev) ('S', then little-endian doubles: current window start in Unix ms, hits in
              the current window, hits in the previous one). Also read: "<start>:<cur>:<prev>" in
              decimal digits, what versions before the binary state wrote. Anything else, or a
              non-finite count, is a fresh counter.
  ARGV slice: code 2 (evaluate) or 's' (refund), windowMs (ms, integer > 0), threshold (hits per
              window), burst (unused), hits (>= 0; 0 checks without consuming), enforce (read by
              the driver); the drivers unpack them into the locals below.
  Sections: spliced by the assembler where a driver says `-- @step` or `-- @refund`, exactly as
  described in lua/fixed-window.lua (same locals read and assigned; the state locals
  are this file's own, declared by its @decode).
  @step   keep is true when the stored value already belongs to the current window: the write
          that opened the window set its TTL (to one window past its end), so the driver writes
          with KEEPTTL.
  @refund cur = max(0, cur - hits) while the stored window is still the charge's; prev =
          max(0, prev - hits) once it has rolled over exactly once (the charge is now the
          previous window's); later, nothing.
  estimate = prev * (windowMs - elapsed) / windowMs + cur; over when estimate + hits > threshold.
  Reset = ms until the current aligned window ends; TTL = reset + windowMs (the state is still
  needed as `prev` during the next window).

Why atomic
  As for the fixed window: reading the estimate and charging must not interleave with another
  request's; the driver runs all steps of one request inside one script.
]]
-- @decode
-- s, c, p = the stored window's start, its count and the previous window's count; s is nil
-- when raw is missing or not ours
local s, c, p
if raw then
  if #raw == 25 then
    local m
    m, s, c, p = struct.unpack('<Bddd', raw)
    if m ~= 83 then s = nil end
  end
  if s == nil then
    local a, b, d = string.match(raw, '^(%d+):(%d+):(%d+)$')
    if a then s, c, p = tonumber(a), tonumber(b), tonumber(d) end
  end
end
-- @step
local start = math.floor(now / windowMs) * windowMs
local cur, prev = 0, 0
keep = false
-- both counts finite (x - x == 0 only for a finite x); a start of neither window means fresh
if s and c - c == 0 and p - p == 0 then
  if s == start then
    cur, prev, keep = c, p, true
  elseif s == start - windowMs then
    prev = c
  end
end
local elapsed = now - start
local estimate = prev * (windowMs - elapsed) / windowMs + cur
over = estimate + hits > threshold
remaining = 0
if not over then remaining = math.floor(threshold - estimate - hits) end
resetMs = start + windowMs - now
ttl = resetMs + windowMs
if hits > 0 and (not over or chargeOnOver) then s, c, p, changed = start, cur + hits, prev, true end
-- @encode
value = struct.pack('<Bddd', 83, s, c, p)
-- @refund
if s and c - c == 0 and p - p == 0 then
  local start = math.floor(now / windowMs) * windowMs
  if s == start then
    c = c - hits
    if c < 0 then c = 0 end
    changed = true
  elseif s == start + windowMs then
    p = p - hits
    if p < 0 then p = 0 end
    changed = true
  end
end
