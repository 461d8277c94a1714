import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootService, type BootedService } from '../support/service.js';

/**
 * The typed client as another project uses it: `npm pack` (prepack builds dist/ with its .d.ts),
 * the tarball installed into a temporary ESM project with `npm install <tarball>` (its
 * dependencies from the npm cache, or the registry when the cache lacks them, as `npm ci` does),
 * then a script there imports `meshlimit/client` and asks a running meshlimit, and TypeScript
 * checks a file that imports it (the exported types).
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TSC = path.join(ROOT, 'node_modules/typescript/bin/tsc');
let work: string;
let project: string;
let files: string[];
let svc: BootedService;

function npm(args: string[], cwd: string): string {
  const r = spawnSync('npm', [...args, '--no-audit', '--no-fund'], { cwd, encoding: 'utf8', timeout: 240_000 });
  expect(r.status, `npm ${args.join(' ')}\n${r.stdout}\n${r.stderr}`).toBe(0);
  return r.stdout;
}

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'meshlimit-pack-'));
  const packed = JSON.parse(npm(['pack', '--json', '--pack-destination', work], ROOT)) as { filename: string; files: { path: string }[] }[];
  files = packed[0]!.files.map((f) => f.path);
  project = path.join(work, 'consumer');
  spawnSync('mkdir', [project]);
  writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  npm(['install', '--prefer-offline', path.join(work, packed[0]!.filename)], project);
  svc = await bootService({
    files: { 'd.yaml': 'domain: d\ndescriptors:\n  - key: k\n    rate_limit: { unit: hour, requests_per_unit: 1 }\n' },
  });
}, 600_000);
afterAll(async () => {
  await svc?.close();
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

describe('meshlimit/client from the packed tarball', () => {
  it('ships the built client with its types, and no sources or tests', () => {
    expect(files).toEqual(expect.arrayContaining(['dist/client/rls-client.js', 'dist/client/rls-client.d.ts', 'package.json']));
    expect(files).toEqual(expect.arrayContaining(['proto/envoy/service/ratelimit/v3/rls.proto', 'lua/evaluate.lua', 'bin/meshlimit.js']));
    expect(files.filter((f) => /^(src|test|benchmarks|deploy)\//.test(f))).toEqual([]);
  });

  it('imports createRlsClient in an ESM project and asks a running meshlimit', async () => {
    writeFileSync(
      path.join(project, 'ask.mjs'),
      `import { createRlsClient } from 'meshlimit/client';
const client = createRlsClient(process.argv[2]);
const ask = () => client.shouldRateLimit({ domain: 'd', descriptors: [{ entries: [{ key: 'k', value: 'v' }] }] });
const codes = [(await ask()).overallCode, (await ask()).overallCode];
client.close();
console.log(JSON.stringify(codes));
`,
    );
    // Asynchronously: the service runs in this process and must keep answering.
    const r = await promisify(execFile)(process.execPath, ['ask.mjs', `127.0.0.1:${svc.handle.grpcPort}`], {
      cwd: project,
      timeout: 30_000,
    });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual(['OK', 'OVER_LIMIT']);
  });

  it('type-checks against the shipped .d.ts', () => {
    writeFileSync(
      path.join(project, 'check.ts'),
      `import { createRlsClient, type RlsCode } from 'meshlimit/client';
const client = createRlsClient('127.0.0.1:8081');
const ok: RlsCode = 'OK';
void client.shouldRateLimit({ domain: 'd', descriptors: [{ entries: [{ key: 'k', value: 'v' }] }] }).then((r) => r.overallCode === ok);
// @ts-expect-error: a request names its domain
void client.shouldRateLimit({ descriptors: [] });
`,
    );
    const args = ['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--skipLibCheck'];
    const types = ['--types', 'node', '--typeRoots', path.join(ROOT, 'node_modules/@types')];
    const r = spawnSync(process.execPath, [TSC, ...args, ...types, 'check.ts'], { cwd: project, encoding: 'utf8', timeout: 120_000 });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
