import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getFreePort } from '../support/ports.js';
import { spawnService, type ServiceProcess } from '../support/service-process.js';

/**
 * What broke: CI failed once with "setting PORT: 127.0.0.1:14906 is already in use" when a
 * concurrent RLQS e2e test took the port the harness had just found free for a meshlimit process
 * (ports.ts: a free port is a hint, not a lease, and spawners must ask again). spawnService did
 * not: it waited 20 s for a process that had exited, then failed the test. Now it notices the
 * exit at once and starts the process again on other ports.
 */
let dir: string;
let holder: Server;
let taken: number;
let svc: ServiceProcess | undefined;
beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'meshlimit-port-race-'));
  writeFileSync(path.join(dir, 'd.yaml'), 'domain: d\ndescriptors:\n  - key: k\n    rate_limit: { unit: minute, requests_per_unit: 5 }\n');
  taken = await getFreePort();
  holder = createServer((socket) => socket.destroy());
  await new Promise<void>((r) => holder.listen(taken, '127.0.0.1', r));
});
afterAll(async () => {
  await svc?.proc.stop();
  await new Promise((r) => holder.close(r));
  rmSync(dir, { recursive: true, force: true });
});

describe('a meshlimit process whose port was taken before it bound it', () => {
  it('is started again on other ports', async () => {
    const attempts: number[] = [];
    svc = await spawnService(
      { CONFIG_DIR: dir },
      {
        pickPorts: async (attempt) => {
          attempts.push(attempt);
          return attempt === 1 ? [taken, await getFreePort()] : [await getFreePort(), await getFreePort()];
        },
      },
    );
    expect(attempts).toEqual([1, 2]);
    expect(svc.httpPort).not.toBe(taken);
    expect((await fetch(`${svc.httpUrl}/healthcheck`)).status).toBe(200);
  });
});
