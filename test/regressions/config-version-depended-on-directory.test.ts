import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli.js';
import { bootService, type BootedService } from '../support/service.js';

/**
 * What broke: the config version hashed each file's full path, so `check-config` run on a CI
 * checkout printed a different version than `/rlconfig` showed for the same files mounted in the
 * pod: a version checked in CI could never be matched to a running pod. Now the version hashes
 * the file names within the directory and their text.
 */
const text = 'domain: v\ndescriptors:\n  - key: k\n    rate_limit: { unit: minute, requests_per_unit: 3 }\n';
const ciDir = mkdtempSync(path.join(tmpdir(), 'meshlimit-ci-'));
writeFileSync(path.join(ciDir, 'v.yaml'), text);
let svc: BootedService | undefined;
afterAll(async () => {
  await svc?.close();
  rmSync(ciDir, { recursive: true, force: true });
});

describe('config version', () => {
  it('is the same in check-config and /rlconfig for the same files in different directories', async () => {
    let out = '';
    const code = await runCli(['check-config', ciDir], { stdout: (t) => (out += t), stderr: (t) => (out += t) }, {});
    expect(code, out).toBe(0);
    svc = await bootService({ files: { 'v.yaml': text } });
    expect(svc.configDir).not.toBe(ciDir);
    const served = ((await (await fetch(`${svc.httpUrl}/rlconfig`)).json()) as { version: string }).version;
    expect(served).toMatch(/^[0-9a-f]{64}$/);
    const printed = /version ([0-9a-f]{12,64})/.exec(out)?.[1];
    // The same content hash (the old output showed its first 12 digits, of a hash that included the path) ...
    expect(served.slice(0, 12)).toBe(printed?.slice(0, 12));
    // ... printed whole, so a CI log can be compared with /rlconfig and the meshlimit_config_info metric.
    expect(printed).toBe(served);
  });
});
