import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assembleNumberScript } from '../../../src/backend/redis/scripts.js';
import { fmtNum } from '../../../src/limiter/algorithms/algorithm.js';
import { startRedis, type RedisInstance } from '../../support/redis.js';

/**
 * lua/number.lua against JavaScript itself, in real Redis: `N().num` must read any string as
 * `Number()` does (finite values; NaN and infinities are nil), `N().str` must print as `String()`
 * and `N().fmt` as `fmtNum()` (toPrecision(17) for non-integers). The algorithm modules rely on
 * these for every stored value that is not plain digits.
 */

let redis: RedisInstance;
let client: Redis;
beforeAll(async () => {
  redis = await startRedis();
  client = redis.client();
});
afterAll(async () => {
  await redis?.stop();
});

// Replies carry Lua numbers as %.17g strings (integer replies would truncate them).
const NUM = assembleNumberScript(`
local out = {}
for i = 1, #ARGV do
  local v = N().num(ARGV[i])
  out[i] = v == nil and 'nil' or string.format('%.17g', v)
end
return out`);
const STR = assembleNumberScript(`
local out = {}
for i = 1, #ARGV do out[i] = N().str(tonumber(ARGV[i])) end
return out`);
const FMT = assembleNumberScript(`
local out = {}
for i = 1, #ARGV do out[i] = N().fmt(tonumber(ARGV[i])) end
return out`);

function jsNum(s: string): number | null {
  const v = Number(s);
  return Number.isFinite(v) ? v : null;
}

async function luaNum(inputs: string[]): Promise<Array<number | null>> {
  const out = (await client.eval(NUM, 0, ...inputs)) as string[];
  return out.map((s) => (s === 'nil' ? null : Number(s)));
}

/** Doubles travel to Lua as String(x), which C strtod reads back exactly (NaN and Infinity too). */
async function luaStrings(script: string, xs: number[]): Promise<string[]> {
  return (await client.eval(script, 0, ...xs.map(String))) as string[];
}

const numericish = fc.string({
  unit: fc.constantFrom(...'0123456789.eE+-xXoObB abcdfInfinityNaN_\t\n\v\f\r\u00a0\u1680\u2000\u200a\u2028\u2029\u202f\u205f\u3000\ufeff'.split('')),
  maxLength: 12,
});

describe('lua/number.lua: num(s) = Number(s)', () => {
  it('agrees on hand-picked edge cases', async () => {
    const cases = [
      '', ' ', '\t\n', '0', '-0', '+0', '007', '.5', '5.', '+.5', '-.5e1', '.', 'e5', '1e', '1e+', '1e-5', '1E5', '1e400', '-1e400',
      '1e-400', '4.9e-324', '2.2250738585072014e-308', '0x', '0x1F', '0X1f', '-0x1F', '+0x1F', '0x1.8', '0x1p3', '0b', '0b101',
      '0B11', '0o17', '0O7', '0o8', '0b2', 'Infinity', '-Infinity', '+Infinity', 'infinity', 'inf', 'nan', 'NaN', '1_000',
      '\u00a012\u00a0', '\ufeff7', '\u2028 3 \u2029', '\u180e5', '9007199254740993', '123456789012345678901234567890',
      '0x20000000000001', '0x20000000000003', '0x1fffffffffffffbff', '0x1fffffffffffffc00', '0x' + 'f'.repeat(260),
      '0b' + '1'.repeat(54), '0o' + '7'.repeat(19), '1'.repeat(309), '1'.repeat(310), '00000000000000000000001.5',
    ];
    expect(await luaNum(cases)).toEqual(cases.map(jsNum));
  });

  it('agrees on random numeric-looking strings', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(numericish, { minLength: 1, maxLength: 50 }), async (inputs) => {
        expect(await luaNum(inputs)).toEqual(inputs.map(jsNum));
      }),
      { numRuns: 60 },
    );
  });

  it('agrees on random decimal literals and long hex/binary/octal literals', async () => {
    const decimal = fc
      .tuple(fc.constantFrom('', '+', '-'), fc.stringMatching(/^[0-9]{0,25}$/), fc.constantFrom('', '.'), fc.stringMatching(/^[0-9]{0,25}$/), fc.constantFrom('', 'e', 'E-', 'e+'), fc.integer({ min: 0, max: 330 }))
      .map(([sign, a, dot, b, e, x]) => `${sign}${a}${dot}${b}${e ? `${e}${x}` : ''}`);
    const radix = fc.oneof(
      fc.stringMatching(/^[0-9a-f]{1,40}$/).map((d) => `0x${d}`),
      fc.stringMatching(/^[01]{1,80}$/).map((d) => `0b${d}`),
      fc.stringMatching(/^[0-7]{1,30}$/).map((d) => `0o${d}`),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(decimal, radix), { minLength: 1, maxLength: 50 }), async (inputs) => {
        expect(await luaNum(inputs)).toEqual(inputs.map(jsNum));
      }),
      { numRuns: 60 },
    );
  });
});

describe('lua/number.lua: str(x) = String(x) and fmt(x) = fmtNum(x)', () => {
  const ties = fc
    .tuple(fc.integer({ min: 2 ** 50, max: 2 ** 51 - 1 }), fc.constantFrom(0.25, 0.75))
    .map(([i, f]) => i + f);
  const anyDouble = fc.oneof(fc.double(), fc.integer().map((i) => i / 8), ties, fc.double({ min: 1e20, max: 1e22 }), fc.double({ min: 1e-8, max: 1e-5 }));

  it('agrees on hand-picked edge cases', async () => {
    const xs = [
      0, -0, 1, -1, 0.5, 0.1, 1 / 3, 2 / 3, 1e21, 1e21 - 65536, 123456789012345680000, 2 ** 53, 2 ** 53 + 2, 2 ** 60, -(2 ** 60),
      1e-6, 1e-7, 1.5e-7, 123e-20, 5e-324, Number.MAX_VALUE, Number.MIN_VALUE, Infinity, -Infinity, NaN,
      1234567890123456.25, 1234567890123456.75, 9999999999999999.5, 0.000001, 0.0000001, 9.999999999999999e20, 59999.5,
    ];
    expect(await luaStrings(STR, xs)).toEqual(xs.map(String));
    expect(await luaStrings(FMT, xs)).toEqual(xs.map(fmtNum));
  });

  it('agrees on random doubles, including exact toPrecision ties', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(anyDouble, { minLength: 1, maxLength: 50 }), async (xs) => {
        expect(await luaStrings(STR, xs)).toEqual(xs.map(String));
        expect(await luaStrings(FMT, xs)).toEqual(xs.map(fmtNum));
      }),
      { numRuns: 60 },
    );
  });
});
