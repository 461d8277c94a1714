import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli.js';
import { spawnService } from '../support/service-process.js';

/**
 * What a human reads at start-up: one concise info line (`meshlimit serving`: version, ports,
 * backend, config and its version), no framework "listening" lines, and the settings at debug
 * level only, without those that do not apply (no Redis settings with the memory backend).
 */
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
const dir = mkdtempSync(path.join(tmpdir(), 'meshlimit-startlog-'));
writeFileSync(path.join(dir, 'a.yaml'), 'domain: a\ndescriptors:\n  - key: k\n    rate_limit: { unit: second, requests_per_unit: 1 }\n');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Line = { level: number; msg: string; [k: string]: unknown };
async function startAndStop(level: string): Promise<Line[]> {
  const svc = await spawnService({ CONFIG_DIR: dir, LOG_LEVEL: level, LOG_FORMAT: 'json' });
  await svc.proc.stop();
  return svc.proc
    .output()
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Line);
}

describe('the start-up log', () => {
  it('is one concise info line naming the version and the config version check-config prints', async () => {
    const lines = await startAndStop('info');
    const beforeStop = lines.slice(
      0,
      lines.findIndex((l) => l.msg === 'shutting down'),
    );
    expect(beforeStop.map((l) => l.msg)).toEqual(['meshlimit serving']);
    const serving = beforeStop[0]!;
    expect(JSON.stringify(serving).length).toBeLessThan(400);
    let out = '';
    await runCli(['check-config', dir], { stdout: (t) => (out += t), stderr: (t) => (out += t) }, {});
    expect(serving).toMatchObject({
      version: pkg.version,
      backend: 'memory',
      config: dir,
      configVersion: /^version (\w+)$/m.exec(out)![1],
    });
  });

  it('shows the settings at debug level, only those that apply', async () => {
    const lines = await startAndStop('debug');
    const settings = lines.filter((l) => l.msg === 'settings');
    expect(settings).toHaveLength(1);
    const keys = Object.keys(settings[0]!['settings'] as object);
    expect(keys).toContain('backend');
    expect(keys).not.toContain('redis');
    expect(keys).not.toContain('xds');
    expect(lines.filter((l) => /listening/i.test(l.msg))).toEqual([]);
  });
});
