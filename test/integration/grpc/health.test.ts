/**
 * grpc.health.v1 over a real socket, driven by a plain grpc-js client built from health.proto.
 */
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createRlsClient } from '../../../src/client/rls-client.js';
import { startHarness, type Harness } from './harness.js';

const PROTO_DIR = fileURLToPath(new URL('../../../proto/', import.meta.url));
const RLS = 'envoy.service.ratelimit.v3.RateLimitService';

type HealthClient = grpc.Client & {
  Check(req: { service: string }, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: { status: string }) => void): void;
  List(
    req: object,
    opts: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, res?: { statuses: Record<string, { status: string }> }) => void,
  ): void;
  Watch(req: { service: string }): grpc.ClientReadableStream<{ status: string }>;
};

function healthClient(address: string): HealthClient {
  const def = protoLoader.loadSync('grpc/health/v1/health.proto', { includeDirs: [PROTO_DIR], enums: String, defaults: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } };
  return new pkg.grpc.health.v1.Health(address, grpc.credentials.createInsecure()) as unknown as HealthClient;
}

function check(client: HealthClient, service: string): Promise<string> {
  return new Promise((resolve, reject) => {
    client.Check({ service }, { deadline: Date.now() + 5000 }, (err, res) => (err ? reject(err) : resolve(res!.status)));
  });
}

/** Reads a Watch stream message by message, and how it ended. */
function watch(client: HealthClient, service: string) {
  const stream = client.Watch({ service });
  const queue: string[] = [];
  const waiters: ((s: string) => void)[] = [];
  stream.on('data', (m: { status: string }) => {
    const w = waiters.shift();
    if (w) w(m.status);
    else queue.push(m.status);
  });
  const ended = new Promise<{ code: number; gotEnd: boolean }>((resolve) => {
    let gotEnd = false;
    stream.on('end', () => (gotEnd = true));
    stream.on('error', () => undefined);
    stream.on('status', (s: grpc.StatusObject) => setImmediate(() => resolve({ code: s.code, gotEnd })));
  });
  return {
    next: (): Promise<string> => (queue.length > 0 ? Promise.resolve(queue.shift()!) : new Promise((resolve) => waiters.push(resolve))),
    ended,
    cancel: () => stream.cancel(),
  };
}

describe('grpc.health.v1.Health', () => {
  let h: Harness;
  let client: HealthClient;
  beforeEach(async () => {
    h = await startHarness();
    client = healthClient(h.address);
  });
  afterEach(async () => {
    client.close();
    await h.close();
  });

  it('Check reports the server and the RLS service, and NOT_FOUND for an unknown service', async () => {
    expect(await check(client, '')).toBe('SERVING');
    expect(await check(client, RLS)).toBe('SERVING');
    h.health.setServing(false);
    expect(await check(client, '')).toBe('NOT_SERVING');
    expect(await check(client, RLS)).toBe('NOT_SERVING');

    const err = await check(client, 'nope').then(
      () => undefined,
      (e: grpc.ServiceError) => e,
    );
    expect(err?.code).toBe(grpc.status.NOT_FOUND);
    expect(err?.details).toBe("unknown service 'nope'");
  });

  it('Check is available through the typed client too', async () => {
    const rls = createRlsClient(h.address);
    try {
      expect(await rls.checkHealth()).toBe('SERVING');
      expect(await rls.checkHealth(RLS)).toBe('SERVING');
    } finally {
      rls.close();
    }
  });

  it('List reports every known service', async () => {
    const res = await new Promise<{ statuses: Record<string, { status: string }> }>((resolve, reject) => {
      client.List({}, { deadline: Date.now() + 5000 }, (err, r) => (err ? reject(err) : resolve(r!)));
    });
    expect(res.statuses).toEqual({ '': { status: 'SERVING' }, [RLS]: { status: 'SERVING' } });
  });

  it('Watch sends the current status, then each transition', async () => {
    const w = watch(client, RLS);
    expect(await w.next()).toBe('SERVING');
    h.health.setServing(false);
    expect(await w.next()).toBe('NOT_SERVING');
    h.health.setServing(false); // no transition, no message
    h.health.setServing(true);
    expect(await w.next()).toBe('SERVING');
    w.cancel();
    expect((await w.ended).code).toBe(grpc.status.CANCELLED);
  });

  it('Watch on an unknown service sends SERVICE_UNKNOWN and stays open until the service appears', async () => {
    const w = watch(client, 'later');
    expect(await w.next()).toBe('SERVICE_UNKNOWN');
    h.health.setStatus('later', true);
    expect(await w.next()).toBe('SERVING');
    w.cancel();
    await w.ended;
  });

  it('close() reports NOT_SERVING to watchers and ends their streams with OK', async () => {
    const w = watch(client, '');
    expect(await w.next()).toBe('SERVING');
    await h.grpc.close(1000);
    expect(await w.next()).toBe('NOT_SERVING');
    expect(await w.ended).toEqual({ code: grpc.status.OK, gotEnd: true });
  });
});
