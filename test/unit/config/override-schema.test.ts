import { describe, expect, it } from 'vitest';
import { InvalidRequestError } from '../../../src/errors.js';
import { checkOverride } from '../../../src/config/override-schema.js';

/** A tenant override is checked as strictly as a config `rate_limit`; each refusal names the field. */
const known = (d: string) => d === 'edge';
const ok = { domain: 'edge', entries: [{ key: 'company_id', value: '42' }], rate_limit: { unit: 'minute', requests_per_unit: 5000 } };
const refused = (body: unknown): string => {
  try {
    checkOverride(body, known);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidRequestError);
    return (err as Error).message;
  }
  throw new Error('accepted');
};

describe('checkOverride', () => {
  it('accepts a well-formed override, with the config defaults (fixed_window, multiplier 1, burst = requests)', () => {
    expect(checkOverride(ok, known)).toEqual({
      domain: 'edge',
      entries: [{ key: 'company_id', value: '42' }],
      limit: { algorithm: 'fixed_window', unit: 'minute', unitMultiplier: 1, requestsPerUnit: 5000, burst: 5000 },
    });
    const tb = checkOverride({ ...ok, rate_limit: { unit: 'second', requests_per_unit: 10, algorithm: 'token_bucket', burst: 50 } }, known);
    expect(tb.limit).toEqual({ algorithm: 'token_bucket', unit: 'second', unitMultiplier: 1, requestsPerUnit: 10, burst: 50 });
  });

  it.each([
    [{ ...ok, rate_limit: { unit: 'fortnight', requests_per_unit: 5 } }, "rate_limit.unit: invalid rate limit unit 'fortnight'"],
    [{ ...ok, rate_limit: { unit: 'minute', requests_per_unit: -1 } }, 'rate_limit.requests_per_unit: must be a non-negative integer'],
    [{ ...ok, rate_limit: { unit: 'minute', requests_per_unit: 1.5 } }, 'rate_limit.requests_per_unit: must be a non-negative integer'],
    [{ ...ok, rate_limit: { unit: 'minute', requests_per_unit: '5' } }, 'rate_limit.requests_per_unit: must be a non-negative integer'],
    [{ ...ok, rate_limit: { unit: 'minute' } }, 'rate_limit.requests_per_unit: missing'],
    [{ ...ok, rate_limit: { requests_per_unit: 5 } }, 'rate_limit.unit: missing'],
    [
      { ...ok, rate_limit: { unit: 'minute', requests_per_unit: 5, burst: 9 } },
      'rate_limit.burst: is only valid with algorithm token_bucket',
    ],
    [
      { ...ok, rate_limit: { unit: 'minute', requests_per_unit: 5, algorithm: 'leaky' } },
      "rate_limit.algorithm: unknown algorithm 'leaky'",
    ],
    [{ ...ok, rate_limit: { unit: 'minute', requests_per_unit: 5, colour: 'red' } }, "rate_limit.colour: unknown key 'colour'"],
    [{ ...ok, rate_limit: { unit: 'minute', requests_per_unit: 5, unlimited: true } }, 'rate_limit.unlimited: not allowed in an override'],
    [
      { ...ok, rate_limit: { unit: 'year', requests_per_unit: 5, unit_multiplier: 10_000_000 } },
      'rate_limit.unit_multiplier: window is too large',
    ],
    [{ ...ok, domain: 'edg' }, 'domain: "edg" is not a configured domain'],
    [{ ...ok, domain: '' }, 'domain: must be a non-empty string'],
    [{ ...ok, domain: 'x'.repeat(300) }, 'domain: longer than 256 bytes'],
    [{ ...ok, entries: [] }, 'entries: must be a non-empty list'],
    [{ ...ok, entries: [{ key: '', value: '1' }] }, 'entries[0].key: must be a non-empty string'],
    [{ ...ok, entries: [{ key: 'k', value: 1 }] }, 'entries[0].value: must be a string'],
    [{ ...ok, entries: [{ key: 'k', value: 'v', extra: 1 }] }, 'entries[0].extra: unknown key'],
    [{ ...ok, entries: [{ key: 'k', value: 'v'.repeat(70_000) }] }, 'entries[0].value: longer than 65536 bytes'],
    [{ ...ok, entries: Array.from({ length: 33 }, () => ({ key: 'k', value: 'v' })) }, 'entries: 33 entries (at most 32)'],
    [{ ...ok, colour: 1 }, 'colour: unknown key; allowed: domain, entries, rate_limit'],
  ])('refuses %j naming the field', (body, message) => {
    expect(refused(body)).toContain(message);
  });

  it('refuses what is not an object', () => {
    expect(refused([])).toContain('must be a JSON object');
    expect(refused(null)).toContain('must be a JSON object');
  });
});
