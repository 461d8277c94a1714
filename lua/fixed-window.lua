--[[
fixed-window.lua -- the fixed-window counter math. Twin of src/limiter/algorithms/fixed-window.ts:
same arithmetic in the same order, same stored bytes, so Redis and the memory backend agree bit
for bit (checked by test/integration/backend/lua-vs-ts.property.test.ts).

Contract (one counter, as the drivers lua/evaluate.lua, lua/evaluate-one.lua and lua/refund.lua
slice a request)
  KEYS slice: 1 key, the counter. Stored value, 17 bytes: struct.pack('<Bdd', 70, start, count)
              ('F', then little-endian doubles: window start in Unix ms, hits in that window).
              Also read: "<start>:<count>" in decimal digits, what versions before the binary
              state wrote (a rolling upgrade keeps its counts). Anything else, or a non-finite
              count, is a fresh counter.
  ARGV slice: code 1 (evaluate) or 'f' (refund), windowMs (ms, integer > 0), threshold (hits per
              window), burst (unused), hits (>= 0; 0 checks without consuming), enforce (read by
              the driver); the drivers unpack them into the locals below.
  Sections: this file is not run as it stands. The assembler (src/backend/redis/lua-assembler.ts)
  splices the sections below where a driver asks for them (so a decision creates no closure and
  calls no Lua function; the math still exists once, here): `-- @step` becomes @decode, @step,
  then @encode when the step changed the state, in one `do ... end` block (a whole decision from
  `raw` to `value`); `-- @refund` the same with @refund; `-- @decode`, `-- @step-only` and
  `-- @encode` one section each, for a driver that keeps the decoded state in locals across
  several steps on one key (lua/evaluate-batch.lua's runs). A section touches nothing else than:
  @decode reads   raw (stored value, false/nil when missing); declares the state locals (here s,
                  c; the state of a missing or foreign value is nil)
  @step   reads   the state locals, windowMs, threshold, burst, hits, chargeOnOver (boolean), now
                  (Unix ms, integer)
          assigns over (boolean), remaining, resetMs, ttl (ms, PX for the new state), keep (true:
                  write with KEEPTTL instead), and, when it charges, the state locals (the new
                  state) and changed = true
          keep is true when the stored value already belongs to the current window: the write
          that opened the window set its TTL (to this window's end), and a PX costs Redis more
          than the whole arithmetic here.
  @encode reads   the state locals; assigns value (the bytes to store)
  @refund reads   the state locals, windowMs, threshold, burst, hits, now (= chargeNow, the
                  charge's `now`)
          assigns the state locals with `hits` given back and changed = true (nothing when there
          is nothing to give back): if the stored window is the one chargeNow falls in, count =
          max(0, count - hits); a window that has rolled over since the charge took the charge
          with it.
  Decoding the bytes @encode wrote gives back exactly the state locals it read (doubles
  round-trip), so a step on the locals equals a step on the stored bytes.
  Windows are aligned to multiples of windowMs since the Unix epoch; a hit is over when the count
  after it exceeds the threshold; reset = ms until the window ends = the TTL.

Why atomic
  Read, compare and charge must not interleave with another request's, or two requests could
  both see `threshold - 1` and both be admitted. The driver runs every step of a request inside
  one script, which Redis executes without interleaving.
]]
-- @decode
-- s, c = the stored window's start and count; s is nil when raw is missing or not ours
local s, c
if raw then
  if #raw == 17 then
    local m
    m, s, c = struct.unpack('<Bdd', raw)
    if m ~= 70 then s = nil end
  end
  if s == nil then
    local a, b = string.match(raw, '^(%d+):(%d+)$')
    if a then s, c = tonumber(a), tonumber(b) end
  end
end
-- @step
local start = math.floor(now / windowMs) * windowMs
local count = 0
keep = false
-- s == start also rules out a missing or non-finite start; c - c == 0 only for a finite c
if s == start and c - c == 0 then count, keep = c, true end
local after = count + hits
over = after > threshold
remaining = 0
if not over then
  remaining = threshold - after
  remaining = remaining - remaining % 1 -- floor: only a foreign fractional count makes it matter
end
resetMs = start + windowMs - now
ttl = resetMs
if hits > 0 and (not over or chargeOnOver) then s, c, changed = start, after, true end
-- @encode
value = struct.pack('<Bdd', 70, s, c)
-- @refund
local start = math.floor(now / windowMs) * windowMs
if s == start and c - c == 0 then
  c = c - hits
  if c < 0 then c = 0 end
  changed = true
end
