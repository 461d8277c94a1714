--[[
evaluate-batch.lua -- several rate-limit requests in one script call: every request a standalone
or Sentinel backend received in one event-loop turn (src/backend/redis/backend.ts). Each request
is evaluated exactly as lua/evaluate.lua evaluates it alone (all of its ops, atomically, denied
requests charging nothing unless chargeOnDeny), one after another in the order given, so the
batch gives the same answers and leaves the same state as the requests sent one by one with
nothing between them. What it saves is the fixed cost of a script call (EVALSHA, the Lua
call, TIME, one GET and one SET per key per request), which dominates a one-op decision: a hot
key is read once and written once per batch, however many requests it serves. And a run of
identical one-op requests (one hot descriptor, many requests in one turn) is sent once with a
count, and evaluated with the key's state decoded once and kept in locals: per request, only the
algorithm's arithmetic and the reply element remain.

Contract
  KEYS      the counter keys of every op of every request, request after request (request r's
            ops take the next n_r keys). Keys may repeat, within and across requests. On Redis
            Cluster all keys of one call must hash to one slot; on standalone Redis any may mix.
  ARGV[1]   little-endian IEEE-754 doubles (src/backend/redis/batch-format.ts marshalEvaluateBatch):
              header:     entry count
              an entry:   now (Unix ms, integer; NaN = Redis TIME truncated to the ms, read at
                          most once per call), chargeOnDeny (1 | 0), then n:
                          n >= 1: one request of n ops; per op the 6 doubles of
                            lua/evaluate.lua (code, windowMs, threshold, burst, hits, enforce),
                            and its n keys in KEYS
                          n < 0: a run, -n requests each of the one op of the previous entry
                            (which must be a one-op request or a run), with this entry's now
                            and chargeOnDeny; no doubles and no KEYS follow
  Reply     flat array, one element per op, request after request (a run's requests included):
              an integer r in the encoding of lua/evaluate-one.lua (r < 0: over, resetMs =
              -1 - r; else remaining = r mod (burst + 1), resetMs = floor(r / (burst + 1))),
              or { over (1|0), remaining, resetMs } when that integer would not fit,
              or, for every op of a request one of whose keys holds another Redis type, the
              WRONGTYPE error (the other requests of the batch are unaffected).
            A request is denied when one of its enforced ops is over: the caller knows which
            ops are enforced, so the reply does not repeat it.
            Then one last element: the Redis clock (Unix ms) the requests that sent NaN were
            evaluated at, 0 when none did. With the `now` each request sent, it gives the time
            every charge ran at, which a refund of that charge needs (the cluster backend
            refunds the slots of a request that another slot denied, see lua/refund.lua).
  Redis calls: TIME (when a request sends NaN), one GET per distinct key, then one SET per key
  that an admitted (or chargeOnDeny) request changed, after all requests: `SET key value KEEPTTL`
  when every change to the key kept its TTL, else `SET key value PX ttl` with the TTL of the last
  change that set one. Nothing else.

Why atomic
  Each request's read, decision and charge must not interleave with another's (two requests could
  both take the last unit); the whole batch runs without interleaving, requests strictly in order,
  each seeing the working copies the requests before it left.

Why per-request rollback
  A denied request must leave every counter as it found it (unless chargeOnDeny), yet its
  enforced op can come after another op that already changed a working copy. Each change is
  logged (key, previous working copy, previous TTL state) and undone in reverse order when the
  request ends denied.

Why a run needs no undo log
  A one-op request's op charges only when it is not over, or under chargeOnDeny, so nothing of a
  denied one-op request is ever rolled back; the run applies its changes to the TTL bookkeeping
  once, at its end, with the result the changes one by one would have had.

Assembly (src/backend/redis/lua-assembler.ts): each `-- @each-algorithm` ...
`-- @end-each-algorithm` block becomes an `if code == ...` chain with one copy of the block per
algorithm, where its `-- @step` line is that algorithm's whole decision (decode, step, encode)
in a `do ... end` block, and `-- @decode`, `-- @step-only` and `-- @encode` its single sections
(see lua/fixed-window.lua). Each `-- @include "includes/<name>.lua"` line becomes that file's
text, indented like the line, so what both the run and the one-request path do is written once
without a Lua function call: lua/includes/time-now.lua (the Redis clock in ms),
lua/includes/encode-outcome.lua (an op's reply element) and lua/includes/stage-write.lua (a
changed key's working copy, write order and TTL bookkeeping).
]]
local args = ARGV[1]
local entries = struct.unpack('<d', args)
local pos = 9
local clock
-- working[key]: the key's working copy (false = missing); failed[key]: its GET error, if any.
-- ttls[key]: nil while unchanged; false while every change kept the stored TTL (KEEPTTL); else
-- the TTL (ms) of the last change that set one (PX).
local working, failed, ttls, order = {}, {}, {}, {}
local undoKey, undoValue, undoTtl = {}, {}, {}
local reply = {}
-- ki: KEYS consumed; ri: reply elements written (a run entry adds replies, not keys)
local ki, ri = 0, 0
-- where in ARGV[1] the op of the previous entry starts when that entry was a one-op request or a
-- run (what a run entry repeats), else false
local singleAt = false
for _ = 1, entries do
  local now, chargeOnDeny, n
  now, chargeOnDeny, n, pos = struct.unpack('<ddd', args, pos)
  if now ~= now then
    if clock == nil then
      -- @include "includes/time-now.lua"
      clock = now
    else
      now = clock
    end
  end
  local chargeOnOver = chargeOnDeny == 1
  if n < 0 then
    -- A run: -n requests, each the one op of the previous entry. Evaluated one after another
    -- exactly as that many one-op requests, with the key's state decoded once and kept in
    -- locals between them, and encoded once at the end. A one-op request never needs the undo
    -- log: its op charges only when it is not over, or under chargeOnDeny.
    if not singleAt then
      return error({ err = 'ERR meshlimit: a run entry must follow a one-op request' })
    end
    local key = KEYS[ki]
    local err = failed[key]
    if err then
      for _ = 1, -n do
        ri = ri + 1
        reply[ri] = err
      end
    else
      local code, windowMs, threshold, burst, hits = struct.unpack('<ddddd', args, singleAt)
      local raw = working[key]
      local value, anyChange, lastPx
      -- @each-algorithm
      -- @decode
      for _ = 1, -n do
        local over, remaining, resetMs, ttl, keep, changed
        do
          -- @step-only
        end
        if changed then
          anyChange = true
          if not keep then lastPx = ttl end
        end
        ri = ri + 1
        -- @include "includes/encode-outcome.lua"
        reply[ri] = outcome
      end
      if anyChange then
        -- @encode
      end
      -- @end-each-algorithm
      if anyChange then
        -- the run's changes staged at once, with the result one by one would have had: the
        -- stored TTL kept unless a change set one, else the last TTL set
        local pending = ttls[key]
        local keep, ttl = not lastPx, lastPx
        -- @include "includes/stage-write.lua"
      end
    end
  else
    local err
    for i = ki + 1, ki + n do
      local k = KEYS[i]
      if working[k] == nil then
        local v = redis.pcall('GET', k)
        if type(v) == 'table' then
          failed[k] = v
          v = false
        end
        working[k] = v
      end
      if failed[k] then err = failed[k] end
    end
    singleAt = n == 1 and pos
    if err then
      -- (a run after this request meets the same error through failed[key])
      for i = 1, n do reply[ri + i] = err end
      pos = pos + 48 * n
    else
      local denied = false
      local undo = 0
      for i = ki + 1, ki + n do
        local key = KEYS[i]
        local code, windowMs, threshold, burst, hits, enforce
        code, windowMs, threshold, burst, hits, enforce, pos = struct.unpack('<dddddd', args, pos)
        local raw = working[key]
        local over, remaining, resetMs, value, ttl, keep
        -- @each-algorithm
        -- @step
        -- @end-each-algorithm
        if over and enforce == 1 then denied = true end
        if value then
          local pending = ttls[key]
          undo = undo + 1
          undoKey[undo], undoValue[undo], undoTtl[undo] = key, raw, pending
          -- @include "includes/stage-write.lua"
        end
        -- @include "includes/encode-outcome.lua"
        reply[ri + i - ki] = outcome
      end
      if denied and not chargeOnOver then
        for u = undo, 1, -1 do
          local key = undoKey[u]
          working[key], ttls[key] = undoValue[u], undoTtl[u]
        end
      end
    end
    ki = ki + n
    ri = ri + n
  end
end

-- A key rolled back to unchanged (ttls nil) is skipped; a key listed twice is written once.
for i = 1, #order do
  local key = order[i]
  local ttl = ttls[key]
  if ttl then
    redis.call('SET', key, working[key], 'PX', string.format('%d', ttl))
  elseif ttl == false then
    redis.call('SET', key, working[key], 'KEEPTTL')
  end
  ttls[key] = nil
end
reply[ri + 1] = clock or 0
return reply
