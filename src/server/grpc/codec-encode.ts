/**
 * The encoding half of the hand-written protobuf codec for
 * `envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit` (the contract, and why the codec
 * exists, head ./codec-decode.ts): a {@link WireRateLimitResponse} object -> the bytes
 * proto-loader's `responseSerialize` would write with `SERVER_LOADER_OPTIONS` (protobufjs
 * `fromObject` + `encode`), quirks included: strings shorter than 40 UTF-16 units are encoded by
 * protobufjs's own UTF-8 writer (a lone surrogate becomes its 3-byte WTF-8 form), longer ones by
 * Node (a lone surrogate becomes U+FFFD); enum and uint32 numbers are written as `fromObject` +
 * `Writer` write them, and a field that is set is written even when it holds the proto3 default.
 */
import type {
  WireDescriptorStatus,
  WireDuration,
  WireHeaderValue,
  WireListValue,
  WireRateLimit,
  WireRateLimitResponse,
  WireStruct,
  WireStructValue,
} from './mapping.js';
import {
  int32Size,
  int64Size,
  isEnumNumber,
  messageFieldSize,
  nextSize,
  reserve,
  resetSizes,
  stringFieldSize,
  varint32Size,
  Writer,
} from './codec-writer.js';

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
 * `google.protobuf.Struct`: one map entry per key, `{1: key, 2: Value}`, in `Object.keys` order
 * as protobufjs writes them; slots per entry: entry size, key, value size, then the value's.
 */
function structSize(m: WireStruct): number {
  let n = 0;
  const fields = m.fields;
  if (fields) {
    for (const key of Object.keys(fields)) {
      const entryAt = reserve();
      let entry = 1 + stringFieldSize(key);
      const valueAt = reserve();
      entry += 1 + messageFieldSize(valueAt, valueSize(fields[key]!));
      n += 1 + messageFieldSize(entryAt, entry);
    }
  }
  return n;
}

/**
 * `google.protobuf.Value`: every field that is set, in field order (protobufjs writes each set
 * field; a well-formed Value has one): null_value 1 (enum), number_value 2 (double),
 * string_value 3, bool_value 4, struct_value 5, list_value 6.
 */
function valueSize(v: WireStructValue): number {
  let n = 0;
  if (v.nullValue != null) n += 1 + int32Size(v.nullValue);
  if (v.numberValue != null) n += 9;
  if (v.stringValue != null) n += 1 + stringFieldSize(String(v.stringValue));
  if (v.boolValue != null) n += 2;
  if (v.structValue != null) {
    const at = reserve();
    n += 1 + messageFieldSize(at, structSize(v.structValue));
  }
  if (v.listValue != null) {
    const at = reserve();
    n += 1 + messageFieldSize(at, listSize(v.listValue));
  }
  return n;
}

/** `google.protobuf.ListValue`: `values` (1), each a Value with its size slot first. */
function listSize(l: WireListValue): number {
  let n = 0;
  const values = l.values;
  if (values) {
    for (let i = 0; i < values.length; i++) {
      const at = reserve();
      n += 1 + messageFieldSize(at, valueSize(values[i]!));
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
    w.buf[w.pos++] = 0x0a;
    w.varint32(nextSize());
    w.buf[w.pos++] = 0x0a;
    w.string(key);
    w.buf[w.pos++] = 0x12;
    w.varint32(nextSize());
    writeValue(w, fields[key]!);
  }
}

function writeValue(w: Writer, v: WireStructValue): void {
  if (v.nullValue != null) {
    w.buf[w.pos++] = 0x08;
    w.int32(v.nullValue);
  }
  if (v.numberValue != null) {
    w.buf[w.pos++] = 0x11;
    w.double(Number(v.numberValue));
  }
  if (v.stringValue != null) {
    w.buf[w.pos++] = 0x1a;
    w.string(String(v.stringValue));
  }
  if (v.boolValue != null) {
    w.buf[w.pos++] = 0x20;
    w.buf[w.pos++] = v.boolValue ? 1 : 0;
  }
  if (v.structValue != null) {
    w.buf[w.pos++] = 0x2a;
    w.varint32(nextSize());
    writeStruct(w, v.structValue);
  }
  if (v.listValue != null) {
    w.buf[w.pos++] = 0x32;
    w.varint32(nextSize());
    const values = v.listValue.values;
    if (values) {
      for (let i = 0; i < values.length; i++) {
        w.buf[w.pos++] = 0x0a;
        w.varint32(nextSize());
        writeValue(w, values[i]!);
      }
    }
  }
}

/**
 * Encodes a `RateLimitResponse` byte for byte as proto-loader's `responseSerialize` does for
 * the shapes `decisionToResponse` builds (enums as numbers, Struct values of every kind).
 */
export function encodeRateLimitResponse(res: WireRateLimitResponse): Buffer {
  resetSizes();
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
