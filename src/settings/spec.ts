import { availableParallelism } from 'node:os';
import { SettingsError } from '../errors.js';

/**
 * What a setting is (one row of the table in ./table.ts) and the parsers its rows use. Each
 * parser returns the typed value or throws {@link InvalidValue} with a detail message, without the
 * variable name (the loader adds it).
 */

export const SETTING_GROUPS = [
  'http',
  'grpc',
  'rlqs',
  'config',
  'xds',
  'backend',
  'redis',
  'resilience',
  'limiter',
  'headers',
  'log',
  'tracing',
  'lifecycle',
] as const;
export type SettingGroup = (typeof SETTING_GROUPS)[number];

/** One declared environment variable. */
export interface SettingSpec<T = unknown> {
  readonly name: string;
  readonly group: SettingGroup;
  /** The default, written as it would be in the environment; undefined when the setting has none. */
  readonly default: string | undefined;
  /** What it does, in README quality: units, accepted values, and how it differs from envoyproxy/ratelimit. */
  readonly description: string;
  /** The value is a credential: never echoed in errors, logs or `redactedSettings`. */
  readonly secret: boolean;
  /**
   * Parses a raw value (non-empty when it comes from the environment, possibly empty when it is
   * the default); throws {@link InvalidValue} with a detail message.
   */
  readonly parse: (raw: string) => T;
}

/** What a parser throws: a detail message, without the variable name (the loader adds it). */
export class InvalidValue extends Error {}

/** Several invalid settings at once; `errors` holds one {@link SettingsError} per variable, in table order. */
export class SettingsErrors extends SettingsError {
  constructor(readonly errors: readonly SettingsError[]) {
    super(errors[0]?.setting ?? '', '');
    this.message = errors.map((e) => e.message).join('\n');
  }
}

// Parsers.

const BOOL_TRUE = new Set(['1', 't', 'true', 'y', 'yes', 'on']);
const BOOL_FALSE = new Set(['0', 'f', 'false', 'n', 'no', 'off']);

/**
 * Go's strconv.ParseBool set (1, t, true, 0, f, false; envoyproxy/ratelimit uses it) in any case,
 * plus yes/no, y/n and on/off.
 */
export function parseBool(raw: string): boolean {
  const v = raw.trim().toLowerCase();
  if (BOOL_TRUE.has(v)) return true;
  if (BOOL_FALSE.has(v)) return false;
  throw new InvalidValue(`expected a boolean (true/false, 1/0, t/f, yes/no, y/n, on/off; any case), got ${JSON.stringify(raw)}`);
}

export function integer(min: number, max: number): (raw: string) => number {
  return (raw) => {
    const v = raw.trim();
    const n = /^\d+$/.test(v) ? Number(v) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidValue(`expected an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
    }
    return n;
  };
}

export const port = integer(0, 65_535);

const GO_DURATION = /^(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h))+$/;
const GO_DURATION_PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)/g;
const GO_UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  '\u00b5s': 1e-3,
  '\u03bcs': 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * A Go duration (`time.ParseDuration`, what envoyproxy/ratelimit reads its durations with):
 * `300ms`, `3s`, `1m30s`, `1.5h`, or `0`; a number needs its unit. Returns milliseconds, rounded
 * up so that a positive duration never becomes 0 (`500us` is 1 ms; `1.1s` is exactly 1100).
 * Negative durations are rejected (Go accepts them; no setting here has a use for one). Bounds
 * in ms; `minMs` 1 reads as "above 0".
 */
export function goDuration(minMs = 0, maxMs = Number.POSITIVE_INFINITY): (raw: string) => number {
  return (raw) => {
    const v = raw.trim();
    if (v !== '0' && !GO_DURATION.test(v)) {
      throw new InvalidValue(
        `expected a duration such as 500ms, 30s or 1h30m (a number and a unit: ns, us, ms, s, m, h), got ${JSON.stringify(raw)}`,
      );
    }
    let total = 0;
    for (const m of v.matchAll(GO_DURATION_PART)) total += Number(m[1]) * GO_UNIT_MS[m[2]!]!;
    // Whole nanoseconds first, so that decimal parts such as 1.1s do not round up to 1101 ms.
    const ms = Math.ceil(Math.round(total * 1e6) / 1e6);
    if (ms >= minMs && ms <= maxMs) return ms;
    if (maxMs === Number.POSITIVE_INFINITY) {
      throw new InvalidValue(
        minMs === 1
          ? `expected a duration above 0, got ${JSON.stringify(raw)}`
          : `expected a duration of at least ${minMs}ms, got ${JSON.stringify(raw)}`,
      );
    }
    throw new InvalidValue(`expected a duration from ${minMs}ms to ${maxMs / 1000}s, got ${JSON.stringify(raw)}`);
  };
}

export function host(raw: string): string {
  const v = raw.trim();
  if (/[\s/]/.test(v)) throw new InvalidValue(`expected a host name or IP address, got ${JSON.stringify(raw)}`);
  return v;
}

export function oneOf<T extends string>(values: readonly T[], aliases: Readonly<Record<string, T>> = {}): (raw: string) => T {
  return (raw) => {
    const v = raw.trim().toLowerCase();
    if ((values as readonly string[]).includes(v)) return v as T;
    const alias = aliases[v];
    if (alias !== undefined) return alias;
    throw new InvalidValue(`expected one of ${values.join(', ')} (any case), got ${JSON.stringify(raw)}`);
  };
}

/** A share strictly between 0 and 1, e.g. `0.8`. */
export function share(raw: string): number {
  const v = raw.trim();
  const n = Number(v);
  if (!/^(0?\.\d+)$/.test(v) || !(n > 0 && n < 1))
    throw new InvalidValue(`expected a number between 0 and 1 such as 0.8, got ${JSON.stringify(raw)}`);
  return n;
}

/** RFC 9110 field-name: a token. */
export function headerName(raw: string): string {
  const v = raw.trim();
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(v)) {
    throw new InvalidValue(`expected an HTTP header name (letters, digits and !#$%&'*+-.^_\`|~), got ${JSON.stringify(raw)}`);
  }
  return v;
}

export function workers(raw: string): number {
  const v = raw.trim().toLowerCase();
  if (v === 'auto') return Math.max(1, availableParallelism());
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 256)
    throw new InvalidValue(`expected an integer from 1 to 256 or "auto", got ${JSON.stringify(raw)}`);
  return Number(v);
}

export function text(raw: string): string {
  return raw;
}

export function keyPrefix(raw: string): string {
  // Keys are `<prefix>{<tag>}:...`: a brace in the prefix would become the Redis Cluster hash tag
  // and send every counter to one slot (src/limiter/keys.ts).
  if (/[{}]/.test(raw))
    throw new InvalidValue(`must not contain "{" or "}" (they would change the Redis Cluster hash tag), got ${JSON.stringify(raw)}`);
  // eslint-disable-next-line no-control-regex -- control characters are exactly what this rejects
  if (/[\s\u0000-\u001f\u007f]/.test(raw))
    throw new InvalidValue(`must not contain whitespace or control characters, got ${JSON.stringify(raw)}`);
  return raw;
}

/**
 * Builds one row of the table: everything but the name (the table's key), `secret` false unless
 * said otherwise, and the default kept as a literal type so a setting without one types as
 * possibly undefined.
 */
export function setting<T, D extends string | undefined>(spec: {
  group: SettingGroup;
  default: D;
  description: string;
  parse: (raw: string) => T;
  secret?: boolean;
}): Omit<SettingSpec<T>, 'name' | 'default'> & { readonly default: D } {
  return { secret: false, ...spec };
}
