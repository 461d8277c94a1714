import { describe, expect, it } from 'vitest';
import type { Backend } from '../../../src/limiter/ports.js';
import type { CounterOp, EvaluateOptions, EvaluateResult } from '../../../src/limiter/types.js';
import { MemoryBackend } from '../../../src/backend/memory.js';
import { compileConfig } from '../../../src/config/compile.js';
import type { CompiledSnapshot } from '../../../src/config/compiled.js';
import { ConfigStore } from '../../../src/config/store.js';
import { BackendUnavailableError, CancelledError, InvalidRequestError } from '../../../src/errors.js';
import { RateLimiter } from '../../../src/limiter/limiter.js';
import type { Decision, RateLimitCheck } from '../../../src/limiter/types.js';

/**
 * RateLimiter.decide: synchronous when its backend is (the memory backend's evaluateSync), a
 * promise when the backend must be asked asynchronously; the same decisions and errors either way.
 */

const T0 = 1_700_000_040_000;
const CONFIG = `
domain: edge
descriptors:
  - key: company
    rate_limit: { unit: minute, requests_per_unit: 2 }
`;
const CHECK: RateLimitCheck = { domain: 'edge', hitsAddend: 0, descriptors: [{ entries: [{ key: 'company', value: 'acme' }] }] };

/** The memory backend without its synchronous entry point: what a network backend looks like. */
class AsyncOnly implements Backend {
  readonly kind = 'async-only';
  constructor(private readonly inner: MemoryBackend) {}
  evaluate(ops: readonly CounterOp[], options: EvaluateOptions): Promise<EvaluateResult> {
    return this.inner.evaluate(ops, options);
  }
  isReady(): boolean {
    return this.inner.isReady();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

function limiterOn(backend: Backend): RateLimiter {
  const store = new ConfigStore<CompiledSnapshot>(compileConfig([{ path: 'edge.yaml', text: CONFIG }]));
  return new RateLimiter(store, backend, { keyPrefix: '', shadowMode: false, chargeOnDeny: false, now: () => T0 });
}

const codes = (d: Decision): string => `${d.code} ${d.statuses.map((s) => `${s.code}/${s.remaining}`).join(',')}`;

describe('RateLimiter.decide', () => {
  it('answers without a promise on the memory backend, and with one on an asynchronous backend, the same decisions', async () => {
    const sync = limiterOn(new MemoryBackend({ clock: () => T0 }));
    const async = limiterOn(new AsyncOnly(new MemoryBackend({ clock: () => T0 })));
    for (const expected of ['OK OK/1', 'OK OK/0', 'OVER_LIMIT OVER_LIMIT/0']) {
      const a = sync.decide(CHECK);
      const b = async.decide(CHECK);
      expect(a).not.toBeInstanceOf(Promise);
      expect(b).toBeInstanceOf(Promise);
      expect(codes(a as Decision)).toBe(expected);
      expect(codes(await b)).toBe(expected);
    }
  });

  it('answers an unknown domain and an unlimited request without a promise on any backend', () => {
    const limiter = limiterOn(new AsyncOnly(new MemoryBackend({ clock: () => T0 })));
    const unknown = limiter.decide({ ...CHECK, domain: 'elsewhere' });
    expect(unknown).not.toBeInstanceOf(Promise);
    expect(codes(unknown as Decision)).toBe('OK OK/0');
    const unmatched = limiter.decide({ ...CHECK, descriptors: [{ entries: [{ key: 'path', value: '/' }] }] });
    expect(unmatched).not.toBeInstanceOf(Promise);
  });

  it('throws synchronously on the memory backend, and shouldRateLimit turns the same errors into rejections', async () => {
    const backend = new MemoryBackend({ clock: () => T0 });
    const limiter = limiterOn(backend);
    expect(() => limiter.decide({ ...CHECK, domain: '' })).toThrow(InvalidRequestError);
    await expect(limiter.shouldRateLimit({ ...CHECK, domain: '' })).rejects.toThrow(InvalidRequestError);
    await backend.close();
    expect(() => limiter.decide(CHECK)).toThrow(BackendUnavailableError);
    await expect(limiter.shouldRateLimit(CHECK)).rejects.toThrow(BackendUnavailableError);
  });

  it('rejects (never throws) when the asynchronous backend fails', async () => {
    const backend = new MemoryBackend({ clock: () => T0 });
    const limiter = limiterOn(new AsyncOnly(backend));
    await backend.close();
    const pending = limiter.decide(CHECK);
    expect(pending).toBeInstanceOf(Promise);
    await expect(pending).rejects.toThrow(BackendUnavailableError);
  });

  it('does not evaluate a request whose caller has cancelled (CancelledError), on either backend', async () => {
    const memory = new MemoryBackend({ clock: () => T0 });
    const gone = { cancelled: true };
    expect(() => limiterOn(memory).decide(CHECK, undefined, gone)).toThrow(CancelledError);
    expect(() => limiterOn(new AsyncOnly(memory)).decide(CHECK, undefined, gone)).toThrow(CancelledError);
    expect(codes(limiterOn(memory).decide(CHECK) as Decision)).toBe('OK OK/1'); // nothing was charged
  });

  it("hands an asynchronous backend the caller's probe; the memory backend gets the cached options, no object per request", async () => {
    const seen: EvaluateOptions[] = [];
    const memory = new MemoryBackend({ clock: () => T0 });
    const syncSpy: Backend = {
      kind: 'spy',
      evaluate: (ops, o) => (seen.push(o), memory.evaluate(ops, o)),
      evaluateSync: (ops, o) => (seen.push(o), memory.evaluateSync(ops, o)),
      isReady: () => true,
      close: () => memory.close(),
    };
    const store = new ConfigStore<CompiledSnapshot>(compileConfig([{ path: 'edge.yaml', text: CONFIG }]));
    const production = { keyPrefix: '', shadowMode: false, chargeOnDeny: false }; // no test clock
    const sync = new RateLimiter(store, syncSpy, production);
    sync.decide(CHECK, undefined, { cancelled: false });
    sync.decide(CHECK, undefined, { cancelled: false });
    expect(seen[0]).toBe(seen[1]);
    expect(seen[0]).not.toHaveProperty('cancellation');

    seen.length = 0;
    const asyncOnly = new RateLimiter(store, { ...syncSpy, evaluateSync: undefined }, production);
    const probe = { cancelled: false };
    await asyncOnly.decide(CHECK, undefined, probe);
    await asyncOnly.decide(CHECK);
    expect(seen[0]).toEqual({ chargeOnDeny: false, now: undefined, domain: 'edge', cancellation: probe });
    expect(seen[1]).toEqual({ chargeOnDeny: false, now: undefined, domain: 'edge' });
  });
});
