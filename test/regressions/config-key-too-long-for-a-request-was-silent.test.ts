import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileConfig } from '../../src/config/index.js';
import { bootService, type BootedService } from '../support/service.js';

/**
 * What broke: a config key longer than a request may carry (256 bytes) loaded without a word,
 * yet no request could ever match it: one carrying that key is refused (INVALID_ARGUMENT), and
 * Envoy's default failure_mode_deny: false lets such a request through unlimited. The same for a
 * domain over 256 bytes and a value over MAX_DESCRIPTOR_VALUE_BYTES. Upstream accepts any length,
 * so it still loads, with a warning naming the field, the line and what it means.
 */
const LONG_KEY = `k${'x'.repeat(299)}`;
const CONFIG = `domain: d
descriptors:
  - key: ${LONG_KEY}
    rate_limit: { unit: minute, requests_per_unit: 1 }
  - key: short
    value: ${'v'.repeat(70_000)}
    rate_limit: { unit: minute, requests_per_unit: 1 }
`;

describe('config strings longer than a request may carry', () => {
  it('load with a warning per string naming its field, line and size', () => {
    const s = compileConfig([{ path: 'd.yaml', text: CONFIG }]);
    expect(s.warnings.map((w) => w.message)).toEqual([
      "d.yaml: descriptors[0].key: is 300 bytes (line 3); meshlimit refuses a request whose key is over 256 bytes (INVALID_ARGUMENT, which Envoy's default failure_mode_deny: false lets through unlimited), so this rule can never match",
      "d.yaml: descriptors[1].value: is 70000 bytes (line 6); meshlimit refuses a request whose value is over 65536 bytes (INVALID_ARGUMENT, which Envoy's default failure_mode_deny: false lets through unlimited), so this rule can never match unless MAX_DESCRIPTOR_VALUE_BYTES is raised",
    ]);
    expect(s.findRule('d', [{ key: LONG_KEY, value: 'v' }])).toBeDefined();
  });

  const long = `d${'x'.repeat(299)}`;
  it('a long domain too', () => {
    const s = compileConfig([
      { path: 'x.yaml', text: `domain: ${long}\ndescriptors:\n  - key: k\n    rate_limit: { unit: minute, requests_per_unit: 1 }\n` },
    ]);
    expect(s.warnings.map((w) => w.message)).toEqual([
      "x.yaml: domain: is 300 bytes (line 1); meshlimit refuses a request whose domain is over 256 bytes (INVALID_ARGUMENT, which Envoy's default failure_mode_deny: false lets through unlimited), so every request of this domain is refused",
    ]);
  });
});

describe('what the warning says happens', () => {
  let svc: BootedService;
  beforeAll(async () => {
    svc = await bootService({ files: { 'd.yaml': CONFIG } });
  });
  afterAll(async () => {
    await svc?.close();
  });

  it('a request carrying the long key is refused with INVALID_ARGUMENT, never counted', async () => {
    const err = await svc.client
      .shouldRateLimit({ domain: 'd', descriptors: [{ entries: [{ key: LONG_KEY, value: 'v' }] }] })
      .catch((e: unknown) => e);
    expect((err as { code: number }).code).toBe(3);
  });
});
