/**
 * grpc-js's channelz bookkeeping is switched off (DEFAULT_SERVER_OPTIONS): meshlimit serves no
 * channelz service, so the per-call records would cost every call and inform nobody. The channelz
 * registry is process-wide, so a server that tracks calls is visible in it.
 */
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { HealthState } from '../../../src/server/grpc/health.js';
import { createGrpcServer, DEFAULT_SERVER_OPTIONS } from '../../../src/server/grpc/server.js';

function channelzServerCount(): Promise<number> {
  return new Promise((resolve, reject) => {
    const call = { request: { start_server_id: '0', max_results: '10000' } } as unknown as grpc.ServerUnaryCall<unknown, unknown>;
    grpc
      .getChannelzHandlers()
      .GetServers(
        call as never,
        ((err: Error | null, value: { server: unknown[] }) => (err ? reject(err) : resolve(value.server.length))) as never,
      );
  });
}

describe('channelz', () => {
  const cleanup: (() => void)[] = [];
  afterEach(() => {
    for (const c of cleanup.splice(0)) c();
  });

  it('a grpc-js server with the default options registers in channelz (control: the count can move)', async () => {
    const before = await channelzServerCount();
    const server = new grpc.Server();
    cleanup.push(() => server.forceShutdown());
    expect(await channelzServerCount()).toBe(before + 1);
  });

  it("meshlimit's gRPC server keeps no channelz records", async () => {
    expect(DEFAULT_SERVER_OPTIONS['grpc.enable_channelz']).toBe(0);
    const before = await channelzServerCount();
    const limiter = { shouldRateLimit: () => Promise.resolve({ code: 'OK' as const, statuses: [] }) };
    const server = createGrpcServer({ limiter, health: new HealthState(true) });
    cleanup.push(() => server.server.forceShutdown());
    const port = await server.listen('127.0.0.1', 0);
    expect(port).toBeGreaterThan(0);
    expect(await channelzServerCount()).toBe(before);
  });
});
