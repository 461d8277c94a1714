import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/telemetry/logger.js';
import { bootService, eventually, metricValue, type BootedService } from '../support/service.js';

/**
 * What broke: every reload of a config directory, and every rejected one, was logged twice (by
 * the watcher and again by the reload listener), with different field names. Now the listener
 * (src/telemetry/events.ts) logs each once, a rejection with its errors as a list.
 */
const config = (unit: string) => `domain: r\ndescriptors:\n  - key: k\n    rate_limit: { unit: ${unit}, requests_per_unit: 5 }\n`;
const lines: { msg: string; version?: string; errors?: string[] }[] = [];
const logger = createLogger({ level: 'info', format: 'json', destination: { write: (l) => void lines.push(JSON.parse(l)) } });
let svc: BootedService | undefined;
afterAll(async () => svc?.close());

describe('a config reload', () => {
  it('is logged once when applied and once when rejected', async () => {
    svc = await bootService({ files: { 'r.yaml': config('minute') }, logger });
    const s = svc;
    const reloadLines = () => lines.filter((l) => /reload/.test(l.msg));
    s.writeConfig('r.yaml', config('hour'));
    await eventually(async () => (await metricValue(s.httpUrl, 'meshlimit_config_reloads_total{outcome="success"}')) === 2);
    s.writeConfig('r.yaml', config('fortnight'));
    await eventually(async () => (await metricValue(s.httpUrl, 'meshlimit_config_reloads_total{outcome="failure"}')) === 1);
    await s.handle.config.close(); // no further attempt can add a line
    expect(reloadLines().map((l) => l.msg)).toEqual(['config reloaded', 'config reload rejected; keeping the last good config']);
    expect(reloadLines()[1]!.errors).toEqual([expect.stringMatching(/r\.yaml: descriptors\[0\]\.rate_limit\.unit: .*fortnight/)]);
  });
});
