import { describe, expect, it } from 'vitest';
import { InvalidRequestError } from '../../../src/errors.js';
import type { Decision } from '../../../src/limiter/types.js';
import { decisionToJson, durationToJson, jsonToCheck, jsonToWireRequest } from '../../../src/server/http/proto-json.js';

describe('jsonToCheck (protojson.Unmarshal rules)', () => {
  it('reads lowerCamelCase names, enum names and a bare UInt64Value', () => {
    expect(
      jsonToCheck({
        domain: 'edge',
        hitsAddend: 2,
        descriptors: [
          { entries: [{ key: 'company', value: 'acme' }], limit: { requestsPerUnit: 30, unit: 'MINUTE' }, hitsAddend: '4' },
          { entries: [{ key: 'ip', value: '10.0.0.1' }] },
        ],
      }),
    ).toEqual({
      domain: 'edge',
      hitsAddend: 2,
      descriptors: [
        { entries: [{ key: 'company', value: 'acme' }], limitOverride: { requestsPerUnit: 30, unit: 'minute' }, hitsAddend: 4 },
        { entries: [{ key: 'ip', value: '10.0.0.1' }], limitOverride: undefined, hitsAddend: undefined },
      ],
    });
  });

  it('reads .proto names, integers as strings, enum numbers, and null as absent', () => {
    const wire = jsonToWireRequest({
      domain: 'edge',
      hits_addend: '3',
      descriptors: [{ entries: [{ key: 'k', value: null }], limit: { requests_per_unit: '5', unit: 7 }, hits_addend: null }],
    });
    expect(wire).toEqual({
      domain: 'edge',
      hitsAddend: 3,
      descriptors: [{ entries: [{ key: 'k', value: '' }], limit: { requestsPerUnit: 5, unit: 7 }, hitsAddend: null }],
    });
    expect(jsonToCheck({ domain: 'd', descriptors: [{ entries: [], hits_addend: 0 }] }).descriptors[0]!.hitsAddend).toBe(0);
  });

  it('accepts any well-formed text: U+FFFD itself, a surrogate pair, control characters', () => {
    const values = ['\ufffd', '\u{1f600}', '\ud83d\ude00x', '\u0000\n', 'caf\u00e9'];
    const check = jsonToCheck({ domain: '\u{1f600}', descriptors: values.map((value) => ({ entries: [{ key: 'k', value }] })) });
    expect(check.domain).toBe('\u{1f600}');
    expect(check.descriptors.map((d) => d.entries[0]!.value)).toEqual(values);
  });

  it('keeps a uint64 string exact so values above 2^53-1 are rejected', () => {
    expect(jsonToCheck({ domain: 'd', descriptors: [{ entries: [], hitsAddend: '9007199254740991' }] }).descriptors[0]!.hitsAddend).toBe(
      Number.MAX_SAFE_INTEGER,
    );
    expect(() => jsonToCheck({ domain: 'd', descriptors: [{ entries: [], hitsAddend: '9007199254740993' }] })).toThrow(
      'descriptors[0].hits_addend must be an integer between 0 and 9007199254740991, got 9007199254740993',
    );
  });

  it('rejects malformed JSON with the field path', () => {
    const cases: [unknown, string][] = [
      [[], 'request: must be a JSON object'],
      [{ domain: 'd', extra: 1 }, 'extra: unknown field'],
      [{ domain: 'd', hitsAddend: 1, hits_addend: 1 }, 'hits_addend: duplicate field'],
      [{ domain: 5 }, 'domain: must be a string'],
      [{ descriptors: {} }, 'descriptors: must be an array'],
      [{ descriptors: [{ entries: [{ key: 'k', value: 'v', x: 1 }] }] }, 'descriptors[0].entries[0].x: unknown field'],
      [{ hitsAddend: -1 }, 'hits_addend: must be a non-negative integer'],
      [{ hitsAddend: 1.5 }, 'hits_addend: must be a non-negative integer'],
      [{ hitsAddend: 4_294_967_296 }, 'hits_addend: must be at most 4294967295'],
      [{ descriptors: [{ entries: [], hitsAddend: '12a' }] }, 'descriptors[0].hits_addend: must be a non-negative integer'],
      [
        { descriptors: [{ entries: [], limit: { unit: 'FORTNIGHT' } }] },
        'descriptors[0].limit.unit: must be one of UNKNOWN, SECOND, MINUTE, HOUR, DAY, MONTH, YEAR, WEEK',
      ],
      [
        { descriptors: [{ entries: [], limit: { unit: 'UNKNOWN', requestsPerUnit: 1 } }] },
        'descriptors[0].limit.unit must be a known RateLimitUnit, got 0',
      ],
      // lone surrogates: valid JSON, but no UTF-8 form (protojson rejects them as invalid UTF-8)
      [{ domain: '\ud800' }, 'domain: holds a lone surrogate, which is not valid UTF-8'],
      [
        {
          domain: 'd',
          descriptors: [
            {
              entries: [
                { key: 'k', value: 'v' },
                { key: 'a\udfffb', value: 'v' },
              ],
            },
          ],
        },
        'descriptors[0].entries[1].key: holds a lone surrogate, which is not valid UTF-8',
      ],
      [
        { domain: 'd', descriptors: [{ entries: [{ key: 'k', value: 'v' }] }, { entries: [{ key: 'k', value: '\udc00\ud800' }] }] },
        'descriptors[1].entries[0].value: holds a lone surrogate, which is not valid UTF-8',
      ],
    ];
    for (const [body, message] of cases) {
      expect(() => jsonToCheck(body), message).toThrow(InvalidRequestError);
      expect(() => jsonToCheck(body), message).toThrow(message);
    }
  });
});

describe('decisionToJson (protojson.Marshal rules)', () => {
  it('omits defaults, names enums and writes durations as strings', () => {
    const decision: Decision = {
      code: 'OVER_LIMIT',
      statuses: [
        {
          code: 'OVER_LIMIT',
          limit: { requestsPerUnit: 10, unit: 'minute', unitMultiplier: 1, name: undefined },
          remaining: 0,
          resetMs: 12_300,
          shadowed: false,
          unlimited: false,
        },
        {
          code: 'OK',
          limit: { requestsPerUnit: 5, unit: 'week', unitMultiplier: 1, name: 'weekly' },
          remaining: 4,
          resetMs: 0,
          shadowed: false,
          unlimited: false,
        },
        { code: 'OK', remaining: 0, resetMs: 0, shadowed: false, unlimited: false },
        { code: 'OK', remaining: 0, resetMs: 0, shadowed: false, unlimited: true },
      ],
      degraded: 'local_fallback',
    };
    expect(decisionToJson(decision, { limit: 'RateLimit-Limit', remaining: 'RateLimit-Remaining', reset: 'RateLimit-Reset' })).toEqual({
      overallCode: 'OVER_LIMIT',
      statuses: [
        { code: 'OVER_LIMIT', currentLimit: { requestsPerUnit: 10, unit: 'MINUTE' }, durationUntilReset: '13s' },
        { code: 'OK', currentLimit: { name: 'weekly', requestsPerUnit: 5, unit: 'WEEK' }, limitRemaining: 4, durationUntilReset: '0s' },
        { code: 'OK' },
        { code: 'OK', limitRemaining: 4_294_967_295 },
      ],
      responseHeadersToAdd: [
        { key: 'RateLimit-Limit', value: '10' },
        { key: 'RateLimit-Remaining', value: '0' },
        { key: 'RateLimit-Reset', value: '13' },
      ],
      dynamicMetadata: { 'meshlimit.degraded': 'local_fallback' },
    });
    expect(decisionToJson({ code: 'OK', statuses: [{ code: 'OK', remaining: 0, resetMs: 0, shadowed: false, unlimited: false }] })).toEqual(
      {
        overallCode: 'OK',
        statuses: [{ code: 'OK' }],
      },
    );
  });

  it('formats Duration like protojson', () => {
    expect(durationToJson({ seconds: 0 })).toBe('0s');
    expect(durationToJson({ seconds: 3, nanos: 0 })).toBe('3s');
    expect(durationToJson({ seconds: 3, nanos: 500_000_000 })).toBe('3.500s');
    expect(durationToJson({ seconds: 1, nanos: 1_000 })).toBe('1.000001s');
    expect(durationToJson({ seconds: 1, nanos: 1 })).toBe('1.000000001s');
  });
});
