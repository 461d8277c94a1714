import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli.js';
import { bootService, type BootedService } from '../support/service.js';

/** `meshlimit ask` against a running service: --count trips a limit; windows and bursts as the config says them. */
const T = 1_800_000_000_000; // a fixed clock: every call of a test falls in one window
const CONFIG = `domain: edge
descriptors:
  - key: company_id
    rate_limit: { algorithm: token_bucket, burst: 200, unit: second, requests_per_unit: 100 }
    descriptors:
      - key: path
        rate_limit: { unit: minute, unit_multiplier: 15, requests_per_unit: 30 }
  - key: plan
    rate_limit: { unit: second, requests_per_unit: 3 }
  - key: path
    value: /healthz
    rate_limit: { unlimited: true }
`;
let svc: BootedService;
beforeAll(async () => {
  svc = await bootService({ files: { 'edge.yaml': CONFIG }, now: () => T });
});
afterAll(async () => svc?.close());

async function ask(args: string[], env: Record<string, string> = { GRPC_PORT: String(svc.handle.grpcPort) }) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(['ask', ...args], { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) }, env);
  return { code, stdout, stderr };
}

describe('meshlimit ask', () => {
  it('--count N sends N calls and shows the limit trip (exit 3)', async () => {
    const r = await ask(['--count', '5', 'edge', 'plan=free']);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stdout.split('\n').filter(Boolean)).toEqual([
      '1/5 OK         plan=free: OK, 2 of 3 per second left (fixed_window), resets in 1s',
      '2/5 OK         plan=free: OK, 1 of 3 per second left (fixed_window), resets in 1s',
      '3/5 OK         plan=free: OK, 0 of 3 per second left (fixed_window), resets in 1s',
      '4/5 OVER_LIMIT plan=free: OVER_LIMIT, 0 of 3 per second left (fixed_window), resets in 1s',
      '5/5 OVER_LIMIT plan=free: OVER_LIMIT, 0 of 3 per second left (fixed_window), resets in 1s',
    ]);
  });

  it('shows a window of several units and a token bucket burst as the config says them', async () => {
    const r = await ask(['edge', 'company_id=acme', 'company_id=acme,path=/api/v1/exports/1', 'path=/healthz', 'other=x']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(
      'OK         company_id=acme: OK, 199 of 200 (burst) left, token bucket refilling 100 per second, resets in 1s' +
        ' | company_id=acme,path=/api/v1/exports/1: OK, 29 of 30 per 15 minutes left (fixed_window), resets in 900s' +
        ' | path=/healthz: OK, unlimited | other=x: OK, no rule matched\n',
    );
    const json = await ask(['--json', 'edge', 'company_id=acme,path=/api/v1/exports/1']);
    expect(JSON.parse(json.stdout)).toEqual({
      overallCode: 'OK',
      statuses: [{ code: 'OK', limit: '30 per 15 minutes', algorithm: 'fixed_window', remaining: 28, resetSeconds: 900 }],
    });
  });

  it('reads GRPC_HOST/GRPC_PORT (0.0.0.0 asked on loopback), and --addr wins', async () => {
    const port = String(svc.handle.grpcPort);
    expect((await ask(['edge', 'other=x'], { GRPC_HOST: '0.0.0.0', GRPC_PORT: port })).code).toBe(0);
    expect((await ask(['--addr', `127.0.0.1:${port}`, 'edge', 'other=x'], { GRPC_PORT: '1' })).code).toBe(0);
    const refused = await ask(['edge', 'other=x'], { GRPC_PORT: '1' });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^meshlimit ask: 127\.0\.0\.1:1: .*is meshlimit running there\? \(--addr, or GRPC_HOST\/GRPC_PORT\)\n$/);
  });

  it('refuses bad arguments with exit 2', async () => {
    for (const args of [
      ['edge'],
      ['--count', '0', 'edge', 'a=b'],
      ['--count', '100001', 'edge', 'a=b'],
      ['--frob', 'edge', 'a=b'],
      ['edge', 'novalue'],
    ]) {
      const r = await ask(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^meshlimit ask: /);
    }
  });
});
