/**
 * The decoding half of the hand-written protobuf codec (the encoding half is
 * ./codec-encode.ts) for the one hot method,
 * `envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`: request bytes -> the
 * {@link WireRateLimitRequest} object, {@link WireRateLimitResponse} object -> response bytes.
 * It replaces @grpc/proto-loader's `requestDeserialize` / `responseSerialize` for that method
 * only (`server.ts`); health, clients and the JSON endpoint keep proto-loader.
 *
 * Contract: exactly what proto-loader does with `SERVER_LOADER_OPTIONS` (protobufjs 7
 * `decode` + `toObject`, `fromObject` + `encode`), quirks included, so swapping codecs changes
 * no answer and no accept/reject decision (test/unit/grpc/codec.test.ts checks both against
 * proto-loader on random and hand-built inputs). protobufjs's behaviour, which differs from
 * the protobuf spec in places, is the reference:
 * - a known field is read by its field number whatever its wire type (no wire-type check);
 * - a singular message field that occurs twice is replaced by the later one, not merged;
 * - a string whose length runs past the end of its message is cut at that end, not rejected;
 *   invalid UTF-8 decodes to U+FFFD (Node's decoder), never an error. One addition: the request
 *   then carries `invalidUtf8`, the first such field's name, for `requestToCheck` to reject as
 *   INVALID_ARGUMENT as upstream's Go protobuf does (a throw here would be INTERNAL in grpc-js);
 * - varints: a 32-bit varint longer than 5 bytes skips bytes 6..10 unread; a 64-bit varint
 *   with at most 4 bytes left in its message is read as at most 4 bytes;
 * - unknown fields are skipped by wire type (0, 1, 2, 5 and groups 3..4, nested at most 100
 *   deep); wire types 4 (outside a group), 6 and 7 are errors;
 * - strings shorter than 40 UTF-16 units are encoded by protobufjs's own UTF-8 writer (a lone
 *   surrogate becomes its 3-byte WTF-8 form), longer ones by Node (a lone surrogate becomes
 *   U+FFFD); enum and uint32 numbers are written as `fromObject` + `Writer` write them, and a
 *   field that is set is written even when it holds the proto3 default (protobufjs does not
 *   omit defaults it was given).
 * Error messages are not protobufjs's; both throw on the same inputs.
 *
 * Why: protobufjs's generic path (reflection-built `decode`, `toObject` copying every message
 * again, `fromObject` building a message, a `Writer` with a linked list of operations) was about
 * 5.5% of the service's CPU in a profile under load; this codec reads into the final objects
 * directly and writes into one exactly sized buffer, 2x cheaper to decode and 4x to encode
 * (benchmarks/codec/README.md).
 *
 * Input is a Node `Buffer`, as grpc-js passes it (protobufjs decodes strings of a plain
 * Uint8Array with a different UTF-8 decoder).
 */
import { isUtf8 } from 'node:buffer';
import type { WireDescriptor, WireEntry, WireRateLimitOverride, WireRateLimitRequest } from './mapping.js';

// ---- decoding ------------------------------------------------------------------------------

/** protobufjs `util.recursionLimit` (protoc's default), applied to nested groups. */
const RECURSION_LIMIT = 100;

/** Node's `Buffer#utf8Slice` (what protobufjs's BufferReader decodes strings with). */
interface Utf8SliceBuffer {
  utf8Slice(start: number, end: number): string;
}

function outOfRange(): RangeError {
  return new RangeError('index out of range');
}

/**
 * A read cursor over one request. `len` is the end of the message being read (protobufjs
 * narrows its reader's `len` to the embedded message the same way), so every bound check is
 * against the innermost message.
 */
class Reader {
  pos = 0;
  len: number;
  /** Set by {@link string} when the bytes it decoded were not valid UTF-8; {@link invalidAt} clears it. */
  invalid = false;
  /** The first string field that was not valid UTF-8, named as mapping.ts names fields. */
  invalidField: string | undefined = undefined;

  constructor(readonly buf: Buffer) {
    this.len = buf.length;
  }

  /** protobufjs `Reader#uint32`, including its bound checks and the 10-byte skip. */
  uint32(): number {
    const buf = this.buf;
    let pos = this.pos;
    const len = this.len;
    if (len - pos < 5) {
      if (pos >= len) throw outOfRange();
      if (buf[pos]! >= 128) return this.uint32NearEnd();
    }
    let b = buf[pos++]!;
    let value = b & 127;
    if (b < 128) {
      this.pos = pos;
      return value;
    }
    b = buf[pos++]!;
    value = (value | ((b & 127) << 7)) >>> 0;
    if (b < 128) {
      this.pos = pos;
      return value;
    }
    b = buf[pos++]!;
    value = (value | ((b & 127) << 14)) >>> 0;
    if (b < 128) {
      this.pos = pos;
      return value;
    }
    b = buf[pos++]!;
    value = (value | ((b & 127) << 21)) >>> 0;
    if (b < 128) {
      this.pos = pos;
      return value;
    }
    b = buf[pos++]!;
    value = (value | ((b & 15) << 28)) >>> 0;
    if (b < 128) {
      this.pos = pos;
      return value;
    }
    // A 64-bit varint where a 32-bit one is read: its remaining five bytes are skipped unread.
    pos += 5;
    if (pos > len) {
      this.pos = len;
      throw outOfRange();
    }
    this.pos = pos;
    return value;
  }

  /** protobufjs `readVarint32NearEnd`: fewer than 5 bytes left, at most 4 read. */
  private uint32NearEnd(): number {
    let value = 0;
    for (let i = 0; i < 4; i++) {
      if (this.pos >= this.len) throw outOfRange();
      const b = this.buf[this.pos++]!;
      value = (value | ((b & 127) << (i * 7))) >>> 0;
      if (b < 128) return value;
    }
    throw outOfRange();
  }

  /**
   * protobufjs `readLongVarint` + `Long#toString` (unsigned): a uint64 as a decimal string.
   * Mirrors its two routes, including the short one (4 bytes or fewer left in the message)
   * that reads at most 4 bytes and may step one past the message end, which the enclosing
   * message's end check then rejects.
   */
  uint64String(): string {
    const buf = this.buf;
    let lo = 0;
    let hi = 0;
    let i = 0;
    if (this.len - this.pos > 4) {
      for (; i < 4; ++i) {
        const b = buf[this.pos++]!;
        lo = (lo | ((b & 127) << (i * 7))) >>> 0;
        if (b < 128) return uint64ToString(lo, 0);
      }
      const b = buf[this.pos++]!;
      lo = (lo | ((b & 127) << 28)) >>> 0;
      hi = (hi | ((b & 127) >> 4)) >>> 0;
      if (b < 128) return uint64ToString(lo, hi);
      i = 0;
    } else {
      for (; i < 3; ++i) {
        if (this.pos >= this.len) throw outOfRange();
        const b = buf[this.pos++]!;
        lo = (lo | ((b & 127) << (i * 7))) >>> 0;
        if (b < 128) return uint64ToString(lo, 0);
      }
      // protobufjs reads this byte unchecked (possibly past the message end) and stops here.
      const b = buf[this.pos++] ?? 0;
      lo = (lo | ((b & 127) << (i * 7))) >>> 0;
      return uint64ToString(lo, 0);
    }
    const checked = this.len - this.pos <= 4;
    for (; i < 5; ++i) {
      if (checked && this.pos >= this.len) throw outOfRange();
      const b = buf[this.pos++]!;
      hi = (hi | ((b & 127) << (i * 7 + 3))) >>> 0;
      if (b < 128) return uint64ToString(lo, hi);
    }
    throw new Error('invalid varint encoding');
  }

  /** protobufjs BufferReader#string: the length is clamped to the message end, not checked. */
  string(): string {
    const n = this.uint32();
    const start = this.pos;
    const end = Math.min(start + n, this.len);
    this.pos = end;
    if (end - start <= SHORT_STRING) {
      const ascii = asciiString(this.buf, start, end);
      if (ascii !== undefined) return ascii;
    }
    const s = (this.buf as unknown as Utf8SliceBuffer).utf8Slice(start, end);
    // Every invalid sequence decodes to U+FFFD, so a string without one was valid (the search
    // is immediate on a one-byte string); only one holding U+FFFD has its bytes validated.
    if (s.includes('\ufffd') && !isUtf8(this.buf.subarray(start, end))) this.invalid = true;
    return s;
  }

  /** Records `field` as the request's first invalid UTF-8 string (called when {@link invalid} is set). */
  invalidAt(field: string): void {
    this.invalid = false;
    this.invalidField ??= field;
  }

  /** Opens an embedded message: returns the outer `len` to restore with {@link endMessage}. */
  beginMessage(): number {
    const n = this.uint32();
    const end = this.pos + n;
    if (end > this.len) throw outOfRange();
    const outer = this.len;
    this.len = end;
    return outer;
  }

  endMessage(outer: number): void {
    if (this.pos !== this.len) throw outOfRange();
    this.len = outer;
  }

  /** protobufjs `Reader#skipType`. `depth` is the message depth, then the group nesting. */
  skipType(wireType: number, depth: number): void {
    if (depth > RECURSION_LIMIT) throw new Error('maximum nesting depth exceeded');
    switch (wireType) {
      case 0:
        // Any number of continuation bytes, as protobufjs's `skip()`.
        do {
          if (this.pos >= this.len) throw outOfRange();
        } while (this.buf[this.pos++]! & 128);
        break;
      case 1:
        this.skip(8);
        break;
      case 2:
        this.skip(this.uint32());
        break;
      case 3: {
        let wt: number;
        while ((wt = this.uint32() & 7) !== 4) this.skipType(wt, depth + 1);
        break;
      }
      case 5:
        this.skip(4);
        break;
      default:
        throw new Error(`invalid wire type ${wireType} at offset ${this.pos}`);
    }
  }

  private skip(n: number): void {
    if (this.pos + n > this.len) throw outOfRange();
    this.pos += n;
  }
}

const TWO_32 = 4294967296;

/**
 * ASCII strings up to this many bytes are built in JS: a call into Node's UTF-8 decoder costs
 * ~70 ns, most of an entry's decoding time, and `String.fromCharCode` over a reused array is
 * about half that. ASCII bytes are their own UTF-16 units, so the string is the one
 * `utf8Slice` would return; anything else goes to `utf8Slice`. (Interning repeated keys in a
 * small table was tried: no faster once client IPs vary from request to request.)
 */
const SHORT_STRING = 64;
/** One reused array of char codes per length (index = length). */
const charCodes: number[][] = [];

function asciiString(buf: Buffer, start: number, end: number): string | undefined {
  const n = end - start;
  const codes = (charCodes[n] ??= new Array<number>(n).fill(0));
  for (let i = 0; i < n; i++) {
    const c = buf[start + i]!;
    if (c >= 0x80) return undefined;
    codes[i] = c;
  }
  return String.fromCharCode.apply(null, codes);
}

function uint64ToString(lo: number, hi: number): string {
  if (hi === 0) return String(lo);
  // Exact up to 2^53; beyond, the digits come from BigInt (rare: larger hits_addend values are
  // rejected by mapping.ts anyway, but the string must be the exact one).
  if (hi < 0x200000) return String(hi * TWO_32 + lo);
  return ((BigInt(hi) << 32n) | BigInt(lo)).toString();
}

/**
 * Decodes a `RateLimitRequest` into the object proto-loader's `requestDeserialize` returns with
 * `SERVER_LOADER_OPTIONS` (same keys in the same order, defaults filled, absent messages null,
 * the UInt64Value as a decimal string). Throws where protobufjs throws.
 */
export function decodeRateLimitRequest(buf: Buffer): WireRateLimitRequest {
  const r = new Reader(buf);
  let domain = '';
  let hitsAddend = 0;
  const descriptors: WireDescriptor[] = [];
  while (r.pos < r.len) {
    const t = r.uint32();
    switch (t >>> 3) {
      case 1:
        domain = r.string();
        if (r.invalid) r.invalidAt('domain');
        break;
      case 2:
        descriptors.push(decodeDescriptor(r, descriptors.length));
        break;
      case 3:
        hitsAddend = r.uint32();
        break;
      default:
        r.skipType(t & 7, 0);
    }
  }
  return r.invalidField === undefined
    ? { descriptors, domain, hitsAddend }
    : { descriptors, domain, hitsAddend, invalidUtf8: r.invalidField };
}

/** `envoy.extensions.common.ratelimit.v3.RateLimitDescriptor` (message depth 1), the request's descriptor `d`. */
function decodeDescriptor(r: Reader, d: number): WireDescriptor {
  const outer = r.beginMessage();
  const entries: WireEntry[] = [];
  let limit: WireRateLimitOverride | null = null;
  let hitsAddend: { value: string } | null = null;
  while (r.pos < r.len) {
    const t = r.uint32();
    switch (t >>> 3) {
      case 1:
        entries.push(decodeEntry(r, d, entries.length));
        break;
      case 2:
        limit = decodeOverride(r);
        break;
      case 3:
        hitsAddend = decodeUInt64Value(r);
        break;
      default:
        r.skipType(t & 7, 1);
    }
  }
  r.endMessage(outer);
  return { entries, limit, hitsAddend };
}

/** `RateLimitDescriptor.Entry` (message depth 2), entry `e` of descriptor `d`. */
function decodeEntry(r: Reader, d: number, e: number): WireEntry {
  const outer = r.beginMessage();
  let key = '';
  let value = '';
  while (r.pos < r.len) {
    const t = r.uint32();
    switch (t >>> 3) {
      case 1:
        key = r.string();
        if (r.invalid) r.invalidAt(`descriptors[${d}].entries[${e}].key`);
        break;
      case 2:
        value = r.string();
        if (r.invalid) r.invalidAt(`descriptors[${d}].entries[${e}].value`);
        break;
      default:
        r.skipType(t & 7, 2);
    }
  }
  r.endMessage(outer);
  return { key, value };
}

/** `RateLimitDescriptor.RateLimitOverride` (message depth 2); `unit` is an int32 enum. */
function decodeOverride(r: Reader): WireRateLimitOverride {
  const outer = r.beginMessage();
  let requestsPerUnit = 0;
  let unit = 0;
  while (r.pos < r.len) {
    const t = r.uint32();
    switch (t >>> 3) {
      case 1:
        requestsPerUnit = r.uint32();
        break;
      case 2:
        unit = r.uint32() | 0;
        break;
      default:
        r.skipType(t & 7, 2);
    }
  }
  r.endMessage(outer);
  return { requestsPerUnit, unit };
}

/** `google.protobuf.UInt64Value` (message depth 2); `longs: String`. */
function decodeUInt64Value(r: Reader): { value: string } {
  const outer = r.beginMessage();
  let value = '0';
  while (r.pos < r.len) {
    const t = r.uint32();
    if (t >>> 3 === 1) value = r.uint64String();
    else r.skipType(t & 7, 2);
  }
  r.endMessage(outer);
  return { value };
}
