import { readFile } from 'node:fs/promises';
import { createLocalJWKSet, errors, type CryptoKey, type JSONWebKeySet, type JWSHeaderParameters } from 'jose';
import type { KeySourceSpec } from '../config/resolution-schema.js';

/**
 * Where verification keys come from: a JWKS over HTTP, a JWKS file, or a shared HS256 secret.
 *
 * JWKS contract (URL and file alike; we do not use jose's `createRemoteJWKSet` because it drops
 * its keys once `cacheMaxAge` passes and then fails every verification while the endpoint is
 * down, and it re-fetches on every unknown `kid` after a *failed* fetch):
 * - keys are loaded once when the source is built, then kept until a later load succeeds: an
 *   endpoint that is down never takes working keys away (stale-while-revalidate);
 * - after `refreshSeconds` a request starts a background refresh; nobody waits for it;
 * - a token whose `kid` is not in the set waits for a refresh (that is how a rotation is picked
 *   up) only if one is in flight or allowed now; otherwise it fails at once with
 *   {@link UnknownKeyError} (the resolver then falls back to the client address);
 * - at most one fetch is in flight, and fetches start at least `cooldownSeconds` apart whatever
 *   triggers them (success or failure), so a flood of made-up `kid`s cannot hammer the issuer;
 * - a fetch is bounded by `timeoutMs` (connect, headers and body together), so the longest any
 *   request waits on the issuer is one timeout, once per cooldown; time this process was blocked
 *   (start-up's synchronous work) is not counted against the issuer (see fetchDeadline);
 * - no timers: a source nobody uses costs nothing and needs no cleanup beyond {@link close}.
 */

/** No key can verify this token (unknown `kid`, no keys loaded yet, or no secret configured). */
export class UnknownKeyError extends Error {
  constructor() {
    super('no verification key for this token');
    this.name = 'UnknownKeyError';
  }
}

/** Notified of key loads (for metrics and transition logs). */
export interface KeySourceEvents {
  onRefresh?(ok: boolean, error: string | undefined, keyCount: number): void;
}

export interface KeySource {
  /** A jose key resolver: the key for this protected header. Rejects with {@link UnknownKeyError} when none. */
  getKey(header: JWSHeaderParameters): Promise<CryptoKey | Uint8Array>;
  /** Aborts an in-flight fetch; later calls fail with {@link UnknownKeyError} unless keys are cached. */
  close(): void;
}

export interface KeySourceDeps {
  readonly now: () => number;
  readonly fetch: typeof fetch;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly events?: KeySourceEvents | undefined;
}

/** Shortest HS256 secret accepted: RFC 7518 section 3.2 asks for a key at least as long as the hash. */
export const MIN_SECRET_BYTES = 32;
/** Largest JWKS document read (a JWKS is a few KiB; this is a guard, not a tuning knob). */
export const MAX_JWKS_BYTES = 1024 * 1024;

/**
 * Builds a key source. Returns `problem` (a sentence without secrets) when the source can never
 * verify anything as configured (secret variable unset or too short, JWKS file unreadable or
 * invalid); the source then answers {@link UnknownKeyError} to every token (file sources keep
 * retrying their file).
 */
export async function createKeySource(spec: KeySourceSpec, deps: KeySourceDeps): Promise<{ source: KeySource; problem?: string }> {
  if (spec.kind === 'hs256_secret_env') {
    const raw = deps.env[spec.env];
    const secret = raw === undefined ? undefined : new TextEncoder().encode(raw);
    if (secret === undefined || secret.byteLength < MIN_SECRET_BYTES) {
      const why = secret === undefined || secret.byteLength === 0 ? 'is not set' : `is shorter than ${MIN_SECRET_BYTES} bytes`;
      return { source: noKeys(), problem: `environment variable ${spec.env} ${why}` };
    }
    return {
      source: {
        getKey: () => Promise.resolve(secret),
        close: () => undefined,
      },
    };
  }
  const controller = new AbortController();
  const load =
    spec.kind === 'jwks_url'
      ? (): Promise<unknown> => fetchJwks(spec.url, spec.timeoutMs, controller.signal, deps.fetch)
      : async (): Promise<unknown> => {
          const text = await readFile(spec.path, 'utf8');
          return JSON.parse(text) as unknown;
        };
  const source = new JwksSource(load, spec.refreshSeconds * 1000, spec.cooldownSeconds * 1000, deps.now, deps.events, controller);
  // The first load is awaited for files (fast, and a broken file is a configuration problem to
  // report) but not for URLs: an issuer that is down must not delay start-up; tokens arriving
  // meanwhile wait for this same fetch (bounded by its timeout).
  const first = source.refresh();
  if (spec.kind === 'jwks_file') {
    const error = await first;
    if (error !== undefined) return { source, problem: `cannot load ${spec.path}: ${error}` };
  }
  return { source };
}

function noKeys(): KeySource {
  return { getKey: () => Promise.reject(new UnknownKeyError()), close: () => undefined };
}

type LocalSet = ReturnType<typeof createLocalJWKSet>;

class JwksSource implements KeySource {
  #set: LocalSet | undefined;
  #loadedAt = Number.NEGATIVE_INFINITY;
  #lastAttempt = Number.NEGATIVE_INFINITY;
  #inflight: Promise<string | undefined> | undefined;
  #closed = false;

  constructor(
    private readonly load: () => Promise<unknown>,
    private readonly refreshMs: number,
    private readonly cooldownMs: number,
    private readonly now: () => number,
    private readonly events: KeySourceEvents | undefined,
    private readonly controller: AbortController,
  ) {}

  async getKey(header: JWSHeaderParameters): Promise<CryptoKey | Uint8Array> {
    const set = this.#set;
    if (set !== undefined && this.now() - this.#loadedAt >= this.refreshMs && this.#mayFetch()) void this.refresh();
    const known = (await this.#lookup(set, header)) ?? (this.#set !== set ? await this.#lookup(this.#set, header) : undefined);
    if (known !== undefined) return known;
    // Unknown kid (or nothing loaded yet): wait for a fetch only if one is running or allowed now.
    const before = this.#set;
    if (this.#inflight !== undefined) await this.#inflight;
    else if (this.#mayFetch()) await this.refresh();
    else throw new UnknownKeyError();
    const after = this.#set !== before ? await this.#lookup(this.#set, header) : undefined;
    if (after === undefined) throw new UnknownKeyError();
    return after;
  }

  /** The key for `header` in `set`, or undefined when the set has none (other jose errors propagate). */
  async #lookup(set: LocalSet | undefined, header: JWSHeaderParameters): Promise<CryptoKey | undefined> {
    if (set === undefined) return undefined;
    try {
      return await set(header);
    } catch (err) {
      if (err instanceof errors.JWKSNoMatchingKey) return undefined;
      throw err;
    }
  }

  #mayFetch(): boolean {
    return !this.#closed && this.#inflight === undefined && this.now() - this.#lastAttempt >= this.cooldownMs;
  }

  /** Loads the set once (joins an in-flight load). Never rejects: resolves with an error text or undefined. */
  refresh(): Promise<string | undefined> {
    if (this.#inflight !== undefined) return this.#inflight;
    this.#lastAttempt = this.now();
    const p = (async (): Promise<string | undefined> => {
      try {
        const json = await this.load();
        const set = createLocalJWKSet(json as JSONWebKeySet);
        if (this.#closed) return 'closed';
        this.#set = set;
        this.#loadedAt = this.now();
        this.events?.onRefresh?.(true, undefined, (json as JSONWebKeySet).keys.length);
        return undefined;
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        if (!this.#closed) this.events?.onRefresh?.(false, message, this.#set === undefined ? 0 : (this.#set.jwks()?.keys.length ?? 0));
        return message;
      } finally {
        this.#inflight = undefined;
      }
    })();
    this.#inflight = p;
    return p;
  }

  close(): void {
    this.#closed = true;
    this.controller.abort();
  }
}

/** Most times one fetch's deadline is pushed back because this process, not the issuer, was stalled. */
export const MAX_STALL_EXTENSIONS = 3;

/**
 * A fetch deadline of `timeoutMs` that counts only time this process could have spent on the
 * fetch. An `AbortSignal.timeout` armed when the fetch starts also counts synchronous work that
 * follows in the same turn (start-up builds fastify and the gRPC server right after the resolver
 * started its first fetch: about 250 ms on a cold start), so with a short `jwks_timeout_ms` it
 * fired before the request was even written, and the cooldown then kept valid tokens on the
 * client-address fallback. Here a timer that fires more than `timeoutMs` late (the event loop was
 * blocked for longer than the whole timeout, so the answer may be unread or the request unsent)
 * is re-armed for a full timeout instead, at most {@link MAX_STALL_EXTENSIONS} times, so an
 * issuer that does not answer still fails within a bounded time.
 */
function fetchDeadline(timeoutMs: number): { signal: AbortSignal; clear(): void } {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let extensions = 0;
  const arm = (): void => {
    const armedAt = performance.now();
    timer = setTimeout(() => {
      const late = performance.now() - armedAt - timeoutMs;
      if (late > timeoutMs && extensions < MAX_STALL_EXTENSIONS) {
        extensions++;
        arm();
      } else controller.abort();
    }, timeoutMs);
    timer.unref();
  };
  arm();
  return { signal: controller.signal, clear: () => clearTimeout(timer) };
}

async function fetchJwks(url: string, timeoutMs: number, closed: AbortSignal, fetchImpl: typeof fetch): Promise<unknown> {
  const deadline = fetchDeadline(timeoutMs);
  try {
    return await fetchJwksWithin(url, timeoutMs, deadline.signal, closed, fetchImpl);
  } finally {
    deadline.clear();
  }
}

async function fetchJwksWithin(
  url: string,
  timeoutMs: number,
  timeout: AbortSignal,
  closed: AbortSignal,
  fetchImpl: typeof fetch,
): Promise<unknown> {
  const signal = AbortSignal.any([timeout, closed]);
  let res: Response;
  try {
    res = await fetchImpl(url, { signal, redirect: 'manual', headers: { accept: 'application/jwk-set+json, application/json' } });
  } catch (err) {
    if (signal.aborted && !closed.aborted) throw new Error(`no answer within ${timeoutMs} ms`);
    throw new Error(`fetch failed: ${describeFetchError(err)}`);
  }
  try {
    if (res.status !== 200) throw new Error(`HTTP ${res.status} (expected 200)`);
    const declared = Number(res.headers.get('content-length') ?? '0');
    if (declared > MAX_JWKS_BYTES) throw new Error(`JWKS larger than ${MAX_JWKS_BYTES} bytes`);
    const text = await res.text();
    if (text.length > MAX_JWKS_BYTES) throw new Error(`JWKS larger than ${MAX_JWKS_BYTES} bytes`);
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new Error('response is not JSON');
    }
  } catch (err) {
    await res.body?.cancel().catch(() => undefined);
    if (signal.aborted && !closed.aborted) throw new Error(`no answer within ${timeoutMs} ms`);
    throw err;
  }
}

function describeFetchError(err: unknown): string {
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause : undefined;
  const code = cause !== undefined && 'code' in cause ? String((cause as { code: unknown }).code) : undefined;
  if (code !== undefined) return code;
  return err instanceof Error ? err.message : String(err);
}
