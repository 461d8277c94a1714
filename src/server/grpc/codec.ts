/**
 * A hand-written protobuf codec for the one hot method,
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
 *   invalid UTF-8 decodes to U+FFFD (Node's decoder), never an error;
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
import type {
  WireDescriptor,
  WireDescriptorStatus,
  WireDuration,
  WireEntry,
  WireHeaderValue,
  WireRateLimit,
  WireRateLimitOverride,
  WireRateLimitRequest,
  WireRateLimitResponse,
  WireStruct,
} from './mapping.js';

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
    return (this.buf as unknown as Utf8SliceBuffer).utf8Slice(start, end);
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
        break;
      case 2:
        descriptors.push(decodeDescriptor(r));
        break;
      case 3:
        hitsAddend = r.uint32();
        break;
      default:
        r.skipType(t & 7, 0);
    }
  }
  return { descriptors, domain, hitsAddend };
}

/** `envoy.extensions.common.ratelimit.v3.RateLimitDescriptor` (message depth 1). */
function decodeDescriptor(r: Reader): WireDescriptor {
  const outer = r.beginMessage();
  const entries: WireEntry[] = [];
  let limit: WireRateLimitOverride | null = null;
  let hitsAddend: { value: string } | null = null;
  while (r.pos < r.len) {
    const t = r.uint32();
    switch (t >>> 3) {
      case 1:
        entries.push(decodeEntry(r));
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

/** `RateLimitDescriptor.Entry` (message depth 2). */
function decodeEntry(r: Reader): WireEntry {
  const outer = r.beginMessage();
  let key = '';
  let value = '';
  while (r.pos < r.len) {
    const t = r.uint32();
    switch (t >>> 3) {
      case 1:
        key = r.string();
        break;
      case 2:
        value = r.string();
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

// ---- encoding ------------------------------------------------------------------------------
//
// Two passes: sizes first (string byte lengths and message sizes pushed, in write order, onto
// one reused scratch array), then a single write into a buffer of exactly that size. The
// scratch array makes the encoder non-reentrant, which is fine: it is synchronous.

const sizes: number[] = [];
let sizeCursor = 0;

/** Reserves the next slot (a message size known only after its fields); fill it with `sizes[at] = n`. */
function reserve(): number {
  sizes.push(0);
  return sizes.length - 1;
}

function nextSize(): number {
  return sizes[sizeCursor++]!;
}

function varint32Size(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

/** Length of the minimal varint of a 64-bit value (protobufjs `LongBits#length`). */
function varint64Size(lo: number, hi: number): number {
  if (hi === 0) return varint32Size(lo);
  const part1 = ((lo >>> 28) | (hi << 4)) >>> 0;
  const part2 = hi >>> 24;
  if (part2 === 0) return part1 < 0x4000 ? (part1 < 0x80 ? 5 : 6) : part1 < 0x200000 ? 7 : 8;
  return part2 < 0x80 ? 9 : 10;
}

/**
 * UTF-8 byte length as `Buffer.byteLength` counts it (a lone surrogate counts 3, which is the
 * length of both its WTF-8 form and U+FFFD).
 */
function utf8Length(s: string): number {
  const n = s.length;
  let len = n;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) len += 1;
    else if ((c & 0xfc00) === 0xd800 && i + 1 < n && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      len += 2; // 4 bytes for 2 units
      i++;
    } else len += 2;
  }
  return len;
}

// 64-bit values as two uint32 halves, returned through these two variables (no allocation).
let bitsLo = 0;
let bitsHi = 0;

/** 64-bit two's complement bits of a number, as protobufjs `LongBits.fromNumber`. */
function longBitsFromNumber(value: number): void {
  if (value === 0) {
    bitsLo = bitsHi = 0;
    return;
  }
  const sign = value < 0;
  if (sign) value = -value;
  let lo = value >>> 0;
  let hi = ((value - lo) / TWO_32) >>> 0;
  if (sign) {
    hi = ~hi >>> 0;
    lo = ~lo >>> 0;
    if (++lo > 0xffffffff) {
      lo = 0;
      if (++hi > 0xffffffff) hi = 0;
    }
  }
  bitsLo = lo;
  bitsHi = hi;
}

/** Bits of an int64 given as a number, as protobufjs `Long.fromValue(n, false)` (`Long.fromNumber`). */
function int64BitsFromNumber(value: number): void {
  if (Number.isNaN(value)) {
    bitsLo = bitsHi = 0;
  } else if (value <= -9223372036854775808) {
    bitsLo = 0;
    bitsHi = 0x80000000;
  } else if (value + 1 >= 9223372036854775808) {
    bitsLo = 0xffffffff;
    bitsHi = 0x7fffffff;
  } else {
    const b = BigInt.asUintN(64, BigInt(Math.trunc(value)));
    bitsLo = Number(b & 0xffffffffn);
    bitsHi = Number(b >> 32n);
  }
}

/** Size of an int32 field value as protobufjs `Writer#int32` writes it (negative: 10 bytes). */
function int32Size(v: number): number {
  if (v < 0) {
    longBitsFromNumber(v);
    return varint64Size(bitsLo, bitsHi);
  }
  return varint32Size(v >>> 0);
}

/** Size of an int64 value written by `Writer#int64` from `Long.fromValue(n)`. */
function int64Size(v: number): number {
  if (v >= 0 && v <= 0xffffffff && v % 1 === 0) return varint32Size(v);
  int64BitsFromNumber(v);
  return varint64Size(bitsLo, bitsHi);
}

/** A string field's bytes after its tag: length prefix + UTF-8. Records the byte length. */
function stringFieldSize(s: string): number {
  const n = utf8Length(s);
  sizes.push(n);
  return varint32Size(n) + n;
}

/** An embedded message's bytes after its tag, its body size recorded at slot `at`. */
function messageFieldSize(at: number, body: number): number {
  sizes[at] = body;
  return varint32Size(body) + body;
}

/** protobufjs `fromObject` keeps an enum given as a number, whatever the number. */
function isEnumNumber(v: unknown): v is number {
  return typeof v === 'number';
}

function rateLimitSize(m: WireRateLimit): number {
  let n = 0;
  if (m.requestsPerUnit != null) n += 1 + varint32Size(m.requestsPerUnit >>> 0);
  if (isEnumNumber(m.unit)) n += 1 + int32Size(m.unit);
  if (m.name != null) n += 1 + stringFieldSize(String(m.name));
  return n;
}

function durationSize(m: WireDuration): number {
  let n = 0;
  if (m.seconds != null) n += 1 + int64Size(m.seconds);
  if (m.nanos != null) n += 1 + int32Size(m.nanos | 0);
  return n;
}

function statusSize(s: WireDescriptorStatus): number {
  let n = 0;
  if (isEnumNumber(s.code)) n += 1 + int32Size(s.code);
  if (s.currentLimit != null) {
    const at = reserve();
    n += 1 + messageFieldSize(at, rateLimitSize(s.currentLimit));
  }
  if (s.limitRemaining != null) n += 1 + varint32Size(s.limitRemaining >>> 0);
  if (s.durationUntilReset != null) {
    const at = reserve();
    n += 1 + messageFieldSize(at, durationSize(s.durationUntilReset));
  }
  return n;
}

function headerSize(h: WireHeaderValue): number {
  let n = 0;
  if (h.key != null) n += 1 + stringFieldSize(String(h.key));
  if (h.value != null) n += 1 + stringFieldSize(String(h.value));
  return n;
}

/**
 * `google.protobuf.Struct` whose values are string Values: one map entry per key,
 * `{1: key, 2: Value {3: string}}`; slots per entry: entry size, value size, key, string.
 */
function structSize(m: WireStruct): number {
  let n = 0;
  const fields = m.fields;
  if (fields) {
    for (const key of Object.keys(fields)) {
      const entryAt = reserve();
      const valueAt = reserve();
      let entry = 1 + stringFieldSize(key);
      const v = fields[key]!;
      const value = v.stringValue != null ? 1 + stringFieldSize(String(v.stringValue)) : 0;
      entry += 1 + messageFieldSize(valueAt, value);
      n += 1 + messageFieldSize(entryAt, entry);
    }
  }
  return n;
}

/** Total size; fills `sizes` in the order the write pass consumes them. */
function responseSize(res: WireRateLimitResponse): number {
  let n = 0;
  if (isEnumNumber(res.overallCode)) n += 1 + int32Size(res.overallCode);
  const statuses = res.statuses;
  if (statuses) {
    for (let i = 0; i < statuses.length; i++) {
      const at = reserve();
      n += 1 + messageFieldSize(at, statusSize(statuses[i]!));
    }
  }
  const headers = res.responseHeadersToAdd;
  if (headers) {
    for (let i = 0; i < headers.length; i++) {
      const at = reserve();
      n += 1 + messageFieldSize(at, headerSize(headers[i]!));
    }
  }
  if (res.dynamicMetadata != null) {
    const at = reserve();
    n += 1 + messageFieldSize(at, structSize(res.dynamicMetadata));
  }
  return n;
}

/** Write cursor; `buf` has exactly the message's size. */
class Writer {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  varint32(v: number): void {
    const buf = this.buf;
    while (v > 127) {
      buf[this.pos++] = (v & 127) | 128;
      v >>>= 7;
    }
    buf[this.pos++] = v;
  }

  varint64(lo: number, hi: number): void {
    const buf = this.buf;
    while (hi) {
      buf[this.pos++] = (lo & 127) | 128;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    this.varint32(lo);
  }

  int32(v: number): void {
    if (v < 0) {
      longBitsFromNumber(v);
      this.varint64(bitsLo, bitsHi);
    } else this.varint32(v >>> 0);
  }

  int64(v: number): void {
    if (v >= 0 && v <= 0xffffffff && v % 1 === 0) this.varint32(v);
    else {
      int64BitsFromNumber(v);
      this.varint64(bitsLo, bitsHi);
    }
  }

  /** Length prefix + UTF-8, the length taken from the size pass. */
  string(s: string): void {
    const n = nextSize();
    this.varint32(n);
    if (n === 0) return;
    if (s.length < 40) this.utf8Short(s);
    else this.pos += this.buf.write(s, this.pos, n, 'utf8');
  }

  /** protobufjs `utf8.write`, used by its BufferWriter for strings shorter than 40 units. */
  private utf8Short(s: string): void {
    const buf = this.buf;
    let pos = this.pos;
    for (let i = 0; i < s.length; i++) {
      let c1 = s.charCodeAt(i);
      let c2: number;
      if (c1 < 128) {
        buf[pos++] = c1;
      } else if (c1 < 2048) {
        buf[pos++] = (c1 >> 6) | 192;
        buf[pos++] = (c1 & 63) | 128;
      } else if ((c1 & 0xfc00) === 0xd800 && ((c2 = s.charCodeAt(i + 1)) & 0xfc00) === 0xdc00) {
        c1 = 0x10000 + ((c1 & 0x03ff) << 10) + (c2 & 0x03ff);
        ++i;
        buf[pos++] = (c1 >> 18) | 240;
        buf[pos++] = ((c1 >> 12) & 63) | 128;
        buf[pos++] = ((c1 >> 6) & 63) | 128;
        buf[pos++] = (c1 & 63) | 128;
      } else {
        buf[pos++] = (c1 >> 12) | 224;
        buf[pos++] = ((c1 >> 6) & 63) | 128;
        buf[pos++] = (c1 & 63) | 128;
      }
    }
    this.pos = pos;
  }
}

function writeRateLimit(w: Writer, m: WireRateLimit): void {
  if (m.requestsPerUnit != null) {
    w.buf[w.pos++] = 0x08;
    w.varint32(m.requestsPerUnit >>> 0);
  }
  if (isEnumNumber(m.unit)) {
    w.buf[w.pos++] = 0x10;
    w.int32(m.unit);
  }
  if (m.name != null) {
    w.buf[w.pos++] = 0x1a;
    w.string(String(m.name));
  }
}

function writeDuration(w: Writer, m: WireDuration): void {
  if (m.seconds != null) {
    w.buf[w.pos++] = 0x08;
    w.int64(m.seconds);
  }
  if (m.nanos != null) {
    w.buf[w.pos++] = 0x10;
    w.int32(m.nanos | 0);
  }
}

function writeStatus(w: Writer, s: WireDescriptorStatus): void {
  w.buf[w.pos++] = 0x12;
  w.varint32(nextSize());
  if (isEnumNumber(s.code)) {
    w.buf[w.pos++] = 0x08;
    w.int32(s.code);
  }
  if (s.currentLimit != null) {
    w.buf[w.pos++] = 0x12;
    w.varint32(nextSize());
    writeRateLimit(w, s.currentLimit);
  }
  if (s.limitRemaining != null) {
    w.buf[w.pos++] = 0x18;
    w.varint32(s.limitRemaining >>> 0);
  }
  if (s.durationUntilReset != null) {
    w.buf[w.pos++] = 0x22;
    w.varint32(nextSize());
    writeDuration(w, s.durationUntilReset);
  }
}

function writeHeader(w: Writer, h: WireHeaderValue): void {
  w.buf[w.pos++] = 0x1a;
  w.varint32(nextSize());
  if (h.key != null) {
    w.buf[w.pos++] = 0x0a;
    w.string(String(h.key));
  }
  if (h.value != null) {
    w.buf[w.pos++] = 0x12;
    w.string(String(h.value));
  }
}

function writeStruct(w: Writer, m: WireStruct): void {
  const fields = m.fields;
  if (!fields) return;
  for (const key of Object.keys(fields)) {
    const entry = nextSize();
    const valueSize = nextSize();
    w.buf[w.pos++] = 0x0a;
    w.varint32(entry);
    w.buf[w.pos++] = 0x0a;
    w.string(key);
    w.buf[w.pos++] = 0x12;
    w.varint32(valueSize);
    const v = fields[key]!;
    if (v.stringValue != null) {
      w.buf[w.pos++] = 0x1a;
      w.string(String(v.stringValue));
    }
  }
}

/**
 * Encodes a `RateLimitResponse` byte for byte as proto-loader's `responseSerialize` does for
 * the shapes `decisionToResponse` builds (enums as numbers, Struct values as `stringValue`).
 */
export function encodeRateLimitResponse(res: WireRateLimitResponse): Buffer {
  sizes.length = 0;
  sizeCursor = 0;
  const size = responseSize(res);
  const w = new Writer(Buffer.allocUnsafe(size));
  if (isEnumNumber(res.overallCode)) {
    w.buf[w.pos++] = 0x08;
    w.int32(res.overallCode);
  }
  const statuses = res.statuses;
  if (statuses) for (let i = 0; i < statuses.length; i++) writeStatus(w, statuses[i]!);
  const headers = res.responseHeadersToAdd;
  if (headers) for (let i = 0; i < headers.length; i++) writeHeader(w, headers[i]!);
  if (res.dynamicMetadata != null) {
    w.buf[w.pos++] = 0x32;
    w.varint32(nextSize());
    writeStruct(w, res.dynamicMetadata);
  }
  if (w.pos !== size) throw new Error(`RateLimitResponse encoder wrote ${w.pos} bytes, sized ${size}`);
  return w.buf;
}
