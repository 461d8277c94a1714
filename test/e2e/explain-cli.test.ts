import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli.js';
import { bootService, type BootedService } from '../support/service.js';

/** `meshlimit explain` against a running service's admin port: words, --json, exit codes, and nothing charged. */
const T = 1_800_000_000_030;
const CONFIG = `domain: edge
descriptors:
  - key: company_id
    rate_limit: { algorithm: token_bucket, burst: 200, unit: second, requests_per_unit: 100 }
    descriptors:
      - key: path
        value: /api/v1/exports/*
        rate_limit: { unit: minute, unit_multiplier: 15, requests_per_unit: 30 }
  - key: plan
    rate_limit: { unit: second, requests_per_unit: 1 }
`;
let svc: BootedService;
beforeAll(async () => {
  svc = await bootService({ files: { 'edge.yaml': CONFIG }, now: () => T });
});
afterAll(async () => svc?.close());

async function run(args: string[], env: Record<string, string> = { PORT: String(svc.handle.httpPort) }) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(['explain', ...args], { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) }, env);
  return { code, stdout, stderr };
}

describe('meshlimit explain', () => {
  it('names the rule, its place and its real window, or why nothing matched (PORT from the environment)', async () => {
    const r = await run(['edge', 'company_id=acme,path=/api/v1/exports/7', 'company_id=acme,pth=/x', 'nope=1']);
    expect(r.code, r.stderr).toBe(0);
    const file = svc.handle.store.current().files[0]!;
    expect(r.stdout.split('\n')).toEqual([
      expect.stringMatching(/^OK would be the answer \(nothing was charged\); domain edge, config [0-9a-f]{12}$/),
      `company_id=acme,path=/api/v1/exports/7: rule edge.company_id.path_/api/v1/exports/* at ${file}:6 (descriptors[0].descriptors[0]), matched any company_id, then pattern path_/api/v1/exports/*`,
      '  30 per 15 minutes (fixed_window): 0 used, 30 left, resets in 900s; this request: OK, 29 left',
      "company_id=acme,pth=/x: no rule: entry 1 (key 'pth') matched no descriptor under the descriptor matched by entry 0 (neither pth_<value>, a wildcard, nor the bare key 'pth'); the lookup passed edge.company_id, whose limits apply only to a descriptor ending there",
      "nope=1: no rule: entry 0 (key 'nope') matched no descriptor among the domain's top-level descriptors (neither nope_<value>, a wildcard, nor the bare key 'nope')",
      '',
    ]);
  });

  it('exit 3 when the request would be denied, and explaining charges nothing', async () => {
    const url = svc.httpUrl;
    expect(
      (await fetch(`${url}/json`, { method: 'POST', body: '{"domain":"edge","descriptors":[{"entries":[{"key":"plan","value":"p"}]}]}' }))
        .status,
    ).toBe(200);
    for (let i = 0; i < 3; i++) {
      const r = await run(['--url', url, 'edge', 'plan=p']);
      expect(r.code, r.stderr).toBe(3);
      expect(r.stdout).toContain('  1 per second (fixed_window): 1 used, 0 left, resets in 1s; this request: OVER_LIMIT');
    }
    const r = await run(['--url', url, '--hits', '0', '--json', 'edge', 'plan=q']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      domain: 'edge',
      charged: false,
      descriptors: [{ hits: 1, limits: [{ counter: { used: 0 } }] }],
    });
  });

  it('an unknown domain is said so; usage and connection errors are clear', async () => {
    const r = await run(['edgee', 'plan=p']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      "plan=p: no rule: domain 'edgee' is not in the loaded config, so nothing is limited (configured domains: edge)",
    );
    expect((await run(['edge'])).stderr).toContain('expected DOMAIN and at least one KEY=VALUE descriptor');
    expect((await run(['--url', 'localhost:1', 'edge', 'a=b'])).code).toBe(2);
    const down = await run(['edge', 'a=b'], { PORT: '1' });
    expect(down.code).toBe(1);
    expect(down.stderr).toContain('http://127.0.0.1:1/v1/explain');
    expect(down.stderr).toContain('is meshlimit running there? (--url, or HOST/PORT)');
  });
});
