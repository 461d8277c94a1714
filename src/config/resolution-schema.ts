import path from 'node:path';
import { describeNode as describe, quoteText as q, type YMap, type YNode, type YScalar } from './yaml-tree.js';

/**
 * The domain-level `resolution:` block of a descriptor config file (meshlimit extension), parsed
 * strictly: unknown keys, wrong types, out-of-range numbers and contradictory key sources are
 * errors naming the field and line. Pure (no I/O): the HS256 secret is only *named* here (an
 * environment variable) and read when the resolver is built, so it never sits in a config file,
 * a config dump or an error message.
 *
 * Called from `src/config/schema.ts` for the `resolution` root key; reports through `report` so
 * the messages come out exactly like every other config error (`file: field: detail`).
 */

export const RESOLUTION_KEYS = [
  'token_entry',
  'claim',
  'resolved_entry',
  'fallback_entry',
  'ipv4_prefix',
  'ipv6_prefix',
  'cache_size',
  'cache_ttl_seconds',
  'jwt',
] as const;

export const JWT_KEYS = [
  'issuer',
  'audience',
  'algorithms',
  'jwks_url',
  'jwks_file',
  'hs256_secret_env',
  'clock_tolerance_seconds',
  'jwks_timeout_ms',
  'jwks_refresh_seconds',
  'jwks_cooldown_seconds',
] as const;

/** Public-key algorithms accepted with `jwks_url` / `jwks_file` (a JWKS holds public keys only). */
export const ASYMMETRIC_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const;
/** The only algorithm accepted with `hs256_secret_env`. */
export const SECRET_ALGORITHMS = ['HS256'] as const;

export const RESOLUTION_DEFAULTS = Object.freeze({
  tokenEntry: 'authorization',
  claim: 'company_id',
  fallbackEntry: 'remote_address',
  ipv4Prefix: 32,
  ipv6Prefix: 64,
  cacheSize: 10_000,
  cacheTtlSeconds: 300,
  clockToleranceSeconds: 30,
  jwksTimeoutMs: 500,
  jwksRefreshSeconds: 300,
  jwksCooldownSeconds: 10,
  jwksAlgorithms: Object.freeze(['RS256', 'ES256'] as const),
});

/** Where the verification keys come from. */
export type KeySourceSpec =
  | {
      readonly kind: 'jwks_url';
      readonly url: string;
      /** Whole-fetch bound (connect + headers + body), ms. */
      readonly timeoutMs: number;
      /** Age after which a request triggers a background refresh (cached keys keep serving), s. */
      readonly refreshSeconds: number;
      /** Least time between two fetches, whatever triggers them (unknown `kid`, refresh), s. */
      readonly cooldownSeconds: number;
    }
  | {
      readonly kind: 'jwks_file';
      /** Absolute path (a relative path in the file is resolved against the config file's directory). */
      readonly path: string;
      readonly refreshSeconds: number;
      readonly cooldownSeconds: number;
    }
  | {
      readonly kind: 'hs256_secret_env';
      /** Name of the environment variable holding the shared secret (never the secret itself). */
      readonly env: string;
    };

export interface JwtOptions {
  readonly issuer: string;
  readonly audience: readonly string[];
  readonly algorithms: readonly string[];
  readonly clockToleranceSeconds: number;
  readonly keys: KeySourceSpec;
}

/**
 * A domain's descriptor resolution: what `DescriptorResolver` (src/resolve/resolver.ts) does to a
 * request of this domain before the limiter sees it.
 */
export interface ResolutionOptions {
  /** Config file and line of the `resolution:` key, for messages about this block. */
  readonly file: string;
  readonly line: number;
  /** Descriptor entry key carrying the token (`Bearer <jwt>` or a bare compact JWT). */
  readonly tokenEntry: string;
  /** Claim read from a verified token. */
  readonly claim: string;
  /** Key of the entry a verified token becomes (default: the claim name). */
  readonly resolvedEntry: string;
  /** Descriptor entry key holding the client address; the token entry becomes this on failure. */
  readonly fallbackEntry: string;
  readonly ipv4Prefix: number;
  readonly ipv6Prefix: number;
  /** Verified tokens remembered (LRU); 0 disables the cache. */
  readonly cacheSize: number;
  /** Longest a verified token is trusted without re-verification (also bounded by its `exp`), s. */
  readonly cacheTtlSeconds: number;
  readonly jwt: JwtOptions;
}

/** Receives one problem: dotted field path and detail (the caller prefixes the file). */
export type Report = (field: string, detail: string) => void;

const at = (line: number): string => ` (line ${line})`;
const join = (p: string, key: string): string => `${p}.${key}`;

const ENTRY_KEY_RE = /^[^\s]{1,128}$/;
const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Checks the `resolution` node of `file`. Returns the options, or undefined after reporting at
 * least one problem.
 */
export function checkResolution(node: YNode, keyLine: number, file: string, report: Report): ResolutionOptions | undefined {
  let failed = false;
  const err: Report = (f, d) => {
    failed = true;
    report(f, d);
  };
  const P = 'resolution';
  if (node.kind !== 'map') {
    err(P, `must be a mapping with a 'jwt' block, got ${describe(node)}${at(node.line)}`);
    return undefined;
  }
  keys(node, P, RESOLUTION_KEYS, err);
  const e = node.entries;

  const entryKey = (name: string, def: string): string => {
    const x = e.get(name);
    if (x === undefined) return def;
    const s = str(x.value, join(P, name), err);
    if (s === undefined) return def;
    if (!ENTRY_KEY_RE.test(s)) {
      err(join(P, name), `must be a descriptor entry key (1 to 128 characters, no whitespace), got ${q(s)}${at(x.keyLine)}`);
      return def;
    }
    return s;
  };
  const tokenEntry = entryKey('token_entry', RESOLUTION_DEFAULTS.tokenEntry);
  const claim = entryKey('claim', RESOLUTION_DEFAULTS.claim);
  const resolvedEntry = entryKey('resolved_entry', claim);
  const fallbackEntry = entryKey('fallback_entry', RESOLUTION_DEFAULTS.fallbackEntry);
  if (tokenEntry === fallbackEntry) {
    err(
      join(P, 'fallback_entry'),
      `must differ from token_entry (both ${q(tokenEntry)})${at(e.get('fallback_entry')?.keyLine ?? e.get('token_entry')?.keyLine ?? node.line)}`,
    );
  } else if (tokenEntry === resolvedEntry) {
    err(
      join(P, 'resolved_entry'),
      `must differ from token_entry (both ${q(tokenEntry)})${at(e.get('resolved_entry')?.keyLine ?? e.get('claim')?.keyLine ?? node.line)}`,
    );
  }

  const num = (name: string, min: number, max: number, def: number): number => {
    const x = e.get(name);
    return x === undefined ? def : (int(x.value, join(P, name), min, max, err) ?? def);
  };
  const ipv4Prefix = num('ipv4_prefix', 0, 32, RESOLUTION_DEFAULTS.ipv4Prefix);
  const ipv6Prefix = num('ipv6_prefix', 0, 128, RESOLUTION_DEFAULTS.ipv6Prefix);
  const cacheSize = num('cache_size', 0, 1_000_000, RESOLUTION_DEFAULTS.cacheSize);
  const cacheTtlSeconds = num('cache_ttl_seconds', 1, 86_400, RESOLUTION_DEFAULTS.cacheTtlSeconds);

  const j = e.get('jwt');
  let jwt: JwtOptions | undefined;
  if (j === undefined) err(join(P, 'jwt'), `missing${at(keyLine)}; resolution needs a jwt block (issuer, audience and one key source)`);
  else jwt = checkJwt(j.value, file, err);

  if (failed || jwt === undefined) return undefined;
  return { file, line: keyLine, tokenEntry, claim, resolvedEntry, fallbackEntry, ipv4Prefix, ipv6Prefix, cacheSize, cacheTtlSeconds, jwt };
}

const JWT = 'resolution.jwt';

function checkJwt(node: YNode, file: string, err: Report): JwtOptions | undefined {
  if (node.kind !== 'map') {
    err(JWT, `must be a mapping, got ${describe(node)}${at(node.line)}`);
    return undefined;
  }
  let failed = false;
  const e2: Report = (f, d) => {
    failed = true;
    err(f, d);
  };
  keys(node, JWT, JWT_KEYS, e2);
  const issuer = checkIssuer(node, e2);
  const audience = checkAudience(node, e2);
  const num = (name: string, min: number, max: number, def: number): number => {
    const x = node.entries.get(name);
    return x === undefined ? def : (int(x.value, join(JWT, name), min, max, e2) ?? def);
  };
  const clockToleranceSeconds = num('clock_tolerance_seconds', 0, 300, RESOLUTION_DEFAULTS.clockToleranceSeconds);
  const keySource = checkKeySource(node, file, num, e2);
  const secret =
    keySource?.kind === 'hs256_secret_env' ||
    (keySource === undefined && node.entries.has('hs256_secret_env') && !node.entries.has('jwks_url') && !node.entries.has('jwks_file'));
  const algorithms = checkAlgorithms(node, secret, e2);
  if (failed || keySource === undefined) return undefined;
  return { issuer, audience, algorithms, clockToleranceSeconds, keys: keySource };
}

function checkIssuer(node: YMap, err: Report): string {
  const iss = node.entries.get('issuer');
  if (iss === undefined) {
    err(join(JWT, 'issuer'), `missing${at(node.line)}; tokens from any issuer would be accepted`);
    return '';
  }
  const s = str(iss.value, join(JWT, 'issuer'), err);
  if (s === '') err(join(JWT, 'issuer'), `must not be empty${at(iss.keyLine)}`);
  return s ?? '';
}

function checkAudience(node: YMap, err: Report): string[] {
  const audience: string[] = [];
  const aud = node.entries.get('audience');
  if (aud === undefined) {
    err(join(JWT, 'audience'), `missing${at(node.line)}; tokens for any audience would be accepted`);
    return audience;
  }
  const items = aud.value.kind === 'seq' ? aud.value.items : [aud.value];
  items.forEach((item, i) => {
    const f = aud.value.kind === 'seq' ? `${join(JWT, 'audience')}[${i}]` : join(JWT, 'audience');
    const s = str(item, f, err);
    if (s === '') err(f, `must not be empty${at(item.line)}`);
    else if (s !== undefined) audience.push(s);
  });
  if (aud.value.kind === 'seq' && items.length === 0) err(join(JWT, 'audience'), `must list at least one audience${at(aud.keyLine)}`);
  return audience;
}

/** The key source: exactly one of jwks_url, jwks_file, hs256_secret_env, with the timings that apply to it. */
function checkKeySource(
  node: YMap,
  file: string,
  num: (name: string, min: number, max: number, def: number) => number,
  err: Report,
): KeySourceSpec | undefined {
  const e = node.entries;
  const sources = (['jwks_url', 'jwks_file', 'hs256_secret_env'] as const).filter((k) => e.has(k));
  const timeoutMs = num('jwks_timeout_ms', 1, 10_000, RESOLUTION_DEFAULTS.jwksTimeoutMs);
  const refreshSeconds = num('jwks_refresh_seconds', 1, 86_400, RESOLUTION_DEFAULTS.jwksRefreshSeconds);
  const cooldownSeconds = num('jwks_cooldown_seconds', 0, 3600, RESOLUTION_DEFAULTS.jwksCooldownSeconds);
  if (sources.length !== 1) {
    const which = sources.length === 0 ? 'none is set' : `found ${sources.join(' and ')}`;
    err(JWT, `needs exactly one key source (jwks_url, jwks_file or hs256_secret_env); ${which}${at(node.line)}`);
    return undefined;
  }
  const kind = sources[0]!;
  const entry = e.get(kind)!;
  if (kind !== 'jwks_url' && e.has('jwks_timeout_ms'))
    err(join(JWT, 'jwks_timeout_ms'), `is only valid with jwks_url${at(e.get('jwks_timeout_ms')!.keyLine)}`);
  if (kind === 'hs256_secret_env') {
    for (const k of ['jwks_refresh_seconds', 'jwks_cooldown_seconds'] as const) {
      if (e.has(k)) err(join(JWT, k), `is only valid with jwks_url or jwks_file${at(e.get(k)!.keyLine)}`);
    }
  }
  const s = str(entry.value, join(JWT, kind), err);
  if (s === undefined) return undefined;
  if (kind === 'jwks_url') {
    let url: URL | undefined;
    try {
      url = new URL(s);
    } catch {
      url = undefined;
    }
    if (url !== undefined && (url.protocol === 'http:' || url.protocol === 'https:'))
      return { kind, url: url.href, timeoutMs, refreshSeconds, cooldownSeconds };
    err(join(JWT, kind), `must be an http:// or https:// URL, got ${q(s)}${at(entry.keyLine)}`);
    return undefined;
  }
  if (kind === 'jwks_file') {
    if (s !== '') return { kind, path: path.resolve(path.dirname(file), s), refreshSeconds, cooldownSeconds };
    err(join(JWT, kind), `must not be empty${at(entry.keyLine)}`);
    return undefined;
  }
  if (ENV_NAME_RE.test(s)) return { kind, env: s };
  err(
    join(JWT, kind),
    `must name an environment variable (letters, digits, '_'), got ${q(s)}${at(entry.keyLine)}; the secret itself never goes in a config file`,
  );
  return undefined;
}

/** The allowed algorithms: HS256 only for a shared secret, asymmetric ones for a JWKS; never `none`. */
function checkAlgorithms(node: YMap, secret: boolean, err: Report): string[] {
  const allowed: readonly string[] = secret ? SECRET_ALGORITHMS : ASYMMETRIC_ALGORITHMS;
  const algs = node.entries.get('algorithms');
  if (algs === undefined) return secret ? [...SECRET_ALGORITHMS] : [...RESOLUTION_DEFAULTS.jwksAlgorithms];
  const f = join(JWT, 'algorithms');
  if (algs.value.kind !== 'seq') {
    err(f, `must be a list of algorithm names, got ${describe(algs.value)}${at(algs.value.line)}`);
    return [];
  }
  if (algs.value.items.length === 0) {
    err(f, `must list at least one algorithm${at(algs.keyLine)}`);
    return [];
  }
  const algorithms: string[] = [];
  algs.value.items.forEach((item, i) => {
    const s = str(item, `${f}[${i}]`, err);
    if (s === undefined) return;
    if (s.toLowerCase() === 'none') err(`${f}[${i}]`, `'none' (unsigned tokens) is never accepted${at(item.line)}`);
    else if (!allowed.includes(s)) {
      const why = secret
        ? 'hs256_secret_env verifies HS256 only'
        : (SECRET_ALGORITHMS as readonly string[]).includes(s)
          ? 'a JWKS holds public keys; use hs256_secret_env for HS256'
          : `expected one of ${allowed.join(', ')}`;
      err(`${f}[${i}]`, `algorithm ${q(s)} is not allowed here (line ${item.line}); ${why}`);
    } else if (!algorithms.includes(s)) algorithms.push(s);
  });
  return algorithms;
}

function keys(map: YMap, p: string, allowed: readonly string[], err: Report): void {
  for (const d of map.duplicates) err(join(p, d.key), `duplicate key${at(d.line)}; first defined on line ${d.firstLine}`);
  for (const line of map.complexKeyLines) err(p, `mapping keys must be strings${at(line)}`);
  for (const [key, entry] of map.entries) {
    if (!allowed.includes(key)) err(join(p, key), `unknown key ${q(key)}${at(entry.keyLine)}; allowed here: ${allowed.join(', ')}`);
  }
}

/** A string field: a plain or quoted scalar (its source text for numbers/booleans, as yaml.v2); null gives ''. */
function str(node: YNode, field: string, err: Report): string | undefined {
  if (node.kind !== 'scalar') {
    err(field, `must be a string, got ${describe(node)}${at(node.line)}`);
    return undefined;
  }
  if (node.value === null) return '';
  return typeof node.value === 'string' ? node.value : node.source;
}

function int(node: YNode, field: string, min: number, max: number, err: Report): number | undefined {
  if (
    node.kind === 'scalar' &&
    !node.quoted &&
    typeof node.value === 'number' &&
    Number.isSafeInteger(node.value) &&
    !/[.eE]/.test((node as YScalar).source)
  ) {
    const v = node.value;
    if (v >= min && v <= max) return v;
  }
  err(field, `must be an integer from ${min} to ${max}, got ${describe(node)}${at(node.line)}`);
  return undefined;
}
