import { describe, expect, it } from 'vitest';
import { MemoryBackend } from '../../../src/backend/memory.js';
import { InvalidRequestError, QuotaEnvoysError } from '../../../src/errors.js';
import {
  MAX_ENVOYS_PER_RULE,
  MAX_RULE_KEY_LENGTH,
  MemoryQuotaStore,
  createQuotaStore,
  type QuotaReport,
} from '../../../src/quota/index.js';

/** The memory quota store's bounds (each with its error) and the factory's checks. */
const T0 = 1_700_000_000_000 - (1_700_000_000_000 % 3_600_000);
const report = (ruleKey: string, envoyId: string): QuotaReport => ({
  ruleKey,
  envoyId,
  allowed: 1,
  denied: 0,
  elapsedSec: 1,
  limit: { requestsPerUnit: 6_000, windowMs: 60_000 },
});

describe('MemoryQuotaStore bounds', () => {
  it(`divides one rule among at most MAX_ENVOYS_PER_RULE (${MAX_ENVOYS_PER_RULE}) Envoys by default`, async () => {
    const store = new MemoryQuotaStore({ backend: new MemoryBackend({ sweepIntervalMs: 0 }) });
    const all = Array.from({ length: MAX_ENVOYS_PER_RULE }, (_, i) => report('p:{t}:fw', `envoy-${i}`));
    expect(await store.report(all, T0)).toHaveLength(MAX_ENVOYS_PER_RULE);
    const refused = store.report([report('p:{t}:fw', 'one-more')], T0 + 1);
    await expect(refused).rejects.toBeInstanceOf(QuotaEnvoysError);
    await expect(refused).rejects.toThrow(/already divided among 1024 Envoys/);
    // A known Envoy still reports.
    expect(await store.report([report('p:{t}:fw', 'envoy-7')], T0 + 2)).toHaveLength(1);
  });

  it('holds at most maxRules rule counters, dropping rules whose Envoys are all silent first', async () => {
    const store = new MemoryQuotaStore({ backend: new MemoryBackend({ sweepIntervalMs: 0 }), maxRules: 2 });
    await store.report([report('p:{a}:fw', 'e'), report('p:{b}:fw', 'e')], T0);
    await expect(store.report([report('p:{c}:fw', 'e')], T0 + 1_000)).rejects.toThrow(/holds 2 rule counters/);
    // 4 s later (4 reporting intervals) both are silent: their places are reused.
    expect(await store.report([report('p:{c}:fw', 'e')], T0 + 4_000)).toHaveLength(1);
  });

  it(`rejects a ruleKey longer than ${MAX_RULE_KEY_LENGTH} characters or empty`, async () => {
    const store = new MemoryQuotaStore({ backend: new MemoryBackend({ sweepIntervalMs: 0 }) });
    await expect(store.report([report('k'.repeat(MAX_RULE_KEY_LENGTH + 1), 'e')], T0)).rejects.toBeInstanceOf(InvalidRequestError);
    await expect(store.report([report('', 'e')], T0)).rejects.toThrow(/ruleKey must be 1\.\.1024/);
    expect(await store.report([report('k'.repeat(MAX_RULE_KEY_LENGTH), 'e')], T0)).toHaveLength(1);
  });

  it('forgetting an unknown Envoy or rule does nothing', async () => {
    const store = new MemoryQuotaStore({ backend: new MemoryBackend({ sweepIntervalMs: 0 }) });
    await expect(store.forget('p:{x}:fw', 'nobody', T0)).resolves.toBeUndefined();
  });
});

describe('createQuotaStore', () => {
  it('names what is missing', () => {
    expect(() => createQuotaStore({ type: 'memory' })).toThrow(/type 'memory' needs the memory counter backend as 'backend'/);
    expect(() => createQuotaStore({ type: 'redis' })).toThrow(/type 'redis' needs a 'redis' options object/);
    expect(createQuotaStore({ type: 'memory', backend: new MemoryBackend({ sweepIntervalMs: 0 }) })).toBeInstanceOf(MemoryQuotaStore);
  });
});
