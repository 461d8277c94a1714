/**
 * Wire-format primitives of the hand-written ShouldRateLimit encoder (./codec-encode.ts): the
 * size pass's scratch array, varint and UTF-8 sizes, 64-bit numbers as two uint32 halves, and
 * the write cursor. Exactly protobufjs's arithmetic (see the contract in ./codec-decode.ts).
 */

// Two passes: sizes first (string byte lengths and message sizes pushed, in write order, onto
// one reused scratch array), then a single write into a buffer of exactly that size. The
// scratch array makes the encoder non-reentrant, which is fine: it is synchronous.

/** 2^32: the two halves of a 64-bit number. */
const TWO_32 = 4294967296;

export const sizes: number[] = [];
let sizeCursor = 0;

/** Starts a message: empties the scratch array (the size pass fills it, the write pass reads it in order). */
export function resetSizes(): void {
  sizes.length = 0;
  sizeCursor = 0;
}

/** Reserves the next slot (a message size known only after its fields); fill it with `sizes[at] = n`. */
export function reserve(): number {
  sizes.push(0);
  return sizes.length - 1;
}

export function nextSize(): number {
  return sizes[sizeCursor++]!;
}

export function varint32Size(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

/** Length of the minimal varint of a 64-bit value (protobufjs `LongBits#length`). */
export function varint64Size(lo: number, hi: number): number {
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
export function utf8Length(s: string): number {
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
export function longBitsFromNumber(value: number): void {
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
export function int64BitsFromNumber(value: number): void {
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
export function int32Size(v: number): number {
  if (v < 0) {
    longBitsFromNumber(v);
    return varint64Size(bitsLo, bitsHi);
  }
  return varint32Size(v >>> 0);
}

/** Size of an int64 value written by `Writer#int64` from `Long.fromValue(n)`. */
export function int64Size(v: number): number {
  if (v >= 0 && v <= 0xffffffff && v % 1 === 0) return varint32Size(v);
  int64BitsFromNumber(v);
  return varint64Size(bitsLo, bitsHi);
}

/** A string field's bytes after its tag: length prefix + UTF-8. Records the byte length. */
export function stringFieldSize(s: string): number {
  const n = utf8Length(s);
  sizes.push(n);
  return varint32Size(n) + n;
}

/** An embedded message's bytes after its tag, its body size recorded at slot `at`. */
export function messageFieldSize(at: number, body: number): number {
  sizes[at] = body;
  return varint32Size(body) + body;
}

/** protobufjs `fromObject` keeps an enum given as a number, whatever the number. */
export function isEnumNumber(v: unknown): v is number {
  return typeof v === 'number';
}

/** Write cursor; `buf` has exactly the message's size. */
export class Writer {
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

  /** A little-endian IEEE-754 double (protobufjs `Writer#double`). */
  double(v: number): void {
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
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
