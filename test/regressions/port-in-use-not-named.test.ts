import { createServer, type Server } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { getFreePort } from '../support/ports.js';
import { spawnService } from '../support/service-process.js';

/**
 * What broke: a port already in use stopped start-up with `ML_ERR_INTERNAL ... EADDRINUSE`, a
 * library's words that did not say which setting to change. Now the error names PORT or
 * GRPC_PORT, the address, and what to do.
 */
const dir = mkdtempSync(path.join(tmpdir(), 'meshlimit-port-'));
writeFileSync(path.join(dir, 'a.yaml'), 'domain: a\ndescriptors:\n  - key: k\n    rate_limit: { unit: second, requests_per_unit: 1 }\n');
const held: Server[] = [];
afterAll(async () => {
  for (const s of held) await new Promise((r) => s.close(r));
  rmSync(dir, { recursive: true, force: true });
});

async function holdPort(): Promise<number> {
  const port = await getFreePort();
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  held.push(server);
  return port;
}

describe('a port in use at start-up', () => {
  it.each(['PORT', 'GRPC_PORT'])('names %s and exits 1', async (setting) => {
    const port = await holdPort();
    const svc = await spawnService({ CONFIG_DIR: dir, [setting]: String(port) }, { waitReady: false });
    expect(await svc.proc.exited).toBe(1);
    const out = svc.proc.output();
    expect(out).toContain(`setting ${setting}: 127.0.0.1:${port} is already in use`);
    expect(out).toContain('choose another port');
    expect(out).not.toContain('ML_ERR_INTERNAL');
  });
});
