/**
 * The gRPC port under attack, as the issue "Holds under attack and overload" tried it: the
 * service runs as its own process (`node --import tsx src/main.ts`, memory backend, the default
 * limits but a short stream timeout), so its RSS is its own, and a raw node:http2 client attacks
 * it with incomplete streams, a reset flood, too many connections and idle ones.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TrackedChild } from '../support/child.js';
import { spawnService } from '../support/service-process.js';
import {
  call,
  connect,
  decodeRlsResponse,
  HEAP_PROBE_NODE_OPTIONS,
  heapAfterFullGc,
  NGHTTP2_CANCEL,
  NGHTTP2_ENHANCE_YOUR_CALM,
  NGHTTP2_INTERNAL_ERROR,
  NGHTTP2_NO_ERROR,
  NGHTTP2_REFUSED_STREAM,
  openIncomplete,
  resetFlood,
  rlsRequest,
  rssMiB,
  sleep,
  StreamTally,
  streamsProcessedBeforeGoaway,
  type Conn,
} from '../support/h2-attacker.js';
import { eventually } from '../support/service.js';

const LIMIT = 1_000_000;
const CONFIG = `
domain: d
descriptors:
  - key: k
    rate_limit: { unit: hour, requests_per_unit: ${LIMIT} }
`;
const STREAM_TIMEOUT_MS = 250;
/**
 * The service's V8 heap limit, as deploy/kubernetes/meshlimit/deployment.yaml sets one
 * (NODE_OPTIONS=--max-old-space-size) below the container's memory limit. Streams held for the
 * 250 ms stream timeout outlive young-generation collections, so the attack's garbage lands in the
 * old generation, and without a limit V8 decides alone when to collect it: uncapped runs measured
 * +21 to +83 MiB of RSS peak for the same attack, after which a full GC left the heap where it
 * was. With the limit, the old generation (about 30 MiB in use before the attack) cannot pass
 * 64 MiB, so the peak is bounded by the limit, not by when V8 chooses to collect.
 */
const MAX_OLD_SPACE_MIB = 64;
/**
 * RSS the attacks may add at their peak: the old generation's room under the limit (about
 * 35 MiB), plus what nghttp2 holds natively for 1,024 open streams and allocator slack. Before
 * the stream limits, the burst took +143 MiB and kept it (and under this heap limit it would die
 * of a heap out of memory instead).
 */
const RSS_BOUND_MIB = 64;
/**
 * Heap still held after the attack, after full GCs: every stream was reset or ended with its
 * connection, so nothing of them may stay. The held connections' own state and V8's noise are
 * what is left; an unbounded server kept 7.5 KB per stream, 150 MB for 20,000.
 */
const HEAP_KEPT_BOUND_MIB = 4;

interface Service {
  readonly proc: TrackedChild;
  readonly port: number;
  readonly conns: Conn[];
  connect(opts?: { peerMaxConcurrentStreams?: number }): Conn;
}

let configDir: string;
const services: Service[] = [];

async function startService(env: Record<string, string>): Promise<Service> {
  const { proc, grpcPort } = await spawnService({ CONFIG_DIR: configDir, ...env });
  const s: Service = {
    proc,
    port: grpcPort,
    conns: [],
    connect(opts) {
      const c = connect(grpcPort, opts);
      this.conns.push(c);
      return c;
    },
  };
  services.push(s);
  return s;
}

beforeAll(() => {
  configDir = mkdtempSync(path.join(tmpdir(), 'meshlimit-h2-e2e-'));
  writeFileSync(path.join(configDir, 'd.yaml'), CONFIG);
});

afterAll(async () => {
  for (const s of services) {
    for (const c of s.conns) c.session.destroy();
    await s.proc.stop();
  }
  rmSync(configDir, { recursive: true, force: true });
});

describe('meshlimit under attack on its gRPC port (default limits, GRPC_STREAM_TIMEOUT_MS=250)', () => {
  let svc: Service;
  beforeAll(async () => {
    svc = await startService({
      GRPC_STREAM_TIMEOUT_MS: String(STREAM_TIMEOUT_MS),
      NODE_OPTIONS: `--max-old-space-size=${MAX_OLD_SPACE_MIB} ${HEAP_PROBE_NODE_OPTIONS}`,
    });
  }, 30_000);

  interface Growth {
    /** RSS before the attack and its peak during it, MiB. */
    readonly before: number;
    readonly peak: number;
    /** Heap after full GCs before and after the attack, MiB. */
    readonly heapBefore: number;
    readonly heapAfter: number;
  }

  /** Runs `attack` while sampling the service's RSS, with the heap it keeps before and after. */
  async function rssGrowth(attack: () => Promise<void>): Promise<Growth> {
    const warm = svc.connect();
    for (let i = 0; i < 20; i++) expect((await call(warm, rlsRequest('d', [['k', 'warm']]))).status).toBe('0');
    const heapBefore = (await heapAfterFullGc(svc.proc)).heap;
    await sleep(300);
    const before = rssMiB(svc.proc.pid);
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(svc.proc.pid))), 50);
    try {
      await attack();
    } finally {
      clearInterval(sampler);
    }
    return { before, peak, heapBefore, heapAfter: (await heapAfterFullGc(svc.proc)).heap };
  }

  const report = (g: Growth): string =>
    `service RSS ${g.before.toFixed(1)} -> peak ${g.peak.toFixed(1)} MiB (+${(g.peak - g.before).toFixed(1)}); ` +
    `heap after full GCs ${g.heapBefore.toFixed(1)} -> ${g.heapAfter.toFixed(1)} MiB`;

  function expectBounded(g: Growth): void {
    expect(g.peak - g.before, report(g)).toBeLessThan(RSS_BOUND_MIB);
    expect(g.heapAfter - g.heapBefore, report(g)).toBeLessThan(HEAP_KEPT_BOUND_MIB);
  }

  it('a burst of 20,000 incomplete streams over 4 connections, sent before the SETTINGS arrive: all refused, RSS bounded', async () => {
    const tally = new StreamTally();
    const attackers: Conn[] = [];
    const growth = await rssGrowth(async () => {
      for (let c = 0; c < 4; c++) attackers.push(svc.connect({ peerMaxConcurrentStreams: 5000 }));
      for (const conn of attackers) openIncomplete(conn, 5000, tally);
      await eventually(async () => tally.count('open') === 0, 15_000, 100);
    });
    const refused = tally.count(NGHTTP2_REFUSED_STREAM);
    const reset = tally.count(NGHTTP2_CANCEL);
    const killed = attackers.filter((c) => c.goaway?.code === NGHTTP2_INTERNAL_ERROR).length;
    console.log(
      `burst of 20,000 incomplete streams: ${refused} refused, ${reset} reset after the stream timeout, ` +
        `${20_000 - refused - reset} ended with their connection (${killed} of 4 closed by nghttp2, INTERNAL_ERROR, after about 1,000 refusals); ` +
        report(growth),
    );
    expect(tally.opened).toBe(20_000);
    expect(tally.count(NGHTTP2_NO_ERROR)).toBe(0); // none answered: every one refused, reset or ended with its connection
    expectBounded(growth);
  }, 60_000);

  it('20,000 incomplete streams over 4 connections that keep to the stream limit: each reset after the stream timeout, RSS bounded, a normal call answered within 1 s', async () => {
    const tally = new StreamTally();
    const calls: number[] = [];
    const growth = await rssGrowth(async () => {
      for (let c = 0; c < 4; c++) openIncomplete(svc.connect(), 5000, tally);
      // Normal calls on another connection while the attack holds its streams.
      for (let i = 0; i < 5; i++) {
        await sleep(200);
        const answer = await call(svc.connect(), rlsRequest('d', [['k', 'meanwhile']]), 1000);
        expect(answer.status).toBe('0');
        calls.push(answer.ms);
      }
      await eventually(async () => tally.count('open') === 0, 30_000, 100);
    });
    const reset = tally.count(NGHTTP2_CANCEL);
    console.log(
      `20,000 incomplete streams kept to the limit: ${reset} reset after the stream timeout; ${report(growth)}; ` +
        `normal calls meanwhile ${calls.map((ms) => ms.toFixed(0)).join(', ')} ms`,
    );
    expect(reset).toBe(20_000);
    expect(Math.max(...calls)).toBeLessThan(1000);
    expectBounded(growth);
  }, 60_000);

  it('a reset flood (HEADERS + RST_STREAM in a loop) ends in GOAWAY ENHANCE_YOUR_CALM after about 200 resets and charges nothing', async () => {
    const body = rlsRequest('d', [['k', 'flood']]);
    const conn = svc.connect();
    await conn.settings;
    const sent = await resetFlood(conn, { total: 20_000, batch: 10 });
    await conn.done;
    expect(conn.goaway).toEqual({ code: NGHTTP2_ENHANCE_YOUR_CALM, data: 'too_many_resets' });
    // The server's count, from the GOAWAY's last stream id: 201 resets and the rest of their batch
    // of 10 (measured: 210, once 220 in CI), plus any batch read with them. What the
    // client wrote before the GOAWAY reached it depends on the machine's load (measured 300 to
    // 650). Before the limits: nghttp2's own INTERNAL_ERROR GOAWAY, after about 1,100.
    const processed = streamsProcessedBeforeGoaway(conn);
    console.log(`reset flood: the server processed ${processed} streams, the client wrote ${sent}`);
    expect(processed).toBeGreaterThan(200);
    expect(processed).toBeLessThan(300);
    const answer = await call(svc.connect(), body);
    expect(decodeRlsResponse(answer.message).statuses[0]!.limitRemaining).toBe(LIMIT - 1);
  }, 30_000);
});

describe('connection limits from the environment (GRPC_MAX_CONNECTIONS=4, GRPC_MAX_CONNECTION_IDLE=500ms)', () => {
  let svc: Service;
  beforeAll(async () => {
    svc = await startService({ GRPC_MAX_CONNECTIONS: '4', GRPC_MAX_CONNECTION_IDLE: '500ms' });
  }, 30_000);

  it('refuses connections beyond the maximum, and closes idle ones with GOAWAY', async () => {
    const body = rlsRequest('d', [['k', 'conns']]);
    const open = [svc.connect(), svc.connect(), svc.connect(), svc.connect()];
    for (const c of open) expect((await call(c, body)).status).toBe('0');
    const extra = svc.connect();
    await extra.done;
    expect(extra.goaway).toBeUndefined(); // closed as it was accepted
    // Idle ones are closed after 500 ms (grpc-js checks idleness at that period: within 2 of them).
    const t0 = performance.now();
    await Promise.all(open.map((c) => c.done));
    expect(performance.now() - t0).toBeLessThan(2 * 500 + 1000);
    for (const c of open) expect(c.goaway?.code).toBe(NGHTTP2_NO_ERROR);
    expect((await call(svc.connect(), body)).status).toBe('0');
  }, 30_000);
});
