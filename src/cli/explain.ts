import type { ExplainDescriptorJson, ExplainJson, ExplainLimitJson } from '../server/explain/explain-json.js';
import { COMMAND_USAGE, isHelp, parseRequestArgs } from './usage.js';

/**
 * `meshlimit explain`: asks the admin port's `POST /v1/explain` which rule each descriptor would
 * match and what the request would be answered, charging nothing, and prints it in words (or the
 * JSON as the service sent it, `--json`). The arguments are `ask`'s, so a line that `ask`
 * answered surprisingly can be explained by changing one word.
 */

export interface ExplainIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

const MAX_UINT32 = 4_294_967_295;
/** How long the service gets to answer. */
const TIMEOUT_MS = 5_000;

interface ExplainArgs {
  readonly url: string;
  readonly hits: number | undefined;
  readonly json: boolean;
  readonly domain: string;
  readonly descriptors: readonly (readonly { key: string; value: string }[])[];
}

/** The admin port's URL from the environment, as the service would listen (0.0.0.0 and :: asked on loopback). */
export function defaultAdminUrl(env: Readonly<Record<string, string | undefined>>): string {
  let host = env['HOST'] || '127.0.0.1';
  if (host === '0.0.0.0') host = '127.0.0.1';
  if (host === '::' || host === '[::]') host = '::1';
  if (host.includes(':') && !host.startsWith('[')) host = `[${host}]`;
  return `http://${host}:${env['PORT'] || '8080'}`;
}

function parseArgs(args: readonly string[], env: Readonly<Record<string, string | undefined>>): ExplainArgs | string {
  let url = defaultAdminUrl(env);
  let hits: number | undefined;
  let json = false;
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--url') {
      url = args[++i] ?? '';
      if (!/^https?:\/\/[^/]+\/?$/.test(url)) return `--url expects http://HOST:PORT (the admin port), got '${url}'`;
      url = url.replace(/\/$/, '');
    } else if (a === '--hits') {
      const v = args[++i];
      if (v === undefined || !/^\d+$/.test(v) || Number(v) > MAX_UINT32)
        return `--hits expects a whole number from 0 to ${MAX_UINT32}, got '${v ?? ''}'`;
      hits = Number(v);
    } else if (a === '--json') json = true;
    else if (a.startsWith('-')) return `unknown option '${a}'`;
    else positional.push(a);
  }
  const request = parseRequestArgs(positional);
  if (typeof request === 'string') return request;
  return { url, hits, json, ...request };
}

/** exit 0 when the request would be OK, 3 when it would be OVER_LIMIT, 1 on an error, 2 on a usage error. */
export async function explain(args: readonly string[], io: ExplainIo, env: Readonly<Record<string, string | undefined>>): Promise<number> {
  if (isHelp(args[0])) {
    io.stdout(COMMAND_USAGE.explain!);
    return 0;
  }
  const parsed = parseArgs(args, env);
  if (typeof parsed === 'string') {
    io.stderr(`meshlimit explain: ${parsed}\n\n${COMMAND_USAGE.explain!}`);
    return 2;
  }
  const body = {
    domain: parsed.domain,
    ...(parsed.hits === undefined ? {} : { hitsAddend: parsed.hits }),
    descriptors: parsed.descriptors.map((entries) => ({ entries })),
  };
  const endpoint = `${parsed.url}/v1/explain`;
  let res: Response;
  try {
    res = await fetch(endpoint, { method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (err) {
    const cause = (err as Error & { cause?: Error }).cause?.message ?? (err as Error).message;
    io.stderr(`meshlimit explain: ${endpoint}: ${cause}; is meshlimit running there? (--url, or HOST/PORT)\n`);
    return 1;
  }
  const text = await res.text();
  if (res.status !== 200) {
    let said = text;
    try {
      const e = JSON.parse(text) as { code?: string; message?: string };
      if (typeof e.message === 'string') said = `${e.message} (${e.code ?? 'no code'})`;
    } catch {
      // not JSON: shown as it is
    }
    const hint = res.status === 404 ? '; is this the admin port of a meshlimit that serves /v1/explain?' : '';
    io.stderr(`meshlimit explain: ${endpoint}: HTTP ${res.status}: ${said}${hint}\n`);
    return 1;
  }
  const e = JSON.parse(text) as ExplainJson;
  io.stdout(parsed.json ? `${text}\n` : describe(e));
  return e.decision === 'OVER_LIMIT' ? 3 : 0;
}

/** The explanation in words: a headline, then each descriptor, its rule or why none, its limits. */
export function describe(e: ExplainJson): string {
  const lines = [`${e.decision} would be the answer (nothing was charged); domain ${e.domain}, config ${e.configVersion.slice(0, 12)}`];
  for (const d of e.descriptors) lines.push(...describeDescriptor(d));
  return `${lines.join('\n')}\n`;
}

function describeDescriptor(d: ExplainDescriptorJson): string[] {
  const name = d.entries.map((x) => `${x.key}=${x.value}`).join(',');
  const m = d.match;
  if (!m.matched) return [`${name}: no rule: ${m.message}`];
  const how = m.steps.map((s) =>
    s.via === 'exact' ? `${s.configKey} exactly` : s.via === 'wildcard' ? `pattern ${s.configKey}` : `any ${s.configKey}`,
  );
  const out = [`${name}: rule ${m.ruleKey} at ${m.file}:${m.line} (${m.path}), matched ${how.join(', then ')}`];
  if (m.unlimited) out.push('  unlimited: never limited, never counted');
  if (d.override !== null)
    out.push(`  Envoy's limit override applies: ${d.override.requestsPerUnit} per ${d.override.unit} (fixed window)`);
  if (d.replaced.length > 0) out.push(`  replaced by another descriptor's limit: ${d.replaced.join(', ')}`);
  for (const l of d.limits) out.push(`  ${describeLimit(l)}`);
  if (d.status.shadowed) out.push('  over its limit, but shadow mode lets it through');
  return out;
}

function describeLimit(l: ExplainLimitJson): string {
  const what = l.algorithm === 'token_bucket' ? `token bucket of ${l.burst} refilling ${l.window}` : `${l.window} (${l.algorithm})`;
  const now = `${l.counter.used} used, ${l.counter.remaining} left, resets in ${Math.ceil(l.counter.resetMs / 1000)}s`;
  const would = l.wouldBe.overLimit ? 'OVER_LIMIT' : `OK, ${l.wouldBe.remaining} left`;
  return `${what}${l.enforced ? '' : ' [not enforced]'}: ${now}; this request: ${would}`;
}
