/**
 * Redis Cluster hash slots, computed as the servers do (cluster spec, "Keys distribution model"):
 * slot = CRC16(k) mod 16384 with the CRC16-CCITT (XMODEM) variant, where k is the hash tag (the
 * bytes between the first `{` and the first `}` after it, when non-empty) or else the whole key,
 * as UTF-8 bytes.
 *
 * Written here rather than imported: ioredis does not export its `cluster-key-slot` dependency,
 * and a transitive package is not ours to import. Checked against the spec's test vector and
 * against CLUSTER KEYSLOT on a real cluster (test/unit/backend/slot.test.ts,
 * test/integration/cluster/).
 */

export const CLUSTER_SLOTS = 16_384;

const TABLE = ((): Uint16Array => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let b = 0; b < 8; b++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    t[i] = crc;
  }
  return t;
})();

/** CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0) of `bytes[from, to)`. */
export function crc16(bytes: Uint8Array, from = 0, to = bytes.length): number {
  let crc = 0;
  for (let i = from; i < to; i++) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ bytes[i]!) & 0xff]!;
  return crc;
}

/** CRC16 of a string's UTF-8 bytes; ASCII (every key keys.ts builds) skips the encoding. */
function crc16String(s: string): number {
  let crc = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) return crc16(Buffer.from(s, 'utf8'));
    crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ c) & 0xff]!;
  }
  return crc;
}

/** The hash slot of `key`. `{` and `}` are ASCII, so searching the string finds the same bytes. */
export function keySlot(key: string): number {
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) return crc16String(key.slice(open + 1, close)) & (CLUSTER_SLOTS - 1);
  }
  return crc16String(key) & (CLUSTER_SLOTS - 1);
}
