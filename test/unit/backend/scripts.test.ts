import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { CounterOp } from '../../../src/limiter/types.js';
import { groupIdenticalRequests, marshalEvaluateBatch, parseEvaluateBatchReply } from '../../../src/backend/redis/batch-format.js';
import {
  algorithmSections,
  assembleEvaluateBatchScript,
  assembleEvaluateOneScript,
  assembleEvaluateScript,
  assembleEvaluateScripts,
  assembleRefundScript,
  findLuaDir,
} from '../../../src/backend/redis/lua-assembler.js';
import {
  evaluateCommandFor,
  evaluateScriptFor,
  EVALUATE_BATCH_COMMAND,
  EVALUATE_COMMAND,
  EVALUATE_ONE_COMMAND,
  registerEvaluateScripts,
  runEvaluateCommand,
} from '../../../src/backend/redis/script-commands.js';
import {
  marshalEvaluate,
  marshalRefund,
  parseEvaluateOneReply,
  parseEvaluateReply,
  parseRefundReply,
  unmarshalEvaluateArgs,
} from '../../../src/backend/redis/script-format.js';
import { BackendError } from '../../../src/errors.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

describe('lua/ discovery and script assembly', () => {
  it('finds lua/ from src/ (tsx, vitest) and from dist/ (after a build)', () => {
    expect(findLuaDir(join(root, 'src', 'backend', 'redis'))).toBe(join(root, 'lua'));
    expect(findLuaDir(join(root, 'dist', 'backend', 'redis'))).toBe(join(root, 'lua'));
  });

  it('fails with a clear message when lua/ is not shipped', () => {
    expect(() => findLuaDir('/')).toThrow(/cannot find lua\/evaluate\.lua/);
  });

  const FILES = { fixed_window: 'fixed-window.lua', sliding_window: 'sliding-window.lua', token_bucket: 'token-bucket.lua' } as const;
  const sectionsOf = (file: string) => algorithmSections(readFileSync(join(root, 'lua', file), 'utf8'), file);
  /** The statements of a script: comments dropped, each line trimmed (sections are spliced indented). */
  const code = (source: string): string =>
    source
      .replace(/--\[\[[\s\S]*?\]\]/g, '')
      .split('\n')
      .map((l) => l.replace(/--.*$/, '').trim())
      .filter((l) => l !== '')
      .join('\n');
  const trimmed = (text: string): string => code(text);

  it.each([
    ['evaluate.lua', assembleEvaluateScript],
    ['evaluate-batch.lua', assembleEvaluateBatchScript],
  ] as const)(
    "splices every algorithm's @step section into the driver %s, and computes the SHA1 of exactly what it sends",
    (file, assemble) => {
      const s = assemble();
      const driver = readFileSync(join(root, 'lua', file), 'utf8');
      for (const file of Object.values(FILES)) {
        expect(code(s.source)).toContain(trimmed(sectionsOf(file).step));
        expect(code(s.source)).not.toContain(trimmed(sectionsOf(file).refund));
      }
      // one dispatch per algorithm, written once in the driver and expanded by the assembler
      expect(driver).toMatch(/^\s*-- @each-algorithm\n\s*-- @step\n\s*-- @end-each-algorithm$/m);
      for (const code of [1, 2, 3]) expect(s.source).toContain(`code == ${code} then`);
      expect(s.source).toContain("error({ err = 'ERR meshlimit: unknown algorithm code '");
      expect(s.source).not.toMatch(/^\s*-- @(step|refund|decode|encode|step-only|each-algorithm|end-each-algorithm)/m);
      // No closure is created per call: no function expression anywhere in the script.
      expect(code(s.source)).not.toMatch(/\bfunction\b/);
      expect(s.sha1).toBe(createHash('sha1').update(s.source).digest('hex'));
      expect(assemble()).toEqual(s);
    },
  );

  it("assembles the refund script from the same files' @refund sections, with its own driver", () => {
    const e = assembleEvaluateScript();
    const r = assembleRefundScript();
    for (const file of Object.values(FILES)) {
      expect(code(r.source)).toContain(trimmed(sectionsOf(file).refund));
      expect(code(r.source)).not.toContain(trimmed(sectionsOf(file).step));
    }
    expect(r.source).not.toMatch(/^\s*-- @(step|refund)/m);
    expect(code(r.source)).not.toMatch(/\bfunction\b/);
    expect(r.source).toContain('meshlimit refund script');
    expect(e.source).not.toContain('meshlimit refund script');
    expect(r.sha1).toBe(createHash('sha1').update(r.source).digest('hex'));
    expect(r.sha1).not.toBe(e.sha1);
  });

  it("builds one one-op script per algorithm from that algorithm's @step section alone, inline in the driver", () => {
    const all = assembleEvaluateScripts();
    for (const [algorithm, file] of Object.entries(FILES) as Array<[keyof typeof FILES, string]>) {
      const s = assembleEvaluateOneScript(algorithm);
      expect(all.one[algorithm]).toEqual(s);
      expect(code(s.source)).toContain(trimmed(sectionsOf(file).step));
      for (const other of Object.values(FILES).filter((f) => f !== file))
        expect(code(s.source)).not.toContain(trimmed(sectionsOf(other).step));
      expect(code(s.source)).not.toContain(trimmed(sectionsOf(file).refund));
      expect(code(s.source)).not.toMatch(/\bfunction\b/);
      expect(s.source).not.toMatch(/^\s*-- @(step|refund)/m);
      expect(s.sha1).toBe(createHash('sha1').update(s.source).digest('hex'));
    }
    expect(new Set([all.multi.sha1, ...Object.values(all.one).map((s) => s.sha1)]).size).toBe(4);
    expect(all.multi).toEqual(assembleEvaluateScript());
  });

  it('an algorithm file must have one each of @decode, @step, @encode and @refund, in that order', () => {
    const ok = '--[[ h ]]\n-- @decode\nd = 0\n-- @step\na = 1\n-- @encode\ne = 2\n-- @refund\nb = 2';
    expect(algorithmSections(ok, 'ok.lua')).toEqual({ decode: 'd = 0', step: 'a = 1', encode: 'e = 2', refund: 'b = 2' });
    const message = /bad\.lua needs one each of the lines "-- @decode", "-- @step", "-- @encode" and "-- @refund", in that order/;
    expect(() => algorithmSections('-- @decode\n-- @step\n-- @refund\n', 'bad.lua')).toThrow(message);
    expect(() => algorithmSections('-- @decode\n-- @encode\n-- @step\n-- @refund\n', 'bad.lua')).toThrow(message);
    expect(() => algorithmSections('-- @decode\n-- @step\n-- @step\n-- @encode\n-- @refund\n', 'bad.lua')).toThrow(message);
    expect(() => algorithmSections('-- @step\n-- @decode\n-- @encode\n-- @refund\n', 'bad.lua')).toThrow(message);
  });

  it('splices one whole decision for @step (decode, step, then encode only when the state changed), and single sections for drivers that keep the state', () => {
    const sections = sectionsOf('fixed-window.lua');
    const s = assembleEvaluateOneScript('fixed_window');
    const decision = code([sections.decode, sections.step, 'if changed then', sections.encode, 'end'].join('\n'));
    expect(code(s.source)).toContain(`local changed\n${decision}`);
    // the batch script's run loop: the state decoded once, stepped per request, encoded once
    const batch = code(assembleEvaluateBatchScript().source);
    for (const file of Object.values(FILES)) {
      const f = sectionsOf(file);
      expect(batch).toContain(
        `${code(f.decode)}\nfor _ = 1, -n do\nlocal over, remaining, resetMs, ttl, keep, changed\ndo\n${code(f.step)}\nend`,
      );
      expect(batch).toContain(`if anyChange then\n${code(f.encode)}\nend`);
    }
  });

  it('picks the one-op script (and command) of the algorithm for one op, the several-ops script otherwise', () => {
    const all = assembleEvaluateScripts();
    const o: CounterOp = { key: 'a', algorithm: 'sliding_window', windowMs: 1_000, threshold: 1, burst: 1, hits: 1, enforce: true };
    expect(evaluateScriptFor(all, [o])).toBe(all.one.sliding_window);
    expect(evaluateCommandFor([o])).toBe(EVALUATE_ONE_COMMAND.sliding_window);
    expect(evaluateScriptFor(all, [o, o])).toBe(all.multi);
    expect(evaluateCommandFor([o, o])).toBe(EVALUATE_COMMAND);
  });

  it('registers one ioredis command per script (idempotently) and runs them by name', async () => {
    const all = assembleEvaluateScripts();
    const defined: Array<[string, string]> = [];
    const client = {
      defineCommand(name: string, def: { lua: string }) {
        defined.push([name, def.lua]);
        (this as Record<string, unknown>)[name] = (...a: unknown[]) => Promise.resolve([name, ...a]);
      },
    };
    const redis = client as unknown as Parameters<typeof registerEvaluateScripts>[0];
    registerEvaluateScripts(redis, all);
    registerEvaluateScripts(redis, all);
    expect(defined).toEqual([
      [EVALUATE_COMMAND, all.multi.source],
      [EVALUATE_BATCH_COMMAND, all.batch.source],
      [EVALUATE_ONE_COMMAND.fixed_window, all.one.fixed_window.source],
      [EVALUATE_ONE_COMMAND.sliding_window, all.one.sliding_window.source],
      [EVALUATE_ONE_COMMAND.token_bucket, all.one.token_bucket.source],
    ]);
    const args = Buffer.alloc(8);
    expect(await runEvaluateCommand(redis, EVALUATE_ONE_COMMAND.token_bucket, ['k'], args)).toEqual([
      EVALUATE_ONE_COMMAND.token_bucket,
      1,
      'k',
      args,
    ]);
    await expect(runEvaluateCommand(redis, 'nope', ['k'], args)).rejects.toThrow(BackendError);
  });

  it('every Lua file opens with its contract header (KEYS/ARGV or module contract, and why atomic where it runs)', () => {
    for (const f of [
      'fixed-window.lua',
      'sliding-window.lua',
      'token-bucket.lua',
      'evaluate.lua',
      'evaluate-one.lua',
      'evaluate-batch.lua',
      'refund.lua',
    ]) {
      const text = readFileSync(join(root, 'lua', f), 'utf8');
      expect(text.startsWith('--[[')).toBe(true);
      expect(text).toMatch(/KEYS/);
      expect(text).toMatch(/ARGV/);
      expect(text).toMatch(/Why atomic/);
    }
  });

  describe('lua/includes: fragments included, not copied', () => {
    const includes = readdirSync(join(root, 'lua', 'includes')).filter((f) => f.endsWith('.lua'));
    const drivers = ['evaluate.lua', 'evaluate-one.lua', 'evaluate-batch.lua', 'refund.lua'];

    it('every fragment opens with its contract: what it reads and what it assigns or declares', () => {
      expect(includes.length).toBeGreaterThan(0);
      for (const f of includes) {
        const text = readFileSync(join(root, 'lua', 'includes', f), 'utf8');
        expect(text.startsWith(`--[[\nincludes/${f} -- `), f).toBe(true);
        expect(text, f).toMatch(/^ {2}reads /m);
        expect(text, f).toMatch(/^ {2}(assigns|declares) /m);
      }
    });

    it('every fragment is included by a driver, and no driver holds a copy of its code', () => {
      const driverTexts = drivers.map((d) => readFileSync(join(root, 'lua', d), 'utf8'));
      for (const f of includes) {
        const fragment = code(readFileSync(join(root, 'lua', 'includes', f), 'utf8'));
        expect(
          driverTexts.some((t) => t.includes(`-- @include "includes/${f}"`)),
          f,
        ).toBe(true);
        for (const [i, text] of driverTexts.entries()) expect(code(text), `${drivers[i]} copies ${f}`).not.toContain(fragment);
      }
    });

    it('every assembled script has its include lines expanded', () => {
      const all = assembleEvaluateScripts();
      for (const script of [all.multi, all.batch, ...Object.values(all.one), assembleRefundScript()]) {
        expect(script.source).not.toMatch(/^\s*-- @include/m);
      }
      expect(all.one.token_bucket.source).toContain("  -- lua/includes/time-now.lua\n  local t = redis.call('TIME')\n");
    });
  });
});

describe('ARGV marshalling and reply parsing', () => {
  it('packs ARGV as lua/evaluate.lua and lua/evaluate-one.lua read it: one buffer of little-endian doubles', () => {
    const m = marshalEvaluate(
      [
        { key: 'a', algorithm: 'fixed_window', windowMs: 60_000, threshold: 5, burst: 5, hits: 1, enforce: true },
        { key: 'b', algorithm: 'token_bucket', windowMs: 1_000, threshold: 2, burst: 7, hits: 0, enforce: false },
        { key: 'a', algorithm: 'sliding_window', windowMs: 3_600_000, threshold: 0, burst: 0, hits: 3, enforce: true },
      ],
      1_700_000_000_123,
      true,
    );
    expect(m.keys).toEqual(['a', 'b', 'a']);
    expect(m.args).toHaveLength(8 * (2 + 3 * 6));
    expect(m.args.readDoubleLE(0)).toBe(1_700_000_000_123);
    expect(unmarshalEvaluateArgs(m.args)).toEqual({
      now: 1_700_000_000_123,
      chargeOnDeny: 1,
      ops: [
        [1, 60_000, 5, 5, 1, 1],
        [3, 1_000, 2, 7, 0, 0],
        [2, 3_600_000, 0, 0, 3, 1],
      ],
    });
    // The Redis clock is asked for with NaN (any real number, even a negative one, is a test clock).
    const empty = marshalEvaluate([], undefined, false);
    expect(empty.keys).toEqual([]);
    expect(Number.isNaN(unmarshalEvaluateArgs(empty.args).now)).toBe(true);
    expect(unmarshalEvaluateArgs(empty.args)).toMatchObject({ chargeOnDeny: 0, ops: [] });
  });

  it('decodes the one-op integer reply with burst + 1 as the radix, and its array fallback', () => {
    const o: CounterOp = { key: 'k', algorithm: 'fixed_window', windowMs: 60_000, threshold: 9, burst: 9, hits: 1, enforce: true };
    expect(parseEvaluateOneReply(59_000 * 10 + 3, o)).toEqual({
      denied: false,
      outcomes: [{ overLimit: false, remaining: 3, resetMs: 59_000 }],
    });
    expect(parseEvaluateOneReply(0, o)).toEqual({ denied: false, outcomes: [{ overLimit: false, remaining: 0, resetMs: 0 }] });
    expect(parseEvaluateOneReply(-1 - 42, o)).toEqual({ denied: true, outcomes: [{ overLimit: true, remaining: 0, resetMs: 42 }] });
    // Over a shadow (enforce false) limit: over, but the request is not denied.
    expect(parseEvaluateOneReply(-1, { ...o, enforce: false })).toEqual({
      denied: false,
      outcomes: [{ overLimit: true, remaining: 0, resetMs: 0 }],
    });
    // The token bucket's radix is its burst, whatever the refill.
    const tb: CounterOp = { ...o, algorithm: 'token_bucket', threshold: 1, burst: 99 };
    expect(parseEvaluateOneReply(7 * 100 + 99, tb).outcomes[0]).toEqual({ overLimit: false, remaining: 99, resetMs: 7 });
    // The array form, when the integer would not fit (or a foreign state made remaining > burst).
    expect(parseEvaluateOneReply([0, 12, 60_000], o)).toEqual({
      denied: false,
      outcomes: [{ overLimit: false, remaining: 12, resetMs: 60_000 }],
    });
  });

  it.each([[null], ['OK'], [1.5], [2 ** 53], [[0, 1]], [[2, 1, 1]], [[0, '1', 2]], [[0, 1, 2.5]], [Number.NaN]])(
    'a malformed one-op reply %j is a BackendError',
    (reply) => {
      const o: CounterOp = { key: 'k', algorithm: 'fixed_window', windowMs: 60_000, threshold: 9, burst: 9, hits: 1, enforce: true };
      expect(() => parseEvaluateOneReply(reply, o)).toThrow(BackendError);
    },
  );

  it('parses the flat integer reply: the result, then the now the script evaluated at', () => {
    expect(parseEvaluateReply([1, 0, 4, 100, 1, 0, 2500, 1_700_000_000_123], 2)).toEqual({
      result: {
        denied: true,
        outcomes: [
          { overLimit: false, remaining: 4, resetMs: 100 },
          { overLimit: true, remaining: 0, resetMs: 2500 },
        ],
      },
      now: 1_700_000_000_123,
    });
  });

  it.each([
    [null],
    ['OK'],
    [[0, 0, 1, 5]],
    [[0, 0, 1, 2]],
    [[0, 0, 1, 2, 3, 4]],
    [[0, 0, '1', 2, 5]],
    [[0, 0, 1.5, 2, 5]],
    [[0, 0, 1, 2, 5.5]],
  ])('a malformed reply %j is a BackendError', (reply) => {
    expect(() => parseEvaluateReply(reply, 1)).toThrow(BackendError);
  });

  it('packs a batch as lua/evaluate-batch.lua reads it: a request count, then per request now, chargeOnDeny, op count and its ops', () => {
    const a: CounterOp = { key: 'a', algorithm: 'fixed_window', windowMs: 60_000, threshold: 5, burst: 5, hits: 1, enforce: true };
    const b: CounterOp = { key: 'b', algorithm: 'token_bucket', windowMs: 1_000, threshold: 2, burst: 7, hits: 0, enforce: false };
    const m = marshalEvaluateBatch([
      { ops: [a], now: undefined, chargeOnDeny: false },
      { ops: [b, a], now: 1_700_000_000_123, chargeOnDeny: true },
    ]);
    expect(m.keys).toEqual(['a', 'b', 'a']);
    const d = Array.from({ length: m.args.length / 8 }, (_, i) => m.args.readDoubleLE(8 * i));
    expect(d).toHaveLength(1 + 2 * 3 + 3 * 6);
    expect(d[0]).toBe(2);
    expect(Number.isNaN(d[1])).toBe(true);
    expect(d.slice(2, 10)).toEqual([0, 1, 1, 60_000, 5, 5, 1, 1]);
    expect(d.slice(10)).toEqual([1_700_000_000_123, 1, 2, 3, 1_000, 2, 7, 0, 0, 1, 60_000, 5, 5, 1, 1]);
  });

  it('packs consecutive one-op requests with the same op, now and chargeOnDeny as one request entry, then one run entry (op count -m)', () => {
    const a: CounterOp = { key: 'a', algorithm: 'token_bucket', windowMs: 1_000, threshold: 5, burst: 9, hits: 1, enforce: true };
    const b: CounterOp = { key: 'b', algorithm: 'fixed_window', windowMs: 60_000, threshold: 5, burst: 5, hits: 1, enforce: true };
    const one = (op: CounterOp, now?: number, chargeOnDeny = false) => ({ ops: [op], now, chargeOnDeny });
    const m = marshalEvaluateBatch([
      one(a),
      one({ ...a }), // equal, not the same object
      one(a),
      one(a, 1_700_000_000_000), // another now: a new entry
      one(a, 1_700_000_000_000, true), // another chargeOnDeny: a new entry
      one({ ...a, hits: 2 }, 1_700_000_000_000, true), // another op: a new entry
      { ops: [b, b], now: undefined, chargeOnDeny: false }, // two ops: never repeated
      { ops: [b, b], now: undefined, chargeOnDeny: false },
      one(b),
      one(b),
    ]);
    expect(m.keys).toEqual(['a', 'a', 'a', 'a', 'b', 'b', 'b', 'b', 'b']);
    const d = Array.from({ length: m.args.length / 8 }, (_, i) => m.args.readDoubleLE(8 * i));
    const op = (o: CounterOp) => [o.algorithm === 'token_bucket' ? 3 : 1, o.windowMs, o.threshold, o.burst, o.hits, 1];
    expect(d[0]).toBe(9);
    expect(d.slice(1)).toEqual([
      ...[NaN, 0, 1, ...op(a)],
      ...[NaN, 0, -2],
      ...[1_700_000_000_000, 0, 1, ...op(a)],
      ...[1_700_000_000_000, 1, 1, ...op(a)],
      ...[1_700_000_000_000, 1, 1, ...op({ ...a, hits: 2 })],
      ...[NaN, 0, 2, ...op(b), ...op(b)],
      ...[NaN, 0, 2, ...op(b), ...op(b)],
      ...[NaN, 0, 1, ...op(b)],
      ...[NaN, 0, -1],
    ]);
  });

  it('brings identical one-op requests of a turn together, never past a request that touches their key', () => {
    const op = (key: string, hits = 1): CounterOp => ({
      key,
      algorithm: 'fixed_window',
      windowMs: 60_000,
      threshold: 5,
      burst: 5,
      hits,
      enforce: true,
    });
    const r = (name: string, ...ops: CounterOp[]) => ({ name, ops, now: undefined as number | undefined, chargeOnDeny: false });
    const names = (rs: ReadonlyArray<{ name: string }>) => rs.map((x) => x.name).join(' ');
    // a1 and a2 (same op on key a) around b: b is on another key, so a2 moves up to a1
    expect(names(groupIdenticalRequests([r('a1', op('a')), r('b', op('b')), r('a2', op('a')), r('b2', op('b'))]))).toBe('a1 a2 b b2');
    // a request of several ops touching a stops a2 (it stays after it) ...
    expect(names(groupIdenticalRequests([r('a1', op('a')), r('ab', op('b'), op('a')), r('a2', op('a'))]))).toBe('a1 ab a2');
    // ... so does a different op on a (hits 2), and a2 then joins neither
    expect(
      names(groupIdenticalRequests([r('a1', op('a')), r('x', op('a', 2)), r('c', op('c')), r('a2', op('a')), r('x2', op('a', 2))])),
    ).toBe('a1 x c a2 x2');
    // another now or chargeOnDeny is another request
    const later = { ...r('a2', op('a')), now: 5 };
    const charging = { ...r('a3', op('a')), chargeOnDeny: true };
    expect(names(groupIdenticalRequests([r('a1', op('a')), r('b', op('b')), later, charging]))).toBe('a1 b a2 a3');
    // several ops on other keys do not stop it; nothing moved returns the same array
    expect(names(groupIdenticalRequests([r('a1', op('a')), r('bc', op('b'), op('c')), r('a2', op('a'))]))).toBe('a1 a2 bc');
    const still = [r('a1', op('a')), r('a2', op('a')), r('b', op('b'))];
    expect(groupIdenticalRequests(still)).toBe(still);
  });

  it('splits a batch reply per request: outcomes in the one-op encoding, denied from enforced ops, a key error for its requests only; then the clock', () => {
    const fw: CounterOp = { key: 'a', algorithm: 'fixed_window', windowMs: 60_000, threshold: 9, burst: 9, hits: 1, enforce: true };
    const shadow: CounterOp = { ...fw, key: 'b', enforce: false };
    const wrongType = new Error('WRONGTYPE Operation against a key holding the wrong kind of value');
    const requests = [
      { ops: [fw], now: undefined, chargeOnDeny: false },
      { ops: [shadow, fw], now: undefined, chargeOnDeny: false },
      { ops: [shadow, shadow], now: undefined, chargeOnDeny: false },
      { ops: [fw, fw], now: undefined, chargeOnDeny: false },
    ];
    const { results, clock } = parseEvaluateBatchReply(
      [59_000 * 10 + 3, -1 - 5, [0, 12, 60_000], -1, 7, wrongType, wrongType, 1_700_000_000_123],
      requests,
    );
    expect(clock).toBe(1_700_000_000_123);
    expect(results).toEqual([
      { denied: false, outcomes: [{ overLimit: false, remaining: 3, resetMs: 59_000 }] },
      {
        denied: false,
        outcomes: [
          { overLimit: true, remaining: 0, resetMs: 5 },
          { overLimit: false, remaining: 12, resetMs: 60_000 },
        ],
      },
      {
        denied: false,
        outcomes: [
          { overLimit: true, remaining: 0, resetMs: 0 },
          { overLimit: false, remaining: 7, resetMs: 0 },
        ],
      },
      wrongType,
    ]);
    expect(parseEvaluateBatchReply([-1 - 5, 0, 0], [{ ops: [fw, shadow], now: undefined, chargeOnDeny: false }]).results[0]).toMatchObject({
      denied: true,
    });
  });

  it.each([[null], ['OK'], [[1, 2]], [[1, 2, 3, 4]], [[1, 'x', 0]], [[1, 1.5, 0]], [[1, [2, 1, 1], 0]], [[1, 2, 'now']], [[1, 2, 0.5]]])(
    'a malformed batch reply %j is a BackendError',
    (reply) => {
      const o: CounterOp = { key: 'k', algorithm: 'fixed_window', windowMs: 60_000, threshold: 9, burst: 9, hits: 1, enforce: true };
      expect(() =>
        parseEvaluateBatchReply(reply, [
          { ops: [o], now: undefined, chargeOnDeny: false },
          { ops: [o], now: undefined, chargeOnDeny: false },
        ]),
      ).toThrow(BackendError);
    },
  );

  it('lays out the refund KEYS and ARGV as lua/refund.lua reads them (no enforce flag) and parses its reply', () => {
    const m = marshalRefund(
      [
        { key: 'a', algorithm: 'fixed_window', windowMs: 60_000, threshold: 5, burst: 5, hits: 1, enforce: true },
        { key: 'b', algorithm: 'token_bucket', windowMs: 1_000, threshold: 2, burst: 7, hits: 3, enforce: false },
      ],
      1_700_000_000_123,
    );
    expect(m.keys).toEqual(['a', 'b']);
    expect(m.argv).toEqual(['1700000000123', 'f', '60000', '5', '5', '1', 't', '1000', '2', '7', '3']);
    expect(parseRefundReply(2)).toBe(2);
    for (const bad of [null, -1, 1.5, '1', [1]]) expect(() => parseRefundReply(bad)).toThrow(BackendError);
  });
});
