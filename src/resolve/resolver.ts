import { REQUEST_LIMITS } from '../limiter/limiter.js';
import type { DescriptorEntry, RateLimitCheck, RequestDescriptor } from '../limiter/types.js';
import { redactUrl } from '../util/redact.js';
import { maskAddress } from './ip.js';
import { createKeySource, type KeySource } from './key-source.js';
import type { FallbackOutcome, ResolutionOutcome } from './outcome.js';
import type { ResolutionOptions } from '../config/resolution-schema.js';
import { TokenCache, tokenHash } from './token-cache.js';
import { extractToken, verifyToken, type VerifyResult } from './verifier.js';

/**
 * Descriptor resolution: the stage between the transport adapters and the limiter that turns a
 * bearer token into a verified company ID, or else into the client address.
 *
 * For a domain whose config has a `resolution:` block, each request descriptor is rewritten on
 * its own (a domain without one passes through untouched, same object):
 *
 * | descriptor has                         | token verifies             | token fails, is missing or malformed |
 * | -------------------------------------- | -------------------------- | ------------------------------------ |
 * | token entry (+ fallback entry)         | token entry -> (resolved_entry, claim); fallback entry removed | token entry -> (fallback_entry, masked address); the descriptor's own fallback entry removed |
 * | token entry, no fallback entry         | token entry -> (resolved_entry, claim) | token entry -> (fallback_entry, address of the first descriptor of the request that has one, else `unknown`) |
 * | fallback entry only                    | -                          | fallback value masked (outcome `fallback_missing`) |
 * | neither                                | untouched, not counted     | untouched, not counted |
 *
 * Other entries keep their order; the replacement takes the token entry's position. So
 * `[(authorization, Bearer ..), (remote_address, ip), (path, /x)]` becomes
 * `[(company_id, acme), (path, /x)]` or `[(remote_address, ip), (path, /x)]`: the same shapes as
 * descriptors sent for authenticated and anonymous callers, matching the same config rules.
 * Callers whose address is unknown share the one `unknown` counter (they are never unlimited).
 *
 * The raw token leaves this module only as its SHA-256 (the cache key): it never reaches a
 * counter key, a log line or a metric label, because every token entry is replaced here.
 *
 * Cost: a cache hit (or a request without tokens) resolves synchronously; only a token not yet in
 * the cache makes {@link DescriptorResolver.resolve} return a promise. Concurrent requests with
 * the same new token share one verification.
 *
 * Config reloads: the resolver reads the current snapshot per request. Per domain, the key
 * source (with its JWKS) and the cache survive a reload that leaves the domain's resolution
 * block unchanged; a changed block gets a fresh source and cache.
 */

/** The descriptor value used when a token fails and the request carries no client address. */
export const UNKNOWN_ADDRESS = 'unknown';

/** Telemetry hooks (the resolver stays free of prom-client). */
export interface ResolverObserver {
  /** One resolved descriptor. `domain` is a configured domain (one with a resolution block). */
  onResolution?(domain: string, outcome: ResolutionOutcome): void;
  /** One token lookup in the verification cache. */
  onCacheLookup?(domain: string, hit: boolean): void;
  /** One JWKS load attempt (URL or file). */
  onJwksRefresh?(domain: string, ok: boolean): void;
}

/** The subset of a pino logger used; messages carry domain, source and error, never tokens. */
export interface ResolverLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** What the resolver needs from a config snapshot (`CompiledSnapshot` satisfies it). */
export interface ResolutionConfigView {
  readonly domainNames: readonly string[];
  domainOptions(domain: string): { readonly resolution?: ResolutionOptions | undefined } | undefined;
}

export interface ResolutionConfigSource {
  current(): ResolutionConfigView;
}

/** A domain whose resolution can never verify a token as configured (the domain then limits every caller by address). */
export interface ResolutionProblem {
  readonly domain: string;
  /** Config file holding the resolution block. */
  readonly file: string;
  /** Dotted config field, e.g. `resolution.jwt.hs256_secret_env`. */
  readonly field: string;
  /** What is wrong, without secrets. */
  readonly detail: string;
  /** `file: field: detail`, formatted like a config error. */
  readonly message: string;
}

export interface DescriptorResolverOptions {
  readonly config: ResolutionConfigSource;
  readonly observer?: ResolverObserver | undefined;
  readonly logger?: ResolverLogger | undefined;
  /** Clock in Unix ms: token expiry, cache validity and JWKS refresh timing. Default `Date.now`. */
  readonly now?: (() => number) | undefined;
  /** HTTP client for `jwks_url`. Default: the global `fetch`. */
  readonly fetch?: typeof fetch | undefined;
  /** Where `hs256_secret_env` variables are read. Default: `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined;
}

interface DomainEntry {
  readonly fingerprint: string;
  readonly ready: Promise<{ resolver: DomainResolver; problem: ResolutionProblem | undefined }>;
  resolver: DomainResolver | undefined;
}

export class DescriptorResolver {
  readonly #config: ResolutionConfigSource;
  readonly #observer: ResolverObserver | undefined;
  readonly #logger: ResolverLogger | undefined;
  readonly #now: () => number;
  readonly #fetch: typeof fetch;
  readonly #env: Readonly<Record<string, string | undefined>>;
  /** Fast path: the options object of a snapshot -> its entry. */
  #byOptions = new WeakMap<ResolutionOptions, DomainEntry>();
  /** Reuse across reloads: domain + options fingerprint -> entry. */
  readonly #byFingerprint = new Map<string, DomainEntry>();
  #closed = false;

  constructor(options: DescriptorResolverOptions) {
    this.#config = options.config;
    this.#observer = options.observer;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
    this.#fetch = options.fetch ?? fetch;
    this.#env = options.env ?? process.env;
  }

  /**
   * The check the limiter should see. Returns `check` itself when the domain has no resolution
   * block or nothing changes; a promise only when a token must be verified (never rejects).
   */
  resolve(check: RateLimitCheck): RateLimitCheck | Promise<RateLimitCheck> {
    const opts = this.#config.current().domainOptions(check.domain)?.resolution;
    if (opts === undefined) return check;
    const entry = this.#entry(check.domain, opts);
    if (entry.resolver !== undefined) return entry.resolver.resolve(check);
    return entry.ready.then(({ resolver }) => resolver.resolve(check));
  }

  /**
   * Builds (or keeps) the resolvers of every domain of `view` that has a resolution block, starts
   * their JWKS loads, and drops resolvers of domains or blocks no longer configured. Resolves
   * once file and secret sources are loaded (never waits on a JWKS URL) with the problems found.
   * Call at start-up and after each config swap; {@link resolve} also builds lazily.
   */
  async prepare(view: ResolutionConfigView = this.#config.current()): Promise<readonly ResolutionProblem[]> {
    const keep = new Set<string>();
    const waits: Promise<{ problem: ResolutionProblem | undefined }>[] = [];
    for (const domain of view.domainNames) {
      const opts = view.domainOptions(domain)?.resolution;
      if (opts === undefined) continue;
      const entry = this.#entry(domain, opts);
      keep.add(entry.fingerprint);
      waits.push(entry.ready);
    }
    for (const [fp, entry] of this.#byFingerprint) {
      if (keep.has(fp)) continue;
      this.#byFingerprint.delete(fp);
      void entry.ready.then(({ resolver }) => resolver.close());
    }
    const results = await Promise.all(waits);
    return results.flatMap((r) => (r.problem === undefined ? [] : [r.problem]));
  }

  /** Aborts in-flight JWKS fetches; resolution keeps working from cached keys and verified tokens. */
  close(): void {
    this.#closed = true;
    for (const entry of this.#byFingerprint.values()) void entry.ready.then(({ resolver }) => resolver.close());
  }

  #entry(domain: string, opts: ResolutionOptions): DomainEntry {
    const fast = this.#byOptions.get(opts);
    if (fast !== undefined) return fast;
    const fingerprint = fingerprintOf(domain, opts);
    let entry = this.#byFingerprint.get(fingerprint);
    if (entry === undefined) {
      const made: DomainEntry = {
        fingerprint,
        resolver: undefined,
        ready: this.#build(domain, opts).then((r) => ((made.resolver = r.resolver), r)),
      };
      entry = made;
      this.#byFingerprint.set(fingerprint, entry);
    }
    this.#byOptions.set(opts, entry);
    return entry;
  }

  async #build(domain: string, opts: ResolutionOptions): Promise<{ resolver: DomainResolver; problem: ResolutionProblem | undefined }> {
    const spec = opts.jwt.keys;
    const where = spec.kind === 'jwks_url' ? redactUrl(spec.url) : spec.kind === 'jwks_file' ? spec.path : undefined;
    let state: 'new' | 'ok' | 'failing' = 'new';
    const { source, problem } = await createKeySource(spec, {
      now: this.#now,
      fetch: this.#fetch,
      env: this.#env,
      events: {
        // Logs on transitions only (first load, failure after success, recovery), never per request.
        onRefresh: (ok, error, keyCount) => {
          this.#observer?.onJwksRefresh?.(domain, ok);
          if (ok && state !== 'ok')
            this.#logger?.info({ domain, jwks: where, keys: keyCount }, state === 'new' ? 'JWKS loaded' : 'JWKS reachable again');
          if (!ok && state !== 'failing')
            this.#logger?.warn(
              { domain, jwks: where, error, cachedKeys: keyCount },
              'JWKS load failed; cached keys stay in use, unknown keys fall back to the client address',
            );
          state = ok ? 'ok' : 'failing';
        },
      },
    });
    if (this.#closed) source.close();
    const resolver = new DomainResolver(domain, opts, source, this.#now, this.#observer);
    const field = `resolution.jwt.${spec.kind}`;
    const p =
      problem === undefined
        ? undefined
        : { domain, file: opts.file, field, detail: problem, message: `${opts.file}: ${field}: ${problem}` };
    return { resolver, problem: p };
  }
}

function fingerprintOf(domain: string, opts: ResolutionOptions): string {
  // file and line do not change behaviour: moving the block to another file keeps keys and cache.
  const { file: _file, line: _line, ...rest } = opts;
  return `${domain}\u0000${JSON.stringify(rest)}`;
}

function indexOfKey(entries: readonly DescriptorEntry[], key: string): number {
  for (let i = 0; i < entries.length; i++) if (entries[i]!.key === key) return i;
  return -1;
}

/** The resolution of one domain: its options, key source and verification cache. */
export class DomainResolver {
  readonly #cache: TokenCache;
  readonly #inflight = new Map<string, Promise<VerifyResult>>();

  constructor(
    readonly domain: string,
    readonly options: ResolutionOptions,
    private readonly keys: KeySource,
    private readonly now: () => number,
    private readonly observer: ResolverObserver | undefined,
  ) {
    this.#cache = new TokenCache(options.cacheSize);
  }

  /** Verified tokens currently cached. */
  get cachedTokens(): number {
    return this.#cache.size;
  }

  close(): void {
    this.keys.close();
  }

  resolve(check: RateLimitCheck): RateLimitCheck | Promise<RateLimitCheck> {
    const ds = check.descriptors;
    // The limiter rejects these; do no work for them (and verify nothing).
    if (ds.length === 0 || ds.length > REQUEST_LIMITS.maxDescriptors) return check;
    const o = this.options;
    let address: string | undefined;
    for (let i = 0; i < ds.length && address === undefined; i++) {
      const f = indexOfKey(ds[i]!.entries, o.fallbackEntry);
      if (f >= 0) address = ds[i]!.entries[f]!.value;
    }
    let out: RequestDescriptor[] | undefined;
    let pending: Promise<void>[] | undefined;
    let nowMs: number | undefined;
    // Envoy sends one token in several descriptors of a request: parse and hash it once (about
    // 0.5 us + 1 us per token).
    let lastRaw: string | undefined;
    let lastToken: ReturnType<typeof extractToken> = 'missing';
    let lastHash = '';
    for (let i = 0; i < ds.length; i++) {
      const d = ds[i]!;
      const t = indexOfKey(d.entries, o.tokenEntry);
      if (t < 0) {
        const f = indexOfKey(d.entries, o.fallbackEntry);
        if (f < 0) continue;
        this.#count('fallback_missing');
        const value = d.entries[f]!.value;
        const masked = maskAddress(value, o.ipv4Prefix, o.ipv6Prefix);
        if (masked !== value)
          (out ??= [...ds])[i] = { ...d, entries: d.entries.map((e, j) => (j === f ? { key: e.key, value: masked } : e)) };
        continue;
      }
      const raw = d.entries[t]!.value;
      if (raw !== lastRaw) {
        lastRaw = raw;
        lastToken = extractToken(raw);
        if (lastToken !== 'missing' && lastToken !== 'malformed') lastHash = tokenHash(lastToken);
      }
      const token = lastToken;
      if (token === 'missing' || token === 'malformed') {
        (out ??= [...ds])[i] = this.#fallback(d, t, address, token === 'missing' ? 'fallback_missing' : 'fallback_malformed');
        continue;
      }
      const hash = lastHash;
      nowMs ??= this.now();
      const cached = this.#cache.get(hash, nowMs);
      this.observer?.onCacheLookup?.(this.domain, cached !== undefined);
      if (cached !== undefined) {
        this.#count('verified');
        (out ??= [...ds])[i] = this.#verified(d, t, cached);
        continue;
      }
      const target = (out ??= [...ds]);
      (pending ??= []).push(
        this.#verify(token, hash).then((r) => {
          if (r.outcome === 'verified') {
            this.#count('verified');
            target[i] = this.#verified(d, t, r.value);
          } else target[i] = this.#fallback(d, t, address, r.outcome);
        }),
      );
    }
    if (out === undefined) return check;
    const resolved: RateLimitCheck = { ...check, descriptors: out };
    if (pending === undefined) return resolved;
    return Promise.all(pending).then(() => resolved);
  }

  #verify(token: string, hash: string): Promise<VerifyResult> {
    const running = this.#inflight.get(hash);
    if (running !== undefined) return running;
    const started = this.now();
    const p = verifyToken(token, this.options.jwt, this.options.claim, this.keys, started).then((r) => {
      this.#inflight.delete(hash);
      if (r.outcome === 'verified') {
        const nowMs = this.now();
        this.#cache.set(hash, r.value, Math.min(r.expiresAtMs, nowMs + this.options.cacheTtlSeconds * 1000), nowMs);
      }
      return r;
    });
    this.#inflight.set(hash, p);
    return p;
  }

  /** The token entry becomes (resolved_entry, value); every other token or fallback entry goes. */
  #verified(d: RequestDescriptor, t: number, value: string): RequestDescriptor {
    const o = this.options;
    const entries: DescriptorEntry[] = [];
    for (let j = 0; j < d.entries.length; j++) {
      const e = d.entries[j]!;
      if (j === t) entries.push({ key: o.resolvedEntry, value });
      else if (e.key !== o.tokenEntry && e.key !== o.fallbackEntry) entries.push(e);
    }
    return { ...d, entries };
  }

  /** The token entry becomes (fallback_entry, masked address); every other token or fallback entry goes. */
  #fallback(d: RequestDescriptor, t: number, requestAddress: string | undefined, outcome: FallbackOutcome): RequestDescriptor {
    this.#count(outcome);
    const o = this.options;
    const own = indexOfKey(d.entries, o.fallbackEntry);
    const raw = own >= 0 ? d.entries[own]!.value : (requestAddress ?? UNKNOWN_ADDRESS);
    const value = maskAddress(raw, o.ipv4Prefix, o.ipv6Prefix);
    const entries: DescriptorEntry[] = [];
    for (let j = 0; j < d.entries.length; j++) {
      const e = d.entries[j]!;
      if (j === t) entries.push({ key: o.fallbackEntry, value });
      else if (e.key !== o.tokenEntry && e.key !== o.fallbackEntry) entries.push(e);
    }
    return { ...d, entries };
  }

  #count(outcome: ResolutionOutcome): void {
    this.observer?.onResolution?.(this.domain, outcome);
  }
}
