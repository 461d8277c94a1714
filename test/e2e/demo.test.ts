import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * `npm run demo -- --once`, run as a newcomer would (a real process, free ports): it starts
 * meshlimit, the user service and the gateway stand-in, walks through the tour and exits 0 only
 * when every answer was the expected one.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function runDemo(): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join('src', 'sample', 'demo', 'demo.ts'), '--once'], {
      cwd: ROOT,
      env: {
        ...process.env,
        USER_SERVICE_PORT: '0',
        GATEWAY_PORT: '0',
        PORT: '0',
        GRPC_PORT: '0',
        BACKEND_TYPE: 'memory',
        LOG_LEVEL: 'error',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 25_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('npm run demo', () => {
  it('shows per-company limits, the IP fallback and app-level limits, and exits 0', async () => {
    const { code, output } = await runDemo();
    expect(output).toContain('Every answer was the expected one.');
    expect(code, output).toBe(0);
    const lines = output.split('\n').map((l) => l.trim().replace(/\s+/g, ' '));
    expect(lines).toContain('acme 7 x GET /users 200 200 200 200 200 429 429');
    expect(lines).toContain('globex 2 x GET /users (its own quota) 200 200');
    expect(lines).toContain('forged token (alg none) "globex", 203.0.113.9 401 401 401 429 429');
    expect(lines).toContain('no token, 192.0.2.77 401 401 401 429');
    expect(lines).toContain('globex 3 x POST /reports 202 202 429');
    expect(lines).toContain('meshlimit_resolutions_total{domain="edge",outcome="verified"} 24');
    expect(lines).toContain('meshlimit_resolutions_total{domain="edge",outcome="fallback_invalid"} 10');
  });
});
