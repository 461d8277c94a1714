import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  assembleEvaluateScript,
  assembleRefundScript,
  findLuaDir,
  marshalEvaluate,
  marshalRefund,
  parseEvaluateReply,
  parseRefundReply,
} from '../../../src/backend/redis/scripts.js';
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

  it('includes every module verbatim and computes the SHA1 of exactly what it sends', () => {
    const s = assembleEvaluateScript();
    for (const f of ['number.lua', 'fixed-window.lua', 'sliding-window.lua', 'token-bucket.lua', 'evaluate.lua']) {
      expect(s.source).toContain(readFileSync(join(root, 'lua', f), 'utf8'));
    }
    expect(s.sha1).toBe(createHash('sha1').update(s.source).digest('hex'));
    expect(assembleEvaluateScript()).toEqual(s);
  });

  it('assembles the refund script from the same modules in refund mode, with its own driver', () => {
    const e = assembleEvaluateScript();
    const r = assembleRefundScript();
    for (const f of ['number.lua', 'fixed-window.lua', 'sliding-window.lua', 'token-bucket.lua', 'refund.lua']) {
      expect(r.source).toContain(readFileSync(join(root, 'lua', f), 'utf8'));
    }
    expect(r.source).not.toContain(readFileSync(join(root, 'lua', 'evaluate.lua'), 'utf8'));
    expect(e.source).not.toContain(readFileSync(join(root, 'lua', 'refund.lua'), 'utf8'));
    expect(e.source.match(/end\)\(N, false\)/g)).toHaveLength(3);
    expect(r.source.match(/end\)\(N, true\)/g)).toHaveLength(3);
    expect(r.sha1).toBe(createHash('sha1').update(r.source).digest('hex'));
    expect(r.sha1).not.toBe(e.sha1);
  });

  it('every Lua file opens with its contract header (KEYS/ARGV or module contract, and why atomic where it runs)', () => {
    for (const f of ['fixed-window.lua', 'sliding-window.lua', 'token-bucket.lua', 'evaluate.lua', 'refund.lua']) {
      const text = readFileSync(join(root, 'lua', f), 'utf8');
      expect(text.startsWith('--[[')).toBe(true);
      expect(text).toMatch(/KEYS/);
      expect(text).toMatch(/ARGV/);
      expect(text).toMatch(/Why atomic/);
    }
    expect(readFileSync(join(root, 'lua', 'number.lua'), 'utf8')).toMatch(/^--\[\[[\s\S]*Contract/);
  });
});

describe('ARGV marshalling and reply parsing', () => {
  it('lays out KEYS and ARGV as lua/evaluate.lua reads them', () => {
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
    expect(m.argv).toEqual(['1700000000123', '1', 'f', '60000', '5', '5', '1', '1', 't', '1000', '2', '7', '0', '0', 's', '3600000', '0', '0', '3', '1']);
    expect(marshalEvaluate([], undefined, false).argv).toEqual(['', '0']);
  });

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

  it.each([[null], ['OK'], [[0, 0, 1, 5]], [[0, 0, 1, 2]], [[0, 0, 1, 2, 3, 4]], [[0, 0, '1', 2, 5]], [[0, 0, 1.5, 2, 5]], [[0, 0, 1, 2, 5.5]]])(
    'a malformed reply %j is a BackendError',
    (reply) => {
      expect(() => parseEvaluateReply(reply, 1)).toThrow(BackendError);
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
