import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../src/cli.js';

/** `meshlimit check-config` on a single file and on a Kubernetes ConfigMap manifest (no yq/jq needed). */
const dir = mkdtempSync(path.join(tmpdir(), 'meshlimit-manifest-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const write = (name: string, text: string): string => {
  writeFileSync(path.join(dir, name), text);
  return path.join(dir, name);
};
const EDGE = 'domain: edge\ndescriptors:\n  - key: k\n    rate_limit: { unit: minute, requests_per_unit: 3 }\n';
const indent = (t: string) =>
  t
    .split('\n')
    .map((l) => (l === '' ? l : `    ${l}`))
    .join('\n');
const manifest = (edgeText: string, extra = '') => `apiVersion: apps/v1
kind: Deployment
metadata: { name: meshlimit }
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: meshlimit-config
data:
  edge.yaml: |
${indent(edgeText)}${extra}`;

async function run(...argv: string[]) {
  let out = '';
  const code = await runCli(['check-config', ...argv], { stdout: (t) => (out += t), stderr: (t) => (out += t) }, {});
  return { code, out };
}
const versionOf = (out: string) => /^version ([0-9a-f]{64})$/m.exec(out)?.[1];

describe('check-config PATH', () => {
  it('a single YAML file, a ConfigMap manifest and a directory of the same file give one version', async () => {
    const sub = mkdtempSync(path.join(dir, 'd-'));
    writeFileSync(path.join(sub, 'edge.yaml'), EDGE);
    const file = await run(path.join(sub, 'edge.yaml'));
    const cm = await run(write('cm.yaml', manifest(EDGE)));
    const directory = await run(sub);
    expect([file.code, cm.code, directory.code], cm.out).toEqual([0, 0, 0]);
    expect(cm.out).toContain('domain edge (');
    expect(versionOf(cm.out)).toBeDefined();
    expect(versionOf(file.out)).toBe(versionOf(cm.out));
    expect(versionOf(directory.out)).toBe(versionOf(cm.out));
  });

  it("names the manifest, the ConfigMap, its key, and the error's line in the file and in the manifest", async () => {
    const broken = EDGE.replace('minute', 'fortnight');
    const r = await run(write('broken.yaml', manifest(broken)));
    expect(r.code).toBe(1);
    // The file's line 4 is the manifest's line 14 (the block starts after `edge.yaml: |` on line 10).
    expect(r.out).toContain(
      `${path.join(dir, 'broken.yaml')}: ConfigMap meshlimit-config, data.edge.yaml: descriptors[0].rate_limit.unit: invalid rate limit unit 'fortnight' (line 4, manifest line 14)`,
    );
  });

  it('maps a YAML syntax error in a key to the manifest too', async () => {
    const r = await run(write('syntax.yaml', manifest(EDGE.replace('  - key: k', '  - key: [k'))));
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/data\.edge\.yaml: YAML syntax error at line \d+ \(manifest line \d+\), column \d+/);
    const [file, inManifest] = /at line (\d+) \(manifest line (\d+)\)/.exec(r.out)!.slice(1).map(Number);
    expect(inManifest! - file!).toBe(10);
  });

  it('asks which ConfigMap when several hold YAML keys, and takes --configmap', async () => {
    const two = write('two.yaml', `${manifest(EDGE)}---\nkind: ConfigMap\nmetadata: { name: other }\ndata:\n  rules.yaml: "x: 1"\n`);
    const r = await run(two);
    expect(r.code).toBe(1);
    expect(r.out).toContain('several ConfigMaps hold YAML keys (meshlimit-config, other); choose one with --configmap NAME');
    expect((await run('--configmap', 'meshlimit-config', two)).code).toBe(0);
  });
});
