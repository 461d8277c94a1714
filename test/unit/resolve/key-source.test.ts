import { describe, expect, it } from 'vitest';
import { createKeySource, UnknownKeyError } from '../../../src/resolve/key-source.js';
import { jwksOf, makeKey } from './tokens.js';

/**
 * The JWKS source's refresh rules, with a scripted fetch and a hand-moved clock: every
 * expectation is about which fetches happen and which keys answer, never about elapsed time.
 */
interface Scripted {
  readonly fetch: typeof fetch;
  readonly calls: number;
  /** Answers the oldest pending fetch: a JWKS body, an HTTP status, or a network error. */
  answer(with_: object | number | Error): Promise<void>;
  readonly pending: number;
}

function scriptedFetch(): Scripted {
  const waiting: { resolve: (r: Response) => void; reject: (e: Error) => void }[] = [];
  let calls = 0;
  return {
    fetch: ((_url: string, init?: RequestInit) =>
      new Promise<Response>((resolve, reject) => {
        calls++;
        waiting.push({ resolve, reject });
        init?.signal?.addEventListener('abort', () => reject(new Error('aborted')));
      })) as typeof fetch,
    get calls() {
      return calls;
    },
    get pending() {
      return waiting.length;
    },
    async answer(w) {
      const next = waiting.shift();
      if (next === undefined) throw new Error('no pending fetch');
      if (w instanceof Error) next.reject(w);
      else if (typeof w === 'number') next.resolve(new Response('nope', { status: w }));
      else next.resolve(new Response(JSON.stringify(w), { status: 200 }));
      // let the source's continuation run
      for (let i = 0; i < 10; i++) await Promise.resolve();
    },
  };
}

const URL_SPEC = { kind: 'jwks_url', url: 'http://issuer.invalid/jwks', timeoutMs: 500, refreshSeconds: 300, cooldownSeconds: 10 } as const;

async function setup() {
  const k1 = await makeKey('ES256', 'k1');
  const k2 = await makeKey('ES256', 'k2');
  const f = scriptedFetch();
  let now = 1_000_000;
  const events: string[] = [];
  const { source, problem } = await createKeySource(URL_SPEC, {
    now: () => now,
    fetch: f.fetch,
    env: {},
    events: { onRefresh: (ok, error, keys) => events.push(ok ? `ok:${keys}` : `fail:${error}:${keys}`) },
  });
  return { k1, k2, f, source, problem, events, advance: (ms: number) => (now += ms) };
}

/** Lets every queued promise continuation run (the source decides on a fetch after an async key lookup). */
const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

const settle = async (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'key',
    (e: unknown) => (e instanceof UnknownKeyError ? 'unknown' : `error:${String(e)}`),
  );

describe('JWKS key source', () => {
  it('starts one fetch when built (without waiting for it); a token arriving meanwhile waits for that fetch', async () => {
    const { k1, f, source, problem, events } = await setup();
    expect(problem).toBeUndefined();
    expect(f.calls).toBe(1);
    const p = settle(source.getKey({ alg: 'ES256', kid: 'k1' }));
    expect(f.calls).toBe(1); // joined, not a second fetch
    await f.answer(jwksOf(k1));
    expect(await p).toBe('key');
    expect(events).toEqual(['ok:1']);
  });

  it('an unknown kid refreshes only once the cooldown has passed; otherwise it fails at once, without a fetch', async () => {
    const { k1, k2, f, source, advance } = await setup();
    await f.answer(jwksOf(k1));
    advance(9_999);
    expect(await settle(source.getKey({ alg: 'ES256', kid: 'k2' }))).toBe('unknown');
    expect(f.calls).toBe(1);
    advance(1);
    const p = settle(source.getKey({ alg: 'ES256', kid: 'k2' }));
    const q = settle(source.getKey({ alg: 'ES256', kid: 'k2' })); // joins the same fetch
    await flush();
    expect(f.calls).toBe(2);
    await f.answer(jwksOf(k1, k2)); // rotation: k2 published
    expect([await p, await q]).toEqual(['key', 'key']);
    expect(await settle(source.getKey({ alg: 'ES256', kid: 'k1' }))).toBe('key');
  });

  it('a failed fetch keeps the cached keys; unknown kids keep failing; the cooldown also applies after failures', async () => {
    const { k1, f, source, events, advance } = await setup();
    await f.answer(jwksOf(k1));
    advance(10_000);
    const p = settle(source.getKey({ alg: 'ES256', kid: 'k9' }));
    await flush();
    await f.answer(503);
    expect(await p).toBe('unknown');
    expect(await settle(source.getKey({ alg: 'ES256', kid: 'k1' }))).toBe('key');
    expect(await settle(source.getKey({ alg: 'ES256', kid: 'k9' }))).toBe('unknown');
    expect(f.calls).toBe(2); // no retry inside the cooldown
    advance(10_000);
    const r = settle(source.getKey({ alg: 'ES256', kid: 'k9' }));
    await flush();
    await f.answer(new TypeError('fetch failed'));
    expect(await r).toBe('unknown');
    expect(events).toEqual(['ok:1', 'fail:HTTP 503 (expected 200):1', 'fail:fetch failed: fetch failed:1']);
  });

  it('stale keys trigger a background refresh that nobody waits for', async () => {
    const { k1, f, source, advance } = await setup();
    await f.answer(jwksOf(k1));
    advance(300_000);
    expect(await settle(source.getKey({ alg: 'ES256', kid: 'k1' }))).toBe('key'); // answered from cache...
    expect(f.calls).toBe(2); // ...while a refresh was started
    expect(f.pending).toBe(1);
    expect(await settle(source.getKey({ alg: 'ES256', kid: 'k1' }))).toBe('key'); // no second refresh while one runs
    expect(f.calls).toBe(2);
    await f.answer(500);
  });

  it('a JWKS that is not a key set counts as a failed load', async () => {
    const { f, source, events } = await setup();
    const p = settle(source.getKey({ alg: 'ES256', kid: 'k1' }));
    await f.answer({ not: 'a jwks' });
    expect(await p).toBe('unknown');
    expect(events).toEqual(['fail:JSON Web Key Set malformed:0']);
  });

  it('close() aborts the in-flight fetch and stops further fetches', async () => {
    const { k1, f, source, advance } = await setup();
    await f.answer(jwksOf(k1));
    advance(10_000);
    const p = settle(source.getKey({ alg: 'ES256', kid: 'k2' }));
    await flush();
    expect(f.pending).toBe(1);
    source.close();
    expect(await p).toBe('unknown');
    advance(10_000);
    expect(await settle(source.getKey({ alg: 'ES256', kid: 'k2' }))).toBe('unknown');
    expect(await settle(source.getKey({ alg: 'ES256', kid: 'k1' }))).toBe('key'); // cached keys still answer
    expect(f.calls).toBe(2);
  });
});
