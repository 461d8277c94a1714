/**
 * The gRPC port's HTTP/2 limits (src/server/grpc/transport-guard.ts), each driven by a raw
 * node:http2 client against a real grpc-js server on loopback, with short limits so that every
 * bound is reached in well under a second.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Decision } from '../../../src/limiter/types.js';
import { HealthState } from '../../../src/server/grpc/health.js';
import { createGrpcServer, type GrpcServer } from '../../../src/server/grpc/server.js';
import { DEFAULT_TRANSPORT_LIMITS, type TransportLimits } from '../../../src/server/grpc/transport-guard.js';
import type { TransportAction } from '../../../src/telemetry/metrics.js';
import {
  call,
  connect,
  grpcFrame,
  NGHTTP2_CANCEL,
  NGHTTP2_ENHANCE_YOUR_CALM,
  NGHTTP2_NO_ERROR,
  NGHTTP2_REFUSED_STREAM,
  openComplete,
  openIncomplete,
  resetFlood,
  rlsRequest,
  sleep,
  StreamTally,
  streamsProcessedBeforeGoaway,
  WATCH_PATH,
  type Conn,
} from '../../support/h2-attacker.js';
import { eventually } from '../../support/service.js';

const OK: Decision = { code: 'OK', statuses: [{ code: 'OK', remaining: 0, resetMs: 0, shadowed: false, unlimited: false }] };
const BODY = rlsRequest('d', [['k', 'v']]);

interface Running {
  readonly port: number;
  readonly actions: TransportAction[];
  /** Calls the limiter was asked to decide. */
  calls: number;
  readonly conns: Conn[];
  connect(opts?: { peerMaxConcurrentStreams?: number }): Conn;
}

let server: GrpcServer | undefined;
let running: Running | undefined;

async function start(limits: Partial<TransportLimits>, answer: () => Decision | Promise<Decision> = () => OK): Promise<Running> {
  const actions: TransportAction[] = [];
  const r: Running = {
    port: 0,
    actions,
    calls: 0,
    conns: [],
    connect(opts) {
      const c = connect(this.port, opts);
      this.conns.push(c);
      return c;
    },
  };
  server = createGrpcServer({
    limiter: {
      shouldRateLimit: () => {
        r.calls++;
        return answer();
      },
    },
    health: new HealthState(true),
    limits: { ...DEFAULT_TRANSPORT_LIMITS, ...limits },
    onTransportAction: (a) => actions.push(a),
  });
  (r as { port: number }).port = await server.listen('127.0.0.1', 0);
  running = r;
  return r;
}

afterEach(async () => {
  for (const c of running?.conns ?? []) c.session.destroy();
  await server?.close(100);
  server = undefined;
  running = undefined;
});

const count = (actions: readonly TransportAction[], a: TransportAction): number => actions.filter((x) => x === a).length;

describe('streams', () => {
  it('advertises GRPC_MAX_CONCURRENT_STREAMS and refuses the streams a client sends beyond it', async () => {
    const r = await start({ maxConcurrentStreams: 50 });
    const conn = r.connect({ peerMaxConcurrentStreams: 1000 });
    const tally = new StreamTally();
    openIncomplete(conn, 200, tally); // all sent before the server's SETTINGS arrive
    expect((await conn.settings).maxConcurrentStreams).toBe(50);
    await eventually(async () => tally.count(NGHTTP2_REFUSED_STREAM) === 150, 5000, 20);
    expect(tally.count('open')).toBe(50);
  });

  it('resets a stream whose request never completes after GRPC_STREAM_TIMEOUT_MS (RST_STREAM CANCEL)', async () => {
    const r = await start({ streamTimeoutMs: 300 });
    const conn = r.connect();
    const tally = new StreamTally();
    const t0 = performance.now();
    openIncomplete(conn, 20, tally);
    await sleep(250);
    expect(tally.count('open')).toBe(20);
    await eventually(async () => tally.count(NGHTTP2_CANCEL) === 20, 5000, 10);
    // Swept every timeout / 4: reset between 1 and 1.25 timeouts (plus a loaded machine's delay).
    expect(performance.now() - t0).toBeLessThan(300 * 1.25 + 500);
    expect(count(r.actions, 'stream_timeout')).toBe(20);
    expect(r.calls).toBe(0);
    // The connection itself is fine: a normal call is answered.
    expect((await call(conn, BODY)).status).toBe('0');
  });

  it('resets a unary call the service has not answered after GRPC_STREAM_TIMEOUT_MS', async () => {
    const r = await start({ streamTimeoutMs: 300 }, () => new Promise<Decision>(() => undefined));
    const conn = r.connect();
    const tally = new StreamTally();
    openComplete(conn, BODY, tally);
    await eventually(async () => tally.count(NGHTTP2_CANCEL) === 1, 5000, 10);
    expect(r.calls).toBe(1);
  });

  it('lets a health Watch live on once its request is complete, and resets one whose request never completes', async () => {
    const r = await start({ streamTimeoutMs: 200 });
    const conn = r.connect();
    const tally = new StreamTally();
    const watch = openComplete(conn, grpcFrame(Buffer.alloc(0)), tally, WATCH_PATH);
    const messages: Buffer[] = [];
    watch.on('data', (d: Buffer) => messages.push(d));
    openIncomplete(conn, 1, tally, WATCH_PATH);
    await eventually(async () => tally.count(NGHTTP2_CANCEL) === 1, 5000, 10);
    await sleep(600);
    expect(tally.count('open')).toBe(1);
    expect(messages.length).toBeGreaterThan(0); // SERVING
  });

  it('refuses streams beyond GRPC_MAX_OPEN_STREAMS over all connections (RST_STREAM REFUSED_STREAM)', async () => {
    const r = await start({ maxConcurrentStreams: 50, maxOpenStreams: 80 });
    const tally = new StreamTally();
    const [a, b] = [r.connect(), r.connect()];
    await Promise.all([a.settings, b.settings]);
    openIncomplete(a, 50, tally);
    await eventually(async () => r.conns.length > 0 && tally.opened === 50, 5000, 10);
    await sleep(100);
    openIncomplete(b, 50, tally);
    await eventually(async () => tally.count(NGHTTP2_REFUSED_STREAM) === 20, 5000, 10);
    expect(tally.count('open')).toBe(80);
    expect(count(r.actions, 'stream_refused')).toBe(20);
    // Once streams close, there is room again.
    a.session.destroy();
    await eventually(async () => (await call(b, BODY, 1000)).status === '0', 5000, 50);
  });
});

describe('connections', () => {
  it('closes connections beyond GRPC_MAX_CONNECTIONS as they are accepted, and takes new ones when there is room', async () => {
    const r = await start({ maxConnections: 3 });
    const first = [r.connect(), r.connect(), r.connect()];
    for (const c of first) expect((await call(c, BODY)).status).toBe('0');
    const extra = r.connect();
    await extra.done;
    expect(extra.goaway).toBeUndefined(); // closed at accept: not even an HTTP/2 session
    expect(count(r.actions, 'connection_refused')).toBe(1);
    first[0]!.session.destroy();
    await first[0]!.done;
    await eventually(async () => (await call(r.connect(), BODY, 1000)).status === '0', 5000, 50);
  });

  it('closes a connection idle for GRPC_MAX_CONNECTION_IDLE with GOAWAY, and not one in use', async () => {
    const r = await start({ maxConnectionIdleMs: 300, streamTimeoutMs: 60_000 });
    const idle = r.connect();
    const busy = r.connect();
    expect((await call(idle, BODY)).status).toBe('0');
    openIncomplete(busy, 1, new StreamTally());
    const t0 = performance.now();
    await idle.done;
    expect(performance.now() - t0).toBeLessThan(300 + 1000);
    expect(idle.goaway?.code).toBe(NGHTTP2_NO_ERROR);
    expect(busy.closed).toBe(false);
  });
});

describe('keepalive enforcement', () => {
  const ping = (c: Conn): Promise<boolean> =>
    new Promise((resolve) => {
      if (c.session.destroyed) resolve(false);
      else c.session.ping((err) => resolve(err === null));
    });

  it('ends a ping flood with GOAWAY ENHANCE_YOUR_CALM too_many_pings after GRPC_MAX_PING_STRIKES strikes', async () => {
    const r = await start({ permitKeepaliveTimeMs: 10_000, maxPingStrikes: 2 });
    const conn = r.connect();
    await conn.settings;
    let answered = 0;
    for (let i = 0; i < 100 && !conn.closed; i++) if (await ping(conn)) answered++;
    await conn.done;
    // The first PING is free, the next two are strikes, the fourth is one too many.
    expect(answered).toBeLessThanOrEqual(4);
    expect(conn.goaway).toEqual({ code: NGHTTP2_ENHANCE_YOUR_CALM, data: 'too_many_pings' });
    expect(count(r.actions, 'too_many_pings')).toBe(1);
  });

  it('accepts pings with calls in between, and pings no faster than GRPC_PERMIT_KEEPALIVE_TIME', async () => {
    const r = await start({ permitKeepaliveTimeMs: 100, maxPingStrikes: 0 });
    const conn = r.connect();
    await conn.settings;
    for (let i = 0; i < 10; i++) {
      expect(await ping(conn)).toBe(true);
      expect((await call(conn, BODY)).status).toBe('0');
    }
    for (let i = 0; i < 4; i++) {
      await sleep(150);
      expect(await ping(conn)).toBe(true);
    }
    expect(conn.closed).toBe(false);
    expect(r.actions).toEqual([]);
  });
});

describe('rapid reset', () => {
  it('ends a reset flood with GOAWAY ENHANCE_YOUR_CALM too_many_resets after about GRPC_MAX_RESET_STREAMS resets', async () => {
    const r = await start({ maxResetStreams: 40 });
    const conn = r.connect();
    await conn.settings;
    const sent = await resetFlood(conn, { total: 5000, batch: 10 });
    await conn.done;
    expect(conn.goaway).toEqual({ code: NGHTTP2_ENHANCE_YOUR_CALM, data: 'too_many_resets' });
    // 41 resets and the rest of their batch, as the server counted them (the GOAWAY's last stream id).
    expect(sent).toBeGreaterThan(40);
    expect(streamsProcessedBeforeGoaway(conn)).toBeGreaterThan(40);
    expect(streamsProcessedBeforeGoaway(conn)).toBeLessThan(41 + 100);
    expect(count(r.actions, 'too_many_resets')).toBe(1);
    expect(r.calls).toBe(0);
  });

  it('keeps the connection of a client that cancels some calls among many it lets complete', async () => {
    const r = await start({ maxResetStreams: 5 });
    const conn = r.connect();
    const tally = new StreamTally();
    for (let i = 0; i < 50; i++) {
      expect((await call(conn, BODY)).status).toBe('0');
      openIncomplete(conn, 1, tally);
      await sleep(2);
      for (const stream of tally.streams) stream.close(NGHTTP2_CANCEL);
      expect((await call(conn, BODY)).status).toBe('0');
    }
    await eventually(async () => tally.count(NGHTTP2_CANCEL) === 50, 5000, 10);
    expect(conn.closed).toBe(false);
    expect(r.actions).toEqual([]);
  });
});
