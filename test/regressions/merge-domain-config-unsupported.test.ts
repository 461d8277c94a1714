import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli.js';
import { bootService, eventually, type BootedService } from '../support/service.js';
import { fixture } from '../unit/config/helpers.js';

/**
 * What broke: MERGE_DOMAIN_CONFIG=true (envoyproxy/ratelimit's setting for several files of one
 * domain) was not read: start-up stopped with a duplicate-domain error although the compiler could
 * merge. Now the service, its reloads and `check-config` all read it.
 */
const files = {
  'merge_domain_key1.yaml': readFileSync(fixture('merge_domain', 'merge_domain_key1.yaml'), 'utf8'),
  'merge_domain_key2.yaml': readFileSync(fixture('merge_domain', 'merge_domain_key2.yaml'), 'utf8'),
};
let svc: BootedService | undefined;
afterAll(async () => svc?.close());

describe('MERGE_DOMAIN_CONFIG', () => {
  it('boots with one domain from two files and enforces the limits of both', async () => {
    svc = await bootService({ files, env: { MERGE_DOMAIN_CONFIG: 'true' } });
    const res = await svc.client.shouldRateLimit({
      domain: 'test-domain',
      descriptors: [{ entries: [{ key: 'key1', value: 'value1' }] }, { entries: [{ key: 'key2', value: 'value2' }] }],
    });
    expect(res.statuses.map((s) => s.currentLimit?.requestsPerUnit)).toEqual([10, 20]);
    // A reload merges too: a third file for the same domain is picked up.
    svc.writeConfig(
      'merge_domain_key3.yaml',
      'domain: test-domain\ndescriptors:\n  - key: key3\n    rate_limit: { unit: minute, requests_per_unit: 30 }\n',
    );
    await eventually(async () => {
      const r = await svc!.client.shouldRateLimit({ domain: 'test-domain', descriptors: [{ entries: [{ key: 'key3', value: 'x' }] }] });
      return r.statuses[0]!.currentLimit?.requestsPerUnit === 30;
    }, 10_000);
  });

  it('check-config reads it as the service does', async () => {
    let out = '';
    const io = { stdout: (t: string) => (out += t), stderr: (t: string) => (out += t) };
    expect(await runCli(['check-config', fixture('merge_domain')], io, { MERGE_DOMAIN_CONFIG: 'true' })).toBe(0);
    expect(out).toContain('config OK: 2 files, 1 domain, 2 rules');
    expect(await runCli(['check-config', fixture('merge_domain')], io, {})).toBe(1);
    expect(out).toContain("duplicate domain 'test-domain'");
  });
});
