/**
 * The hand-written ShouldRateLimit codec (src/server/grpc/codec.ts) against its reference,
 * @grpc/proto-loader with SERVER_LOADER_OPTIONS (protobufjs decode + toObject, fromObject +
 * encode):
 * 1. valid requests written by proto-loader decode to the same object, key order included;
 * 2. hand-built requests (any field order, duplicated singular fields, unknown fields of every
 *    wire type including groups, known fields under a wrong wire type, overlong varints) too;
 * 3. random, truncated and mutated bytes: ours throws exactly when protobufjs throws, and when
 *    neither throws the objects are equal;
 *    in all three, the one thing ours adds: `invalidUtf8` is set exactly when protobufjs read a
 *    string field from bytes that are not valid UTF-8 (it decodes them to U+FFFD; envoyproxy's Go
 *    protobuf rejects them, and so does requestToCheck), found by watching protobufjs's own string
 *    reads ({@link probeStringReads}); the rest of the object must still be equal;
 * 4. responses (from decisionToResponse on random decisions, and wider raw shapes) encode to the
 *    same bytes and read back through proto-loader's responseDeserialize.
 */
import fc from 'fast-check';
import { isUtf8 } from 'node:buffer';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { UNITS, type Decision, type DescriptorStatus, type MetadataValue } from '../../../src/limiter/types.js';
import { decodeRateLimitRequest } from '../../../src/server/grpc/codec-decode.js';
import { encodeRateLimitResponse } from '../../../src/server/grpc/codec-encode.js';
import {
  decisionToResponse,
  WireCode,
  type WireDescriptorStatus,
  type WireRateLimitRequest,
  type WireRateLimitResponse,
  type WireStruct,
  type WireStructValue,
} from '../../../src/server/grpc/mapping.js';
import { loadServerPackage, RLS_SERVICE, serviceDefinition } from '../../../src/server/grpc/protos.js';

const method = serviceDefinition(loadServerPackage(), RLS_SERVICE)['ShouldRateLimit']!;

/**
 * Counts the string fields protobufjs reads from bytes that are not valid UTF-8: its
 * BufferReader#string (the one proto-loader decodes with, loaded through proto-loader's own
 * require) is wrapped to look at the bytes it slices, then called unchanged.
 */
const probeStringReads = ((): { invalid: number } => {
  const protobufjs = createRequire(createRequire(import.meta.url).resolve('@grpc/proto-loader'))('protobufjs') as {
    BufferReader: { prototype: { string(): string; uint32(): number; pos: number; buf: Buffer } };
  };
  const reader = protobufjs.BufferReader.prototype;
  const original = reader.string;
  const probe = { invalid: 0 };
  reader.string = function (this: typeof reader): string {
    const at = this.pos;
    this.uint32();
    const start = this.pos;
    this.pos = at;
    const s = original.call(this);
    if (!isUtf8(this.buf.subarray(start, this.pos))) probe.invalid++;
    return s;
  };
  return probe;
})();

type Outcome = { ok: true; value: unknown; json: string } | { ok: false; error: unknown };

function attempt(decode: (b: Buffer) => unknown, buf: Buffer): Outcome {
  try {
    const value = decode(buf);
    return { ok: true, value, json: JSON.stringify(value) };
  } catch (error) {
    return { ok: false, error };
  }
}

/**
 * Both decoders on the same bytes: same accept/reject, same object (and same key order), and
 * ours names an invalid UTF-8 field exactly when protobufjs read one.
 */
function expectSameDecode(buf: Buffer): Outcome {
  probeStringReads.invalid = 0;
  const theirs = attempt((b) => method.requestDeserialize(b), buf);
  const readInvalid = probeStringReads.invalid > 0;
  const ours = attempt(decodeRateLimitRequest, buf);
  if (theirs.ok) {
    expect(ours, `protobufjs accepts ${buf.toString('hex')}`).toMatchObject({ ok: true });
    if (ours.ok) {
      const { invalidUtf8, ...rest } = ours.value as WireRateLimitRequest;
      expect(rest).toStrictEqual(theirs.value);
      expect(JSON.stringify(rest)).toBe(theirs.json);
      expect(invalidUtf8 !== undefined, `invalid UTF-8 read by protobufjs in ${buf.toString('hex')}: ${String(invalidUtf8)}`).toBe(
        readInvalid,
      );
    }
  } else {
    expect(ours.ok, `protobufjs rejects ${buf.toString('hex')} (${String(theirs.error)})`).toBe(false);
    if (!ours.ok) expect(ours.error).toBeInstanceOf(Error);
  }
  return theirs;
}

// ---- wire building -------------------------------------------------------------------------

function varint(n: number | bigint, padTo = 0): Buffer {
  let v = BigInt(n);
  const out: number[] = [];
  do {
    out.push(Number(v & 0x7fn));
    v >>= 7n;
  } while (v > 0n);
  while (out.length < padTo) out.push(0); // overlong: zero groups with continuation bits
  for (let i = 0; i < out.length - 1; i++) out[i]! |= 0x80;
  return Buffer.from(out);
}
const tag = (no: number, wt: number): Buffer => varint((BigInt(no) << 3n) | BigInt(wt));
const len = (no: number, body: Buffer, wt = 2): Buffer => Buffer.concat([tag(no, wt), varint(body.length), body]);
const vint = (no: number, n: number | bigint, wt = 0, pad = 0): Buffer => Buffer.concat([tag(no, wt), varint(n, pad)]);
const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');

// ---- arbitraries ---------------------------------------------------------------------------

/** UTF-16 units from every UTF-8 length class, lone surrogates included. */
const unit = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)) },
  fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c)),
  fc.integer({ min: 0x80, max: 0x7ff }).map((c) => String.fromCharCode(c)),
  fc.integer({ min: 0x800, max: 0xffff }).map((c) => String.fromCharCode(c)),
  fc.integer({ min: 0x10000, max: 0x10ffff }).map((c) => String.fromCodePoint(c)),
  fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)),
);
/** Strings on both sides of protobufjs's 40-unit switch between its UTF-8 writer and Node's. */
const text = fc.oneof(fc.string({ unit, maxLength: 12 }), fc.string({ unit, minLength: 30, maxLength: 80 }));
const uint32 = fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 0xffffffff }));
const uint64 = fc.oneof(fc.bigInt({ min: 0n, max: 1000n }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.constant((1n << 53n) + 1n));
const int32 = fc.oneof(fc.integer({ min: 0, max: 8 }), fc.integer({ min: -0x80000000, max: 0x7fffffff }));

const requestObject = fc.record(
  {
    domain: text,
    hitsAddend: uint32,
    descriptors: fc
      .oneof(
        { weight: 5, arbitrary: fc.array(fc.constant(0), { maxLength: 5 }) },
        fc.array(fc.constant(0), { minLength: 60, maxLength: 80 }),
      )
      .chain((slots) =>
        fc.tuple(
          ...slots.map(() =>
            fc.record(
              {
                entries: fc.array(fc.record({ key: text, value: text }, { requiredKeys: [] }), { maxLength: 4 }),
                limit: fc.record({ requestsPerUnit: uint32, unit: int32 }, { requiredKeys: [] }),
                hitsAddend: fc.record({ value: uint64.map(String) }, { requiredKeys: [] }),
              },
              { requiredKeys: [] },
            ),
          ),
        ),
      ),
  },
  { requiredKeys: [] },
);

/** An unknown field (numbers past the known ones, or 0) of wire type 0, 1, 2, 5 or a group. */
const unknownField: fc.Arbitrary<Buffer> = fc.letrec<{ field: Buffer }>((tie) => ({
  field: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc
      .tuple(fc.integer({ min: 4, max: (1 << 29) - 1 }), uint64, fc.integer({ min: 0, max: 10 }))
      .map(([no, v, pad]) => vint(no, v, 0, pad)),
    fc
      .tuple(fc.integer({ min: 4, max: 1000 }), fc.uint8Array({ minLength: 8, maxLength: 8 }))
      .map(([no, b]) => Buffer.concat([tag(no, 1), b])),
    fc.tuple(fc.integer({ min: 4, max: 1000 }), fc.uint8Array({ maxLength: 20 })).map(([no, b]) => len(no, Buffer.from(b))),
    fc
      .tuple(fc.integer({ min: 4, max: 1000 }), fc.uint8Array({ minLength: 4, maxLength: 4 }))
      .map(([no, b]) => Buffer.concat([tag(no, 5), b])),
    fc
      .tuple(fc.integer({ min: 4, max: 1000 }), fc.array(tie('field'), { maxLength: 3 }), fc.integer({ min: 0, max: 1000 }))
      .map(([no, inner, end]) =>
        // protobufjs does not check that the end-group number matches the start
        Buffer.concat([tag(no, 3), ...inner, tag(end, 4)]),
      ),
    fc.uint8Array({ minLength: 1, maxLength: 1 }).map((b) => Buffer.concat([tag(0, 0), Buffer.from([b[0]! & 0x7f])])),
  ),
})).field;

/** A wire type for a known field: usually the right one, sometimes any (protobufjs ignores it). */
const wt = (right: number): fc.Arbitrary<number> => fc.oneof({ weight: 8, arbitrary: fc.constant(right) }, fc.integer({ min: 0, max: 7 }));

/** Bytes that are mostly ASCII with a few stray non-ASCII bytes: invalid UTF-8 more often than not. */
const rawText = fc
  .array(fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 0x7f }) }, fc.integer({ min: 0x80, max: 0xff })), { maxLength: 70 })
  .map((b) => Buffer.from(b));
const stringField = (no: number): fc.Arbitrary<Buffer> => fc.tuple(fc.oneof(text.map(utf8), rawText), wt(2)).map(([b, w]) => len(no, b, w));
const uint32Field = (no: number): fc.Arbitrary<Buffer> =>
  fc
    .tuple(
      fc.oneof(
        uint32,
        int32.map((n) => BigInt.asUintN(64, BigInt(n))),
      ),
      wt(0),
      fc.integer({ min: 0, max: 10 }),
    )
    .map(([v, w, pad]) => vint(no, v, w, pad));
const messageField = (no: number, fields: fc.Arbitrary<Buffer>): fc.Arbitrary<Buffer> =>
  fc.tuple(fc.array(fields, { maxLength: 6 }), wt(2)).map(([parts, w]) => len(no, Buffer.concat(parts), w));

const entryBody = fc.oneof(stringField(1), stringField(2), unknownField);
const overrideBody = fc.oneof(uint32Field(1), uint32Field(2), unknownField);
const uint64Body = fc.oneof(
  fc.tuple(uint64, wt(0), fc.integer({ min: 0, max: 10 })).map(([v, w, pad]) => vint(1, v, w, pad)),
  unknownField,
);
const descriptorBody = fc.oneof(
  { weight: 3, arbitrary: messageField(1, entryBody) },
  messageField(2, overrideBody),
  messageField(3, uint64Body),
  unknownField,
);
/** A RateLimitRequest as bytes: fields in any order, repeated or not, unknowns between. */
const handBuiltRequest = fc
  .array(fc.oneof(stringField(1), { weight: 3, arbitrary: messageField(2, descriptorBody) }, uint32Field(3), unknownField), {
    maxLength: 8,
  })
  .map((parts) => Buffer.concat(parts));

// ---- 1. proto-loader-written requests ------------------------------------------------------

describe('decodeRateLimitRequest: requests written by proto-loader', () => {
  it('decodes a typical request exactly as proto-loader', () => {
    const buf = method.requestSerialize({
      domain: 'edge',
      hitsAddend: 2,
      descriptors: [
        {
          entries: [
            { key: 'company', value: 'acme' },
            { key: 'path', value: '/v1/orders' },
          ],
          hitsAddend: { value: '3' },
        },
        { entries: [{ key: 'remote_address', value: '10.0.0.1' }], limit: { requestsPerUnit: 5, unit: 2 } },
      ],
    });
    const decoded: WireRateLimitRequest = decodeRateLimitRequest(buf);
    expect(decoded).toStrictEqual({
      descriptors: [
        {
          entries: [
            { key: 'company', value: 'acme' },
            { key: 'path', value: '/v1/orders' },
          ],
          limit: null,
          hitsAddend: { value: '3' },
        },
        { entries: [{ key: 'remote_address', value: '10.0.0.1' }], limit: { requestsPerUnit: 5, unit: 2 }, hitsAddend: null },
      ],
      domain: 'edge',
      hitsAddend: 2,
    });
    expectSameDecode(buf);
  });

  it('decodes the empty message to all defaults', () => {
    expect(decodeRateLimitRequest(Buffer.alloc(0))).toStrictEqual({ descriptors: [], domain: '', hitsAddend: 0 });
    expectSameDecode(Buffer.alloc(0));
  });

  it('keeps a uint64 hits_addend above 2^53 exact, as a string', () => {
    const buf = method.requestSerialize({
      descriptors: [{ hitsAddend: { value: '18446744073709551615' } }, { hitsAddend: { value: '9007199254740993' } }],
    });
    const decoded = decodeRateLimitRequest(buf);
    expect(decoded.descriptors.map((d) => d.hitsAddend?.value)).toEqual(['18446744073709551615', '9007199254740993']);
    expectSameDecode(buf);
  });

  it('property: any valid request decodes like proto-loader', () => {
    fc.assert(
      fc.property(requestObject, (req) => {
        const theirs = expectSameDecode(method.requestSerialize(req));
        expect(theirs.ok).toBe(true);
      }),
      { numRuns: 600 },
    );
  });
});

// ---- 2. hand-built requests ----------------------------------------------------------------

describe('decodeRateLimitRequest: hand-built bytes', () => {
  const entry = (k: string, v: string): Buffer => len(1, Buffer.concat([len(1, utf8(k)), len(2, utf8(v))]));

  it('accepts fields in any order and appends repeated ones', () => {
    const buf = Buffer.concat([
      vint(3, 4),
      len(2, Buffer.concat([len(3, vint(1, 9)), entry('b', '2'), len(2, Buffer.concat([vint(2, 3), vint(1, 7)])), entry('a', '1')])),
      len(1, utf8('d')),
      len(2, entry('c', '3')),
    ]);
    expect(decodeRateLimitRequest(buf)).toStrictEqual({
      descriptors: [
        {
          entries: [
            { key: 'b', value: '2' },
            { key: 'a', value: '1' },
          ],
          limit: { requestsPerUnit: 7, unit: 3 },
          hitsAddend: { value: '9' },
        },
        { entries: [{ key: 'c', value: '3' }], limit: null, hitsAddend: null },
      ],
      domain: 'd',
      hitsAddend: 4,
    });
    expectSameDecode(buf);
  });

  it('a later singular field wins; a repeated embedded message replaces the earlier one (protobufjs does not merge)', () => {
    const buf = Buffer.concat([
      len(1, utf8('first')),
      len(1, utf8('second')),
      vint(3, 1),
      vint(3, 2),
      len(2, Buffer.concat([len(2, vint(1, 10)), len(2, vint(2, 4)), len(3, vint(1, 5)), len(3, Buffer.alloc(0))])),
    ]);
    expect(decodeRateLimitRequest(buf)).toStrictEqual({
      descriptors: [{ entries: [], limit: { requestsPerUnit: 0, unit: 4 }, hitsAddend: { value: '0' } }],
      domain: 'second',
      hitsAddend: 2,
    });
    expectSameDecode(buf);
  });

  it('skips unknown fields of every wire type, groups included, at every level', () => {
    const unknowns = Buffer.concat([
      vint(9, 300),
      Buffer.concat([tag(10, 1), Buffer.alloc(8, 0xff)]),
      len(11, utf8('skip me')),
      Buffer.concat([tag(12, 3), vint(1, 1), Buffer.concat([tag(13, 3), len(2, utf8('x')), tag(13, 4)]), tag(12, 4)]),
      Buffer.concat([tag(14, 5), Buffer.alloc(4, 0xee)]),
    ]);
    const buf = Buffer.concat([
      unknowns,
      len(
        2,
        Buffer.concat([
          unknowns,
          len(1, Buffer.concat([unknowns, len(1, utf8('k')), unknowns])),
          len(3, Buffer.concat([unknowns, vint(1, 8)])),
        ]),
      ),
      unknowns,
    ]);
    expect(decodeRateLimitRequest(buf)).toStrictEqual({
      descriptors: [{ entries: [{ key: 'k', value: '' }], limit: null, hitsAddend: { value: '8' } }],
      domain: '',
      hitsAddend: 0,
    });
    expectSameDecode(buf);
  });

  it('reads a known field by number whatever its wire type, as protobufjs does', () => {
    // domain under wire type 0, hits_addend under wire type 5: protobufjs reads them as string and varint
    const buf = Buffer.concat([len(1, utf8('dom'), 0), vint(3, 6, 5)]);
    expect(decodeRateLimitRequest(buf)).toStrictEqual({ descriptors: [], domain: 'dom', hitsAddend: 6 });
    expectSameDecode(buf);
  });

  it('reads overlong varints: 10-byte uint32 (bytes 6-10 skipped), negative enum, uint64 at both routes', () => {
    const buf = Buffer.concat([
      vint(3, 5, 0, 10),
      len(2, Buffer.concat([len(2, vint(2, BigInt.asUintN(64, -3n))), len(3, vint(1, (1n << 64n) - 1n)), len(3, vint(1, 0, 0, 4))])),
    ]);
    expect(decodeRateLimitRequest(buf)).toStrictEqual({
      descriptors: [{ entries: [], limit: { requestsPerUnit: 0, unit: -3 }, hitsAddend: { value: '0' } }],
      domain: '',
      hitsAddend: 5,
    });
    expectSameDecode(buf);
  });

  it('cuts a string whose length runs past its message, as protobufjs does', () => {
    const top = Buffer.concat([tag(1, 2), varint(100), utf8('short')]);
    expect(decodeRateLimitRequest(top).domain).toBe('short');
    expectSameDecode(top);
    const nested = len(2, len(1, Buffer.concat([tag(1, 2), varint(50), utf8('ke')])));
    expect(decodeRateLimitRequest(nested).descriptors[0]!.entries).toEqual([{ key: 'ke', value: '' }]);
    expectSameDecode(nested);
  });

  it('decodes invalid UTF-8 to U+FFFD like protobufjs, and names the field', () => {
    const buf = len(1, Buffer.from([0x61, 0xff, 0xed, 0xa0, 0x80, 0xc3]));
    expect(decodeRateLimitRequest(buf).domain).toBe('a\ufffd\ufffd\ufffd\ufffd\ufffd');
    expect(decodeRateLimitRequest(buf).invalidUtf8).toBe('domain');
    expectSameDecode(buf);
    // every non-ASCII byte alone among ASCII, in a short and a long string
    for (let b = 0x80; b <= 0xff; b++) {
      expectSameDecode(len(1, Buffer.from([0x61, b, 0x62])));
      expectSameDecode(len(2, len(1, len(2, Buffer.concat([Buffer.alloc(70, 0x61), Buffer.from([b])])))));
    }
  });

  it('names the first string field whose bytes are not valid UTF-8; valid text, a real U+FFFD included, is not flagged', () => {
    const bad: [string, number[]][] = [
      ['a stray continuation byte', [0x80]],
      ['0xff', [0xff]],
      ['0xfe', [0xfe]],
      ['an overlong NUL', [0xc0, 0x80]],
      ['a surrogate (CESU-8)', [0xed, 0xa0, 0x80]],
      ['a code point past U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
      ['a sequence cut short', [0xe2, 0x82]],
    ];
    const raw = (b: number[]): Buffer => Buffer.from(b);
    const rawEntry = (k: Buffer, v: Buffer): Buffer => len(1, Buffer.concat([len(1, k), len(2, v)]));
    for (const [what, bytes] of bad) {
      for (const pad of [0, 70]) {
        // short strings go through the ASCII fast path's fallback, long ones straight to Node's decoder
        const b = Buffer.concat([Buffer.alloc(pad, 0x61), raw(bytes)]);
        const cases: [Buffer, string][] = [
          [len(1, b), 'domain'],
          [len(2, rawEntry(b, utf8('v'))), 'descriptors[0].entries[0].key'],
          [
            Buffer.concat([
              len(1, utf8('d')),
              len(2, rawEntry(utf8('k'), utf8('v'))),
              len(2, Buffer.concat([rawEntry(utf8('k'), utf8('v')), rawEntry(utf8('k'), b)])),
            ]),
            'descriptors[1].entries[1].value',
          ],
        ];
        for (const [buf, field] of cases) {
          expect(decodeRateLimitRequest(buf).invalidUtf8, `${what}, ${pad} ASCII bytes before it, in ${field}`).toBe(field);
          expectSameDecode(buf);
        }
      }
    }
    // The first invalid field is named, even when a later occurrence of the field replaces it.
    const twice = Buffer.concat([len(2, rawEntry(utf8('k'), raw([0xff]))), len(1, raw([0xfe])), len(1, utf8('d'))]);
    expect(decodeRateLimitRequest(twice)).toMatchObject({ domain: 'd', invalidUtf8: 'descriptors[0].entries[0].value' });
    expectSameDecode(twice);
    // Valid UTF-8 of every length class, U+FFFD itself included, is not flagged.
    for (const text of ['\ufffd', 'caf\u00e9', '\u20ac', '\u{1f600}', `${'a'.repeat(70)}\ufffd`]) {
      const buf = len(2, rawEntry(utf8('k'), utf8(text)));
      expect(decodeRateLimitRequest(buf)).toStrictEqual({
        descriptors: [{ entries: [{ key: 'k', value: text }], limit: null, hitsAddend: null }],
        domain: '',
        hitsAddend: 0,
      });
      expectSameDecode(buf);
    }
  });

  it('property: any hand-built request decodes like proto-loader', () => {
    fc.assert(
      fc.property(handBuiltRequest, (buf) => void expectSameDecode(buf)),
      { numRuns: 1500 },
    );
  });
});

// ---- 3. malformed bytes --------------------------------------------------------------------

describe('decodeRateLimitRequest: malformed bytes throw exactly where protobufjs throws', () => {
  const rejects = (buf: Buffer): void => {
    expect(() => method.requestDeserialize(buf)).toThrow();
    expect(() => decodeRateLimitRequest(buf)).toThrow(Error);
  };

  it('rejects truncated varints, lengths past the end, bad wire types and deep groups', () => {
    rejects(Buffer.from([0x18, 0x80])); // truncated varint
    rejects(Buffer.from([0x80])); // truncated tag
    rejects(Buffer.concat([tag(3, 0), Buffer.from([0x80, 0x80, 0x80, 0x80, 0x81])])); // 5th byte continues, nothing follows
    rejects(Buffer.concat([tag(2, 2), varint(5), Buffer.from([0x0a])])); // embedded message past the end
    rejects(len(2, Buffer.concat([tag(1, 2), varint(1)]))); // entry length past the descriptor end
    rejects(len(9, Buffer.alloc(3)).subarray(0, 4)); // unknown bytes field past the end
    rejects(Buffer.concat([tag(9, 1), Buffer.alloc(7)])); // fixed64 short
    rejects(Buffer.concat([tag(9, 5), Buffer.alloc(3)])); // fixed32 short
    for (const w of [4, 6, 7]) rejects(tag(9, w)); // end-group outside a group, reserved wire types
    rejects(tag(9, 3)); // unterminated group
    rejects(len(2, len(3, Buffer.from([0x08, 0x80, 0x80, 0x80])))); // uint64 short route stepping past its message
    rejects(len(2, len(3, Buffer.concat([tag(1, 0), Buffer.alloc(10, 0x80), Buffer.from([0])])))); // 11-byte uint64
    const groups = (depth: number): Buffer =>
      Buffer.concat([...Array.from({ length: depth }, () => tag(9, 3)), vint(1, 1), ...Array.from({ length: depth }, () => tag(9, 4))]);
    expectSameDecode(groups(100));
    rejects(groups(101));
    for (const buf of [groups(99), groups(100), groups(101)]) expectSameDecode(len(2, buf));
  });

  it('accepts what protobufjs accepts at the varint edges', () => {
    // uint64 with 4 bytes left: read as 4 bytes, the 4th byte's continuation bit ignored
    expectSameDecode(len(2, len(3, Buffer.from([0x08, 0x81, 0x82, 0x83, 0x84]))));
    // 10-byte uint32 whose bytes 6..10 are not valid varint bytes
    expectSameDecode(Buffer.concat([tag(3, 0), Buffer.from([0x81, 0x80, 0x80, 0x80, 0x80, 0xff, 0xff, 0xff, 0xff, 0xff])]));
    // an unknown varint longer than 10 bytes is skipped
    expectSameDecode(Buffer.concat([tag(9, 0), Buffer.alloc(15, 0x80), Buffer.from([1])]));
  });

  it('property: random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 48 }), (b) => void expectSameDecode(Buffer.from(b))),
      { numRuns: 3000 },
    );
  });

  it('property: truncated and mutated valid requests', () => {
    const edit = fc.oneof(
      fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('set' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }),
    );
    fc.assert(
      fc.property(
        fc.oneof(
          handBuiltRequest,
          requestObject.map((r) => method.requestSerialize(r)),
        ),
        fc.array(edit, { minLength: 1, maxLength: 3 }),
        (base, edits) => {
          let buf = Buffer.from(base);
          for (const e of edits) {
            const at = buf.length === 0 ? 0 : e.at % (buf.length + (e.kind === 'insert' ? 1 : 0));
            if (e.kind === 'truncate') buf = buf.subarray(0, at);
            else if (e.kind === 'delete') buf = Buffer.concat([buf.subarray(0, at), buf.subarray(at + 1)]);
            else if (e.kind === 'insert') buf = Buffer.concat([buf.subarray(0, at), Buffer.from([e.byte]), buf.subarray(at)]);
            else if (buf.length > 0) buf[at] = e.byte;
          }
          expectSameDecode(buf);
        },
      ),
      { numRuns: 3000 },
    );
  });
});

// ---- 4. responses --------------------------------------------------------------------------

/** No lone surrogate (those cannot come back from UTF-8 unchanged). */
const wellFormed = (s: string): boolean => !/\p{Cs}/u.test(s);

function expectSameEncode(res: WireRateLimitResponse): Buffer {
  const theirs = method.responseSerialize(res);
  const ours = encodeRateLimitResponse(res);
  expect(ours.toString('hex')).toBe(theirs.toString('hex'));
  return ours;
}

const status = fc.record({
  code: fc.constantFrom('OK' as const, 'OVER_LIMIT' as const),
  limit: fc.option(
    fc.record({
      requestsPerUnit: fc.oneof(fc.integer({ min: 0, max: 1_000_000 }), fc.double({ min: 0, max: 2 ** 40, noNaN: true })),
      unit: fc.constantFrom(...UNITS),
      unitMultiplier: fc.integer({ min: 1, max: 10 }),
      name: fc.option(text, { nil: undefined }),
    }),
    { nil: undefined },
  ),
  remaining: fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.double({ min: -10, max: 2 ** 40, noNaN: true })),
  resetMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 86_400_000 }), fc.double({ min: 0, max: 1e12, noNaN: true })),
  shadowed: fc.boolean(),
  unlimited: fc.boolean(),
}) as fc.Arbitrary<DescriptorStatus>;

/**
 * google.protobuf.Value of every kind, nested. `__proto__` is left out of the keys: protobufjs'
 * fromObject copies a Struct's fields into a plain object, where that key sets the prototype
 * (meshlimit's own maps have a null prototype and encode it as data).
 */
const structKey = text.filter((k) => k !== '__proto__');
const { value: structValue, struct: wireStruct } = fc.letrec<{ value: WireStructValue; struct: WireStruct }>((tie) => ({
  value: fc.oneof(
    { maxDepth: 3, depthIdentifier: 'struct' },
    fc.constant({ nullValue: 0 as const }),
    fc.double().map((n) => ({ numberValue: n })),
    text.map((s) => ({ stringValue: s })),
    fc.boolean().map((b) => ({ boolValue: b })),
    tie('struct').map((st) => ({ structValue: st })),
    fc.array(tie('value'), { maxLength: 3 }).map((values) => ({ listValue: { values } })),
  ),
  struct: fc.dictionary(structKey, tie('value'), { maxKeys: 3 }).map((fields) => ({ fields })),
}));
const metadataValue = fc.letrec<{ value: MetadataValue }>((tie) => ({
  value: fc.oneof(
    { maxDepth: 3, depthIdentifier: 'metadata' },
    fc.constant(null),
    fc.double(),
    text,
    fc.boolean(),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(structKey, tie('value'), { maxKeys: 3 }),
  ),
})).value;
const requestCheck = fc.record({
  domain: text,
  hitsAddend: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 2 ** 32 })),
  descriptors: fc.array(
    fc.record({
      entries: fc.array(fc.record({ key: text, value: text }), { maxLength: 3 }),
      limitOverride: fc.option(fc.record({ requestsPerUnit: uint32, unit: fc.constantFrom(...UNITS) }), { nil: undefined }),
      hitsAddend: fc.option(fc.integer({ min: 0 }), { nil: undefined }),
    }),
    { maxLength: 3 },
  ),
});

const decision = fc.record({
  code: fc.constantFrom('OK' as const, 'OVER_LIMIT' as const),
  statuses: fc.array(status, { maxLength: 6 }),
  degraded: fc.option(fc.constantFrom('circuit_open' as const, 'backend_error' as const, 'local_fallback' as const), { nil: undefined }),
  metadata: fc.option(fc.dictionary(structKey, metadataValue, { maxKeys: 3 }), { nil: undefined }),
  request: fc.option(requestCheck, { nil: undefined }),
}) as fc.Arbitrary<Decision>;

const headerNames = fc.option(fc.record({ limit: text, remaining: text, reset: text }), { nil: undefined });

/** Wider than decisionToResponse: any int32 enum, any number in uint32/int64 fields, nanos. */
const rawStatus: fc.Arbitrary<WireDescriptorStatus> = fc.record({
  code: int32 as fc.Arbitrary<WireCode>,
  currentLimit: fc.option(fc.record({ name: text, requestsPerUnit: fc.oneof(uint32, fc.double()), unit: int32 }), { nil: undefined }),
  limitRemaining: fc.oneof(uint32, fc.double()),
  durationUntilReset: fc.option(
    fc.record(
      {
        seconds: fc.oneof(
          fc.integer({ min: 0, max: 100_000 }),
          fc.integer(),
          fc.double(),
          fc.constantFrom(2 ** 63, -(2 ** 63), 2 ** 64, 2 ** 53 + 2, 2 ** 32),
        ),
        nanos: fc.oneof(fc.integer(), fc.double()),
      },
      { requiredKeys: ['seconds'] },
    ),
    { nil: undefined },
  ),
});
const rawResponse: fc.Arbitrary<WireRateLimitResponse> = fc.record({
  overallCode: int32 as fc.Arbitrary<WireCode>,
  statuses: fc.array(rawStatus, { maxLength: 5 }),
  responseHeadersToAdd: fc.option(fc.array(fc.record({ key: text, value: text }), { maxLength: 4 }), { nil: undefined }),
  dynamicMetadata: fc.option(
    fc.oneof(fc.record({ fields: fc.dictionary(text, fc.record({ stringValue: text }), { maxKeys: 3 }) }), wireStruct),
    {
      nil: undefined,
    },
  ),
});

it('a Value of every kind encodes byte for byte as proto-loader', () => {
  fc.assert(
    fc.property(structValue, (v) => {
      expectSameEncode({ overallCode: WireCode.OK, statuses: [], responseHeadersToAdd: undefined, dynamicMetadata: { fields: { v } } });
    }),
    { numRuns: 500 },
  );
});

describe('encodeRateLimitResponse', () => {
  it('encodes the three status shapes, headers and metadata byte for byte as proto-loader', () => {
    const res: WireRateLimitResponse = {
      overallCode: WireCode.OVER_LIMIT,
      statuses: [
        {
          code: WireCode.OVER_LIMIT,
          currentLimit: { name: '', requestsPerUnit: 10, unit: 2 },
          limitRemaining: 0,
          durationUntilReset: { seconds: 0 },
        },
        { code: WireCode.OK, currentLimit: undefined, limitRemaining: 0, durationUntilReset: undefined },
        { code: WireCode.OK, currentLimit: undefined, limitRemaining: 4294967295, durationUntilReset: undefined },
      ],
      responseHeadersToAdd: [{ key: 'RateLimit-Limit', value: '10' }],
      dynamicMetadata: { fields: { 'meshlimit.degraded': { stringValue: 'circuit_open' } } },
    };
    const bytes = expectSameEncode(res);
    // proto3 defaults that were given are written (protobufjs does not omit them): name '' and remaining 0
    expect(bytes.subarray(0, 16).toString('hex')).toBe('0802' + '1210' + '0802' + '1206' + '080a' + '1002' + '1a00' + '1800');
  });

  it('encodes the empty response to no bytes', () => {
    expect(
      expectSameEncode({
        overallCode: undefined as unknown as WireCode,
        statuses: [],
        responseHeadersToAdd: undefined,
        dynamicMetadata: undefined,
      }).length,
    ).toBe(0);
  });

  it('property: every decisionToResponse output encodes like proto-loader and reads back', () => {
    fc.assert(
      fc.property(decision, headerNames, fc.option(text, { nil: undefined }), (d, names, degradedHeader) => {
        const res = decisionToResponse(d, names, degradedHeader);
        const bytes = expectSameEncode(res);
        const back = method.responseDeserialize(bytes) as Record<string, unknown> & { statuses: Record<string, unknown>[] };
        expect(back['overallCode']).toBe(res.overallCode);
        expect(back.statuses.map((s) => s['limitRemaining'])).toEqual(res.statuses.map((s) => s.limitRemaining));
        expect(back.statuses.map((s) => s['currentLimit'] === null)).toEqual(res.statuses.map((s) => s.currentLimit === undefined));
        const headers = (res.responseHeadersToAdd ?? []).filter((h) => wellFormed(h.key) && wellFormed(h.value));
        if (headers.length === (res.responseHeadersToAdd ?? []).length) {
          expect(back['responseHeadersToAdd']).toEqual(headers.map((h) => ({ ...h, rawValue: Buffer.alloc(0) })));
        }
      }),
      { numRuns: 1500 },
    );
  });

  it('property: wider raw shapes (any int32 enum, doubles, int64 edges, unicode) encode like proto-loader', () => {
    fc.assert(
      fc.property(rawResponse, (res) => void expectSameEncode(res)),
      { numRuns: 1500 },
    );
  });
});
