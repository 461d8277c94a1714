/**
 * The raw HTTP/2 client (lib/h2-raw.ts) against a real grpc-js server: every request arrives
 * with its own body, answers are counted, and gRPC errors (trailers-only) are counted as failed.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadServerPackage, RLS_SERVICE, serviceDefinition } from '../../src/server/grpc/protos.js';
import { requestFrame, RLS_PATH } from '../lib/frames.js';
import { runRaw } from '../lib/h2-raw.js';
import { ipFor } from '../lib/scenarios.js';

interface Req {
  descriptors: { entries: { key: string; value: string }[] }[];
}

let server: grpc.Server;
let port = 0;
const seen: string[] = [];

beforeAll(async () => {
  server = new grpc.Server();
  server.addService(serviceDefinition(loadServerPackage(), RLS_SERVICE), {
    ShouldRateLimit(call: grpc.ServerUnaryCall<Req, unknown>, cb: grpc.sendUnaryData<unknown>) {
      const value = call.request.descriptors[0]?.entries[0]?.value ?? '';
      seen.push(value);
      // Values ending in 7 fail, as meshlimit would with UNAVAILABLE.
      if (value.endsWith('7')) cb({ code: grpc.status.UNAVAILABLE, details: 'down' });
      else cb(null, { overallCode: 1, statuses: [{ code: 1 }] });
    },
  });
  port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
});

afterAll(() => {
  server.forceShutdown();
});

describe('runRaw', () => {
  it('sends a distinct body per request and counts answers and gRPC errors', async () => {
    seen.length = 0;
    const requests = 3000;
    const r = await runRaw({
      host: '127.0.0.1',
      port,
      path: RLS_PATH,
      connections: 3,
      streams: 16,
      requests,
      body: (i) => requestFrame({ domain: 'bench', descriptors: [{ entries: [{ key: 'remote_address', value: ipFor(i) }] }] }),
    });
    expect(r.completed).toBe(requests);
    expect(new Set(seen).size).toBe(requests);
    const expectedFailures = Array.from({ length: requests }, (_, i) => ipFor(i)).filter((ip) => ip.endsWith('7')).length;
    expect(expectedFailures).toBeGreaterThan(0);
    expect(r.failed).toBe(expectedFailures);
    expect(r.latenciesUs.length).toBe(requests);
  });
});
