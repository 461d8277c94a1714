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
export const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;
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
    err(join(P, 'fallback_entry'), `must differ from token_entry (both ${q(tokenEntry)})${at(e.get('fallback_entry')?.keyLine ?? e.get('token_entry')?.keyLine ?? node.line)}`);
  } else if (tokenEntry === resolvedEntry) {
    err(join(P, 'resolved_entry'), `must differ from token_entry (both ${q(tokenEntry)})${at(e.get('resolved_entry')?.keyLine ?? e.get('claim')?.keyLine ?? node.line)}`);
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

function checkJwt(node: YNode, file: string, err: Report): JwtOptions | undefined {
  const P = 'resolution.jwt';
  if (node.kind !== 'map') {
    err(P, `must be a mapping, got ${describe(node)}${at(node.line)}`);
    return undefined;
  }
  let failed = false;
  const e2: Report = (f, d) => {
    failed = true;
    err(f, d);
  };
  keys(node, P, JWT_KEYS, e2);
  const e = node.entries;

  let issuer = '';
  const iss = e.get('issuer');
  if (iss === undefined) e2(join(P, 'issuer'), `missing${at(node.line)}; tokens from any issuer would be accepted`);
  else {
    const s = str(iss.value, join(P, 'issuer'), e2);
    if (s === '') e2(join(P, 'issuer'), `must not be empty${at(iss.keyLine)}`);
    else if (s !== undefined) issuer = s;
  }

  const audience: string[] = [];
  const aud = e.get('audience');
  if (aud === undefined) e2(join(P, 'audience'), `missing${at(node.line)}; tokens for any audience would be accepted`);
  else {
    const items = aud.value.kind === 'seq' ? aud.value.items : [aud.value];
    items.forEach((item, i) => {
      const f = aud.value.kind === 'seq' ? `${join(P, 'audience')}[${i}]` : join(P, 'audience');
      const s = str(item, f, e2);
      if (s === '') e2(f, `must not be empty${at(item.line)}`);
      else if (s !== undefined) audience.push(s);
    });
    if (aud.value.kind === 'seq' && items.length === 0) e2(join(P, 'audience'), `must list at least one audience${at(aud.keyLine)}`);
  }

  // The key source: exactly one.
  const sources = (['jwks_url', 'jwks_file', 'hs256_secret_env'] as const).filter((k) => e.has(k));
  let keySource: KeySourceSpec | undefined;
  const num = (name: string, min: number, max: number, def: number): number => {
    const x = e.get(name);
    return x === undefined ? def : (int(x.value, join(P, name), min, max, e2) ?? def);
  };
  const timeoutMs = num('jwks_timeout_ms', 1, 10_000, RESOLUTION_DEFAULTS.jwksTimeoutMs);
  const refreshSeconds = num('jwks_refresh_seconds', 1, 86_400, RESOLUTION_DEFAULTS.jwksRefreshSeconds);
  const cooldownSeconds = num('jwks_cooldown_seconds', 0, 3600, RESOLUTION_DEFAULTS.jwksCooldownSeconds);
  const clockToleranceSeconds = num('clock_tolerance_seconds', 0, 300, RESOLUTION_DEFAULTS.clockToleranceSeconds);

  if (sources.length !== 1) {
    const which = sources.length === 0 ? 'none is set' : `found ${sources.join(' and ')}`;
    e2(P, `needs exactly one key source (jwks_url, jwks_file or hs256_secret_env); ${which}${at(node.line)}`);
  } else {
    const kind = sources[0]!;
    const entry = e.get(kind)!;
    const s = str(entry.value, join(P, kind), e2);
    if (s !== undefined) {
      if (kind === 'jwks_url') {
        let url: URL | undefined;
        try {
          url = new URL(s);
        } catch {
          url = undefined;
        }
        if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
          e2(join(P, kind), `must be an http:// or https:// URL, got ${q(s)}${at(entry.keyLine)}`);
        } else keySource = { kind, url: url.href, timeoutMs, refreshSeconds, cooldownSeconds };
      } else if (kind === 'jwks_file') {
        if (s === '') e2(join(P, kind), `must not be empty${at(entry.keyLine)}`);
        else keySource = { kind, path: path.resolve(path.dirname(file), s), refreshSeconds, cooldownSeconds };
      } else if (!ENV_NAME_RE.test(s)) {
        e2(join(P, kind), `must name an environment variable (letters, digits, '_'), got ${q(s)}${at(entry.keyLine)}; the secret itself never goes in a config file`);
      } else keySource = { kind, env: s };
    }
    if (kind !== 'jwks_url' && e.has('jwks_timeout_ms')) e2(join(P, 'jwks_timeout_ms'), `is only valid with jwks_url${at(e.get('jwks_timeout_ms')!.keyLine)}`);
    if (kind === 'hs256_secret_env') {
      for (const k of ['jwks_refresh_seconds', 'jwks_cooldown_seconds'] as const) {
        if (e.has(k)) e2(join(P, k), `is only valid with jwks_url or jwks_file${at(e.get(k)!.keyLine)}`);
      }
    }
  }

  const secret = sources.length === 1 && sources[0] === 'hs256_secret_env';
  const allowed: readonly string[] = secret ? SECRET_ALGORITHMS : ASYMMETRIC_ALGORITHMS;
  let algorithms: string[] = secret ? [...SECRET_ALGORITHMS] : [...RESOLUTION_DEFAULTS.jwksAlgorithms];
  const algs = e.get('algorithms');
  if (algs !== undefined) {
    const f = join(P, 'algorithms');
    if (algs.value.kind !== 'seq') e2(f, `must be a list of algorithm names, got ${describe(algs.value)}${at(algs.value.line)}`);
    else if (algs.value.items.length === 0) e2(f, `must list at least one algorithm${at(algs.keyLine)}`);
    else {
      algorithms = [];
      algs.value.items.forEach((item, i) => {
        const s = str(item, `${f}[${i}]`, e2);
        if (s === undefined) return;
        if (s.toLowerCase() === 'none') e2(`${f}[${i}]`, `'none' (unsigned tokens) is never accepted${at(item.line)}`);
        else if (!allowed.includes(s)) {
          const why = secret
            ? 'hs256_secret_env verifies HS256 only'
            : (SECRET_ALGORITHMS as readonly string[]).includes(s)
              ? 'a JWKS holds public keys; use hs256_secret_env for HS256'
              : `expected one of ${allowed.join(', ')}`;
          e2(`${f}[${i}]`, `algorithm ${q(s)} is not allowed here (line ${item.line}); ${why}`);
        } else if (!algorithms.includes(s)) algorithms.push(s);
      });
    }
  }

  if (failed || keySource === undefined) return undefined;
  return { issuer, audience, algorithms, clockToleranceSeconds, keys: keySource };
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
  if (node.kind === 'scalar' && !node.quoted && typeof node.value === 'number' && Number.isSafeInteger(node.value) && !/[.eE]/.test((node as YScalar).source)) {
    const v = node.value;
    if (v >= min && v <= max) return v;
  }
  err(field, `must be an integer from ${min} to ${max}, got ${describe(node)}${at(node.line)}`);
  return undefined;
}
