import type { RlsDescriptorStatus, RlsResponse } from '../client/rls-client.js';
import { EXPLAIN_HEADER, EXPLAIN_TRAILER } from '../server/grpc/explain.js';
import { COMMAND_USAGE, isHelp, parseRequestArgs } from './usage.js';

/**
 * `meshlimit ask`: ShouldRateLimit calls for tours and debugging. `--count N` sends N calls one
 * after the other over one connection, so a limit visibly trips (one process start, then a few
 * milliseconds per call). Each call asks for the `meshlimit-limits` trailer (EXPLAIN_HEADER), so
 * the window and burst are shown as the config says them, which RLS v3's `current_limit` cannot
 * carry (a 30-per-15-minutes limit is `30/MINUTE` on the wire).
 */

export interface AskIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

/** Most calls one `ask` sends. */
export const MAX_COUNT = 100_000;
const MAX_UINT32 = 4_294_967_295;

/** What the service says about a reported limit (the `meshlimit-limits` trailer's entries). */
interface ExplainedLimit {
  readonly requestsPerUnit: number;
  readonly unit: string;
  readonly unitMultiplier: number;
  readonly algorithm: string;
  readonly burst: number;
}

interface AskArgs {
  readonly addr: string;
  readonly count: number;
  readonly hits: number | undefined;
  readonly json: boolean;
  readonly domain: string;
  readonly descriptors: readonly (readonly { key: string; value: string }[])[];
}

/** The service's gRPC address from the environment, as it would listen (0.0.0.0 and :: asked on loopback). */
export function defaultAddress(env: Readonly<Record<string, string | undefined>>): string {
  let host = env['GRPC_HOST'] || '127.0.0.1';
  if (host === '0.0.0.0') host = '127.0.0.1';
  if (host === '::' || host === '[::]') host = '::1';
  if (host.includes(':') && !host.startsWith('[')) host = `[${host}]`;
  return `${host}:${env['GRPC_PORT'] || '8081'}`;
}

function parseArgs(args: readonly string[], env: Readonly<Record<string, string | undefined>>): AskArgs | string {
  let addr = defaultAddress(env);
  let count = 1;
  let hits: number | undefined;
  let json = false;
  const positional: string[] = [];
  const intArg = (flag: string, v: string | undefined, min: number, max: number): number | string => {
    const n = Number(v);
    return v !== undefined && /^\d+$/.test(v) && n >= min && n <= max
      ? n
      : `${flag} expects a whole number from ${min} to ${max}, got '${v ?? ''}'`;
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--addr') {
      addr = args[++i] ?? '';
      if (!/^.+:\d+$/.test(addr)) return `--addr expects HOST:PORT, got '${addr}'`;
    } else if (a === '--count' || a === '--hits') {
      const n = intArg(a, args[++i], a === '--count' ? 1 : 0, a === '--count' ? MAX_COUNT : MAX_UINT32);
      if (typeof n === 'string') return n;
      if (a === '--count') count = n;
      else hits = n;
    } else if (a === '--json') json = true;
    else if (a.startsWith('-')) return `unknown option '${a}'`;
    else positional.push(a);
  }
  const request = parseRequestArgs(positional);
  if (typeof request === 'string') return request;
  return { addr, count, hits, json, ...request };
}

export async function ask(args: readonly string[], io: AskIo, env: Readonly<Record<string, string | undefined>>): Promise<number> {
  if (isHelp(args[0])) {
    io.stdout(COMMAND_USAGE.ask!);
    return 0;
  }
  const parsed = parseArgs(args, env);
  if (typeof parsed === 'string') {
    io.stderr(`meshlimit ask: ${parsed}\n\n${COMMAND_USAGE.ask!}`);
    return 2;
  }
  const grpc = await import('@grpc/grpc-js');
  const { createRlsClient } = await import('../client/rls-client.js');
  const client = createRlsClient(parsed.addr, { defaultDeadlineMs: 3000 });
  const metadata = new grpc.Metadata();
  metadata.set(EXPLAIN_HEADER, '1');
  const request = {
    domain: parsed.domain,
    hitsAddend: parsed.hits,
    descriptors: parsed.descriptors.map((entries) => ({ entries })),
  };
  let over = false;
  try {
    for (let i = 1; i <= parsed.count; i++) {
      let explained: readonly (ExplainedLimit | null)[] = [];
      const res = await client.shouldRateLimit(request, {
        metadata,
        onTrailers: (t) => (explained = parseExplained(t.get(EXPLAIN_TRAILER)[0])),
      });
      over ||= res.overallCode === 'OVER_LIMIT';
      const prefix = parsed.count > 1 ? `${i}/${parsed.count} `.padStart(2 * String(parsed.count).length + 2) : '';
      if (parsed.json) io.stdout(`${prefix}${JSON.stringify(jsonView(res, explained))}\n`);
      else io.stdout(`${prefix}${describeResponse(res, explained, parsed.descriptors)}\n`);
    }
    return over ? 3 : 0;
  } catch (err) {
    const e = err as { code?: number; details?: string; message?: string };
    const hint = e.code === 14 ? `; is meshlimit running there? (--addr, or GRPC_HOST/GRPC_PORT)` : '';
    io.stderr(`meshlimit ask: ${parsed.addr}: ${e.details ?? e.message ?? String(err)} (gRPC status ${String(e.code)})${hint}\n`);
    return 1;
  } finally {
    client.close();
  }
}

function parseExplained(raw: unknown): readonly (ExplainedLimit | null)[] {
  if (typeof raw !== 'string') return [];
  try {
    const v = JSON.parse(raw) as unknown;
    return Array.isArray(v) ? (v as (ExplainedLimit | null)[]) : [];
  } catch {
    return [];
  }
}

/** `per second`, `per 15 minutes`. */
export function windowText(unit: string, multiplier: number): string {
  const u = unit.toLowerCase();
  return multiplier === 1 ? `per ${u}` : `per ${multiplier} ${u}s`;
}

/** One descriptor's answer in words. */
export function describeStatus(s: RlsDescriptorStatus, e: ExplainedLimit | null | undefined): string {
  if (s.currentLimit === null) return s.limitRemaining === MAX_UINT32 ? `${s.code}, unlimited` : `${s.code}, no rule matched`;
  const reset = `resets in ${s.durationUntilReset?.seconds ?? 0}s`;
  if (e === undefined || e === null) {
    // A service that does not explain: the wire's own view.
    return `${s.code}, ${s.limitRemaining} of ${s.currentLimit.requestsPerUnit}/${s.currentLimit.unit} left, ${reset}`;
  }
  if (e.algorithm === 'token_bucket') {
    return `${s.code}, ${s.limitRemaining} of ${e.burst} (burst) left, token bucket refilling ${e.requestsPerUnit} ${windowText(e.unit, e.unitMultiplier)}, ${reset}`;
  }
  return `${s.code}, ${s.limitRemaining} of ${e.requestsPerUnit} ${windowText(e.unit, e.unitMultiplier)} left (${e.algorithm}), ${reset}`;
}

function describeResponse(res: RlsResponse, explained: readonly (ExplainedLimit | null)[], descs: AskArgs['descriptors']): string {
  const parts = res.statuses.map(
    (s, i) => `${(descs[i] ?? []).map((e) => `${e.key}=${e.value}`).join(',')}: ${describeStatus(s, explained[i])}`,
  );
  return `${res.overallCode.padEnd(10)} ${parts.join(' | ')}`;
}

function jsonView(res: RlsResponse, explained: readonly (ExplainedLimit | null)[]): object {
  return {
    overallCode: res.overallCode,
    statuses: res.statuses.map((s, i) => {
      const e = explained[i];
      if (s.currentLimit === null) return { code: s.code, ...(s.limitRemaining === MAX_UINT32 ? { unlimited: true } : {}) };
      return {
        code: s.code,
        limit:
          e === undefined || e === null
            ? `${s.currentLimit.requestsPerUnit}/${s.currentLimit.unit}`
            : `${e.requestsPerUnit} ${windowText(e.unit, e.unitMultiplier)}`,
        ...(e ? { algorithm: e.algorithm, ...(e.algorithm === 'token_bucket' ? { burst: e.burst } : {}) } : {}),
        remaining: s.limitRemaining,
        resetSeconds: s.durationUntilReset?.seconds ?? 0,
      };
    }),
  };
}
