import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { bootService, eventually, metricValue, type BootedService } from '../support/service.js';

/** Hot reload through the running service: good edits apply, bad edits are rejected, symlink swaps work. */
const config = (limit: number, extra = '') => `
domain: reload
descriptors:
  - key: k
    rate_limit: { unit: hour, requests_per_unit: ${limit} }
${extra}`;

const T = 1_800_000_000_000;
let svc: BootedService | undefined;
afterEach(async () => {
  await svc?.close();
  svc = undefined;
});

const limitOf = async (s: BootedService, key = 'k') => {
  const r = await s.client.shouldRateLimit({ domain: 'reload', descriptors: [{ entries: [{ key, value: 'v' }], hitsAddend: 0 }] });
  return r.statuses[0]!.currentLimit?.requestsPerUnit ?? null;
};
describe('config hot reload', () => {
  it('applies a good edit and keeps counters when only the threshold changes', async () => {
    svc = await bootService({ files: { 'r.yaml': config(5) }, now: () => T });
    const s = svc;
    for (let i = 0; i < 3; i++)
      await s.client.shouldRateLimit({ domain: 'reload', descriptors: [{ entries: [{ key: 'k', value: 'v' }] }] });
    s.writeConfig('r.yaml', config(10));
    await eventually(async () => (await limitOf(s)) === 10);
    // 3 hits survive the reload: 10 - 3 = 7 left.
    const r = await s.client.shouldRateLimit({ domain: 'reload', descriptors: [{ entries: [{ key: 'k', value: 'v' }], hitsAddend: 0 }] });
    expect(r.statuses[0]!.limitRemaining).toBe(7);
    expect(await metricValue(s.httpUrl, 'meshlimit_config_reloads_total{outcome="success"}')).toBeGreaterThanOrEqual(1);
  });

  it('rejects a broken edit and keeps answering with the last good config', async () => {
    svc = await bootService({ files: { 'r.yaml': config(5) }, now: () => T });
    const s = svc;
    s.writeConfig('r.yaml', config(7, '  - key: k\n    rate_limit: { unit: fortnight, requests_per_unit: 1 }\n'));
    await eventually(async () => (await metricValue(s.httpUrl, 'meshlimit_config_reloads_total{outcome="failure"}')) >= 1);
    expect(await limitOf(s)).toBe(5);
    expect(await metricValue(s.httpUrl, 'meshlimit_config_last_reload_success')).toBe(0);
    // A later good edit recovers.
    s.writeConfig('r.yaml', config(8));
    await eventually(async () => (await limitOf(s)) === 8);
    expect(await metricValue(s.httpUrl, 'meshlimit_config_last_reload_success')).toBe(1);
  });

  it('reloads on a Kubernetes ConfigMap style ..data symlink swap', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'meshlimit-k8s-'));
    try {
      const v1 = path.join(root, '..2026_11_21_v1');
      mkdirSync(v1);
      writeFileSync(path.join(v1, 'r.yaml'), config(5));
      symlinkSync('..2026_11_21_v1', path.join(root, '..data'));
      symlinkSync('..data/r.yaml', path.join(root, 'r.yaml'));
      svc = await bootService({ configDir: root, now: () => T });
      const s = svc;
      expect(await limitOf(s)).toBe(5);
      // kubelet's atomic update: new timestamped dir, new ..data_tmp link renamed over ..data.
      const v2 = path.join(root, '..2026_11_21_v2');
      mkdirSync(v2);
      writeFileSync(path.join(v2, 'r.yaml'), config(9));
      symlinkSync('..2026_11_21_v2', path.join(root, '..data_tmp'));
      renameSync(path.join(root, '..data_tmp'), path.join(root, '..data'));
      rmSync(v1, { recursive: true });
      await eventually(async () => (await limitOf(s)) === 9);
    } finally {
      await svc?.close();
      svc = undefined;
      rmSync(root, { recursive: true, force: true });
    }
  });
});
