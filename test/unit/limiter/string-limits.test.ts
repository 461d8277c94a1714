import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidRequestError } from '../../../src/errors.js';
import { checkStringSizes, DEFAULT_STRING_LIMITS, type StringLimits } from '../../../src/limiter/string-limits.js';
import { requestToCheck } from '../../../src/server/grpc/mapping.js';
import { jsonToCheck } from '../../../src/server/http/proto-json.js';

const LIMITS: StringLimits = { maxDomainBytes: 8, maxKeyBytes: 10, maxValueBytes: 12 };
const d = (...entries: [string, string][]) => ({ entries: entries.map(([key, value]) => ({ key, value })) });
const problem = (domain: string, descriptors: ReturnType<typeof d>[], limits = LIMITS): string | undefined => {
  try {
    checkStringSizes(domain, descriptors, limits);
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidRequestError);
    return (err as Error).message;
  }
};

describe('checkStringSizes', () => {
  it('accepts strings up to their limit in UTF-8 bytes and names the first one over it', () => {
    expect(problem('d'.repeat(8), [d(['k'.repeat(10), 'v'.repeat(12)])])).toBeUndefined();
    expect(problem('d'.repeat(9), [d(['k', 'v'])])).toBe('domain is 9 bytes; at most 8');
    expect(problem('d', [d(['k', 'v']), d(['k', 'v'], ['k'.repeat(11), 'v'])])).toBe(
      'descriptors[1].entries[1].key is 11 bytes; at most 10',
    );
    expect(problem('d', [d(['k', 'v'], ['k', 'v'.repeat(13)])])).toBe('descriptors[0].entries[1].value is 13 bytes; at most 12');
  });

  it('counts UTF-8 bytes, not UTF-16 units: 2-, 3- and 4-byte characters at the boundary', () => {
    expect(problem('d', [d(['k', '\u00e9'.repeat(6)])])).toBeUndefined(); // 12 bytes, 6 units
    expect(problem('d', [d(['k', `${'\u00e9'.repeat(6)}x`])])).toBe('descriptors[0].entries[0].value is 13 bytes; at most 12');
    expect(problem('d', [d(['k', '\u20ac'.repeat(4)])])).toBeUndefined(); // 12 bytes, 4 units
    expect(problem('d', [d(['k', `\u20ac${'\u20ac'.repeat(4)}`])])).toBe('descriptors[0].entries[0].value is 15 bytes; at most 12');
    expect(problem('d', [d(['k', '\u{1f600}'.repeat(3)])])).toBeUndefined(); // 12 bytes, 6 units
    expect(problem('d', [d(['k', `${'\u{1f600}'.repeat(3)}!`])])).toBe('descriptors[0].entries[0].value is 13 bytes; at most 12');
  });

  it('agrees with Buffer.byteLength on any well-formed string (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 20 }), fc.integer({ min: 1, max: 60 }), (value, max) => {
        const m = problem('d', [d(['k', value])], { ...LIMITS, maxValueBytes: max });
        const bytes = Buffer.byteLength(value, 'utf8');
        expect(m).toBe(bytes > max ? `descriptors[0].entries[0].value is ${bytes} bytes; at most ${max}` : undefined);
      }),
      { numRuns: 2000 },
    );
  });

  it('defaults: 256-byte domains and keys, 64 KiB values (above Envoy’s 60 KiB header limit)', () => {
    expect(DEFAULT_STRING_LIMITS).toEqual({ maxDomainBytes: 256, maxKeyBytes: 256, maxValueBytes: 65_536 });
    expect(problem('d', [d(['k', 'v'.repeat(61_440)])], DEFAULT_STRING_LIMITS)).toBeUndefined();
    expect(problem('d', [d(['k', 'v'.repeat(70_000)])], DEFAULT_STRING_LIMITS)).toBe(
      'descriptors[0].entries[0].value is 70000 bytes; at most 65536',
    );
  });
});

describe('both transports check the sizes before anything else reads the request', () => {
  it('gRPC (requestToCheck) and /json (jsonToCheck) reject the same request with the same message', () => {
    const big = 'x'.repeat(70_000);
    const wire = { domain: 'edge', hitsAddend: 0, descriptors: [{ entries: [{ key: 'k', value: big }], limit: null, hitsAddend: null }] };
    expect(() => requestToCheck(wire)).toThrow('descriptors[0].entries[0].value is 70000 bytes; at most 65536');
    expect(() => jsonToCheck({ domain: 'edge', descriptors: [{ entries: [{ key: 'k', value: big }] }] })).toThrow(
      'descriptors[0].entries[0].value is 70000 bytes; at most 65536',
    );
    // A configured limit (MAX_DESCRIPTOR_VALUE_BYTES) is the one applied.
    const limits = { ...DEFAULT_STRING_LIMITS, maxValueBytes: 100_000 };
    expect(requestToCheck(wire, limits).descriptors[0]!.entries[0]!.value).toBe(big);
    expect(() =>
      jsonToCheck({ domain: 'edge', descriptors: [{ entries: [{ key: 'k', value: big }] }] }, { ...limits, maxValueBytes: 64 }),
    ).toThrow('descriptors[0].entries[0].value is 70000 bytes; at most 64');
  });
});
