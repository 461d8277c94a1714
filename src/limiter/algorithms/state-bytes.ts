/**
 * The stored form of a counter's state, shared with Lua: one tag byte, then little-endian IEEE-754
 * doubles, exactly what `struct.pack('<Bdd', tag, a, b)` (or `'<Bddd'`) writes in the scripts.
 * A state is a *byte string* here: a JavaScript string whose every char code is one byte (0-255,
 * "latin1"), which is how the memory backend stores it and how a Redis value reads back with
 * `getBuffer(key).toString('latin1')`.
 *
 * Why binary and not "digits:digits": reading a state in Lua is then one `struct.unpack` instead
 * of a pattern match and a strtod per field, and writing it one `struct.pack` instead of a
 * sprintf; every double round-trips exactly, so there is no number-formatting twin to keep in
 * step with JavaScript's (see benchmarks/redis-cpu for the figures).
 */

const scratch = new DataView(new ArrayBuffer(24));

/** The tag byte of each algorithm's state ('F', 'S', 'T'): a value of another algorithm is foreign. */
export const STATE_TAG = Object.freeze({ fixed_window: 0x46, sliding_window: 0x53, token_bucket: 0x54 });

/** Where {@link packState} assembles a state: tag byte + up to three doubles. */
const packed = Buffer.alloc(25);

/**
 * `struct.pack('<Bdd[d]', tag, ...fields)` as a byte string. One flat string read out of a
 * scratch buffer: appending one char per byte would build a chain of 25 cons-strings that V8
 * keeps until the string is read again (about 0.8 KiB per stored counter in the memory backend,
 * measured with a million counters).
 */
export function packState(tag: number, a: number, b: number, c?: number): string {
  packed[0] = tag;
  packed.writeDoubleLE(a, 1);
  packed.writeDoubleLE(b, 9);
  if (c === undefined) return packed.toString('latin1', 0, 17);
  packed.writeDoubleLE(c, 17);
  return packed.toString('latin1', 0, 25);
}

/**
 * The fields of a state packed by {@link packState} with `tag` and `fields` doubles, or undefined
 * when `raw` is not one (wrong length or tag, or a char that is not a byte).
 */
export function unpackState(raw: string, tag: number, fields: 2 | 3): number[] | undefined {
  const n = 8 * fields;
  if (raw.length !== n + 1 || raw.charCodeAt(0) !== tag) return undefined;
  let any = 0;
  for (let i = 0; i < n; i++) {
    const b = raw.charCodeAt(i + 1);
    any |= b;
    scratch.setUint8(i, b);
  }
  if (any > 0xff) return undefined;
  const out = [scratch.getFloat64(0, true), scratch.getFloat64(8, true)];
  if (fields === 3) out.push(scratch.getFloat64(16, true));
  return out;
}

/**
 * The decimal text form versions before the binary state wrote ("<a>:<b>" or "<a>:<b>:<c>",
 * digits only), read as Lua's `string.match(raw, '^(%d+):(%d+)$')` and `tonumber` read it; a field
 * too long to be finite comes back as Infinity (the algorithms reject it).
 */
export function legacyFields(raw: string, fields: 2 | 3): number[] | undefined {
  const m = (fields === 2 ? LEGACY2 : LEGACY3).exec(raw);
  if (m === null) return undefined;
  return fields === 2 ? [Number(m[1]), Number(m[2])] : [Number(m[1]), Number(m[2]), Number(m[3])];
}
const LEGACY2 = /^(\d+):(\d+)$/;
const LEGACY3 = /^(\d+):(\d+):(\d+)$/;

/**
 * A stored state as readable text, for logs, debugging and tests: "F <start>:<count>",
 * "S <start>:<cur>:<prev>", "T <level>:<last>:<armed>"; any other value (the decimal text of
 * earlier versions, a foreign value, undefined or null) is returned unchanged.
 */
export function stateText<T extends string | null | undefined>(raw: T): T | string {
  if (typeof raw !== 'string') return raw;
  for (const [name, tag, fields] of [
    ['F', STATE_TAG.fixed_window, 2],
    ['S', STATE_TAG.sliding_window, 3],
    ['T', STATE_TAG.token_bucket, 3],
  ] as const) {
    const f = unpackState(raw, tag, fields);
    if (f !== undefined) return `${name} ${f.join(':')}`;
  }
  return raw;
}
