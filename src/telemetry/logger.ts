import { pino } from 'pino';

/**
 * The process logger (pino).
 *
 * What may be logged: lifecycle events (start, listen, config reloads, backend state
 * *transitions*), rule keys, domains, counts and error messages. What must never be logged:
 * descriptor values (they carry user IDs, IPs, API keys), tokens, request headers, Redis
 * credentials or anything from a `secret` setting. The `redact` list below is a safety net for
 * the usual field names, not a licence to log objects wholesale. Nothing is logged per request
 * above `debug`, so the hot path pays only pino's level check.
 *
 * Formats (LOG_FORMAT):
 * - `json`: pino's own output, one JSON object per line (`level` is pino's number, `time` epoch ms).
 * - `text`: one logfmt line per event, close to envoyproxy/ratelimit's default logrus text:
 *   `time=2024-05-01T12:00:00.000Z level=info msg="config loaded" rules=12`. Nested objects are
 *   flattened to dotted keys (`err.message=...`). Each line is re-parsed from pino's JSON, a cost
 *   that is irrelevant at lifecycle volume (and the reason nothing per-request logs at info).
 */
export type Logger = pino.Logger;

/** LOG_LEVEL's values (settings also accept upstream's `warning` and `panic`). */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
/** LOG_FORMAT's values. */
export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Where lines go; defaults to stdout. */
export interface LogDestination {
  write(line: string): void;
}

export interface LoggerOptions {
  readonly level: LogLevel;
  readonly format: LogFormat;
  /** Defaults to a synchronous stdout writer (lines are not lost on exit). */
  readonly destination?: LogDestination | undefined;
  /** Clock for the `time` field; for tests. */
  readonly now?: (() => Date) | undefined;
}

/** Field names whose values are replaced by `[REDACTED]` wherever they appear (one level deep). */
const REDACT_PATHS = [
  'password',
  '*.password',
  'auth',
  '*.auth',
  'token',
  '*.token',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'headers.cookie',
  '*.headers.authorization',
  '*.headers.cookie',
];

export function createLogger(options: LoggerOptions): Logger {
  const text = options.format === 'text';
  const now = options.now;
  const timestamp = now
    ? text
      ? () => `,"time":"${now().toISOString()}"`
      : () => `,"time":${now().getTime()}`
    : text
      ? pino.stdTimeFunctions.isoTime
      : pino.stdTimeFunctions.epochTime;
  const out: LogDestination = options.destination ?? pino.destination({ dest: 1, sync: true });
  const logger = pino(
    {
      level: options.level,
      timestamp,
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      // pid and hostname add nothing to a container's text log; json keeps pino's defaults.
      ...(text ? { base: undefined, formatters: { level: (label: string) => ({ level: label }) } } : {}),
    },
    text ? { write: (line: string) => out.write(formatTextLine(line)) } : out,
  );
  return logger;
}

/** Keys printed first, in this order; the rest follow in pino's order. */
const LEADING = ['time', 'level', 'msg'];
const MAX_DEPTH = 4;

/**
 * Turns one pino JSON line into one logfmt line (with its newline). Exported for tests.
 * A line that is not a JSON object is passed through unchanged.
 */
export function formatTextLine(jsonLine: string): string {
  let record: unknown;
  try {
    record = JSON.parse(jsonLine);
  } catch {
    return jsonLine.endsWith('\n') ? jsonLine : `${jsonLine}\n`;
  }
  if (typeof record !== 'object' || record === null || Array.isArray(record)) return jsonLine.endsWith('\n') ? jsonLine : `${jsonLine}\n`;
  const obj = record as Record<string, unknown>;
  const parts: string[] = [];
  for (const key of LEADING) {
    if (obj[key] !== undefined) parts.push(`${key}=${formatValue(obj[key])}`);
  }
  for (const [key, value] of Object.entries(obj)) {
    if (!LEADING.includes(key)) flatten(key, value, 1, parts);
  }
  return `${parts.join(' ')}\n`;
}

function flatten(key: string, value: unknown, depth: number, parts: string[]): void {
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && depth < MAX_DEPTH) {
    for (const [k, v] of Object.entries(value)) flatten(`${key}.${k}`, v, depth + 1, parts);
    return;
  }
  if (value === undefined) return;
  parts.push(`${key}=${formatValue(value)}`);
}

function formatValue(value: unknown): string {
  // eslint-disable-next-line no-control-regex -- a value holding control characters is quoted
  if (typeof value === 'string') return /^[^\s"=\\\u0000-\u001f\u007f]+$/.test(value) ? value : JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  return JSON.stringify(JSON.stringify(value));
}
