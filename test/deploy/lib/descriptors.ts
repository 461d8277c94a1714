import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { CompiledSnapshot, DescriptorDump } from '../../../src/config/index.js';
import type { DescriptorEntry, RateLimitCheck } from '../../../src/limiter/types.js';
import { DescriptorResolver } from '../../../src/resolve/index.js';
import type { ResolutionOptions } from '../../../src/config/resolution-schema.js';
import type { RateLimitAction, RateLimitEntry } from './envoy-schema.js';

/**
 * What descriptors a `rate_limits` entry can make Envoy send, and what meshlimit does with them.
 *
 * Envoy builds one descriptor per entry by running its actions in order; each appends one
 * (key, value) entry. A `request_headers` action with `skip_if_absent: true` leaves its entry out
 * when the header is missing, so an entry has 2^n shapes for n such actions. Values are either
 * fixed by the config (generic_key) or chosen at request time (a header, the client address).
 *
 * For each shape this module builds concrete descriptors and runs them through meshlimit's own
 * code: the real {@link DescriptorResolver} (token verification with real ES256 tokens, signed
 * here for the config's issuer and audience, the JWKS served by a stub `fetch` at the config's
 * `jwks_url`) and the compiled config's real matcher (`findRule`). Values chosen at request time
 * are tried with every value the config names for that key (wildcards completed) and one value
 * it does not name, so "some request can hit this rule" is decided exactly, not by reading keys.
 */

/** Where an entry's value comes from. */
export type ValueSource =
  | { readonly kind: 'fixed'; readonly value: string }
  | { readonly kind: 'header'; readonly header: string }
  | { readonly kind: 'client_address' }
  | { readonly kind: 'cluster'; readonly which: 'source' | 'destination' };

export interface EntryTemplate {
  readonly key: string;
  readonly source: ValueSource;
  /** Left out of the descriptor when its header is absent (request_headers with skip_if_absent). */
  readonly optional: boolean;
}

export function entryTemplate(action: RateLimitAction): EntryTemplate {
  if ('request_headers' in action) {
    const a = action.request_headers;
    return { key: a.descriptor_key, source: { kind: 'header', header: a.header_name }, optional: a.skip_if_absent === true };
  }
  if ('remote_address' in action) return { key: 'remote_address', source: { kind: 'client_address' }, optional: false };
  if ('masked_remote_address' in action) return { key: 'masked_remote_address', source: { kind: 'client_address' }, optional: false };
  if ('generic_key' in action)
    return {
      key: action.generic_key.descriptor_key ?? 'generic_key',
      source: { kind: 'fixed', value: action.generic_key.descriptor_value },
      optional: false,
    };
  if ('header_value_match' in action)
    return { key: 'header_match', source: { kind: 'fixed', value: action.header_value_match.descriptor_value }, optional: false };
  if ('source_cluster' in action) return { key: 'source_cluster', source: { kind: 'cluster', which: 'source' }, optional: false };
  return { key: 'destination_cluster', source: { kind: 'cluster', which: 'destination' }, optional: false };
}

/** Every shape (list of present entries) a rate-limit entry can send, in action order. */
export function shapesOf(entry: RateLimitEntry): EntryTemplate[][] {
  const templates = entry.actions.map(entryTemplate);
  let shapes: EntryTemplate[][] = [[]];
  for (const t of templates) shapes = t.optional ? shapes.flatMap((s) => [s, [...s, t]]) : shapes.map((s) => [...s, t]);
  // Longest first: the shape with every optional header present reads most naturally first.
  return shapes.sort((a, b) => b.length - a.length);
}

function describeSource(s: ValueSource): string {
  switch (s.kind) {
    case 'fixed':
      return JSON.stringify(s.value);
    case 'header':
      return `<header ${s.header}>`;
    case 'client_address':
      return '<client address>';
    case 'cluster':
      return `<${s.which} cluster>`;
  }
}

/** `[(authorization, <header authorization>), (remote_address, <client address>)]` */
export function describeShape(shape: readonly EntryTemplate[]): string {
  return `[${shape.map((t) => `(${t.key}, ${describeSource(t.source)})`).join(', ')}]`;
}

/** `[(company_id, *), (path, *)]`: a resolved shape, values left out. */
export function describeKeys(entries: readonly DescriptorEntry[]): string {
  return `[${entries.map((e) => `(${e.key}, *)`).join(', ')}]`;
}

/** How meshlimit resolved a shape: as sent, or through the domain's token resolution. */
export type Outcome = 'as sent' | 'token verified' | 'token fails';

export interface ShapeResult {
  readonly shape: readonly EntryTemplate[];
  readonly outcome: Outcome;
  /** Keys of the descriptor the limiter sees after resolution, e.g. `[(company_id, *)]`. */
  readonly resolved: string;
  /** Rule keys some request of this shape and outcome hits; empty when none does. */
  readonly rules: readonly string[];
}

/** Values the config names for `key` anywhere in `domain`'s tree (wildcards completed). */
function configValues(snapshot: CompiledSnapshot, domain: string, key: string): string[] {
  const d = snapshot.dump().domains.find((x) => x.domain === domain);
  const out = new Set<string>();
  const visit = (nodes: readonly DescriptorDump[]): void => {
    for (const n of nodes) {
      if (n.key === key && n.value !== null) out.add(n.value.endsWith('*') ? `${n.value.slice(0, -1)}x` : n.value);
      visit(n.descriptors);
    }
  };
  visit(d?.descriptors ?? []);
  return [...out];
}

/** A value the config does not name: matches only descriptors without a value (catch-alls). */
const UNLISTED = 'zz-unlisted-value';
const UNLISTED_ADDRESS = '198.51.100.77';

/**
 * The resolution machinery for one config: a real DescriptorResolver whose JWKS URL is answered
 * by a stub `fetch` with a key generated here, and a signer for tokens the config accepts.
 */
export interface ResolutionHarness {
  resolve(check: RateLimitCheck): Promise<RateLimitCheck>;
  /** A `Bearer` token the domain's resolution verifies, carrying `claimValue`; undefined without resolution. */
  token(domain: string, claimValue: string): Promise<string | undefined>;
  close(): void;
}

export async function resolutionHarness(snapshot: CompiledSnapshot): Promise<ResolutionHarness> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const kid = 'deploy-consistency';
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  const stubFetch = (async (input: string | URL | Request): Promise<Response> => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const known = snapshot.domainNames.some((d) => {
      const k = snapshot.domainOptions(d)?.resolution?.jwt.keys;
      return k?.kind === 'jwks_url' && k.url === url;
    });
    if (!known) return new Response('not found', { status: 404 });
    return new Response(JSON.stringify({ keys: [jwk] }), { status: 200, headers: { 'content-type': 'application/json' } });
  }) as typeof fetch;
  const resolver = new DescriptorResolver({ config: { current: () => snapshot }, fetch: stubFetch, env: {} });
  return {
    async resolve(check) {
      return resolver.resolve(check);
    },
    async token(domain, claimValue) {
      const r = snapshot.domainOptions(domain)?.resolution;
      if (r === undefined) return undefined;
      if (!r.jwt.algorithms.includes('ES256') || r.jwt.keys.kind !== 'jwks_url') {
        throw new Error(
          `the consistency check signs ES256 tokens served at a jwks_url; domain ${domain} uses ${r.jwt.keys.kind} with ${r.jwt.algorithms.join(', ')}`,
        );
      }
      const jwt = await new SignJWT({ [r.claim]: claimValue })
        .setProtectedHeader({ alg: 'ES256', kid })
        .setIssuer(r.jwt.issuer)
        .setAudience(r.jwt.audience[0] ?? '')
        .setSubject('consistency-check')
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(privateKey);
      return `Bearer ${jwt}`;
    },
    close: () => resolver.close(),
  };
}

function* product<T>(lists: readonly (readonly T[])[]): Generator<T[]> {
  if (lists.length === 0) {
    yield [];
    return;
  }
  const [first, ...rest] = lists;
  for (const x of first!) for (const tail of product(rest)) yield [x, ...tail];
}

/**
 * Every outcome of every shape of `entry` in `domain`: which rules requests of that shape can
 * hit after meshlimit's resolution. Empty shapes (every entry optional and absent) are returned
 * with outcome 'as sent' and no rules; callers report them.
 */
export async function analyseEntry(
  entry: RateLimitEntry,
  domain: string,
  snapshot: CompiledSnapshot,
  harness: ResolutionHarness,
): Promise<ShapeResult[]> {
  const resolution: ResolutionOptions | undefined = snapshot.domainOptions(domain)?.resolution;
  const results: ShapeResult[] = [];
  for (const shape of shapesOf(entry)) {
    if (shape.length === 0) {
      results.push({ shape, outcome: 'as sent', resolved: '[]', rules: [] });
      continue;
    }
    const tokenAt = resolution === undefined ? -1 : shape.findIndex((t) => t.key === resolution.tokenEntry);
    const outcomes: Outcome[] = tokenAt >= 0 ? ['token verified', 'token fails'] : ['as sent'];
    for (const outcome of outcomes) {
      const choices: string[][] = [];
      for (let i = 0; i < shape.length; i++) {
        const t = shape[i]!;
        if (i === tokenAt) {
          if (outcome === 'token fails') choices.push(['Bearer not-a-token']);
          else {
            const claims = [...configValues(snapshot, domain, resolution!.resolvedEntry), UNLISTED];
            choices.push((await Promise.all(claims.map((c) => harness.token(domain, c)))).filter((x): x is string => x !== undefined));
          }
        } else if (t.source.kind === 'fixed') choices.push([t.source.value]);
        else choices.push([...configValues(snapshot, domain, t.key), t.source.kind === 'client_address' ? UNLISTED_ADDRESS : UNLISTED]);
      }
      const rules = new Set<string>();
      let resolved = '';
      for (const values of product(choices)) {
        const check: RateLimitCheck = {
          domain,
          hitsAddend: 0,
          descriptors: [{ entries: shape.map((t, i) => ({ key: t.key, value: values[i]! })) }],
        };
        const d = (await harness.resolve(check)).descriptors[0]!;
        resolved ||= describeKeys(d.entries);
        const rule = snapshot.findRule(domain, d.entries);
        if (rule !== undefined) rules.add(rule.ruleKey);
      }
      results.push({ shape, outcome, resolved, rules: [...rules].sort() });
    }
  }
  return results;
}
