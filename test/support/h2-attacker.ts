/**
 * A hostile HTTP/2 client for the gRPC port, on raw `node:http2` (not grpc-js, which would
 * behave): incomplete streams, reset floods, ping floods, idle connections, and one honest
 * ShouldRateLimit call to see whether the service still answers. Everything it starts it records
 * (how each stream and connection ended), so tests assert on what the server did.
 */
import http2 from 'node:http2';
import { readFileSync } from 'node:fs';
import { loadClientPackage, RLS_SERVICE, serviceDefinition } from '../../src/server/grpc/protos.js';

export const RLS_PATH = '/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit';
export const WATCH_PATH = '/grpc.health.v1.Health/Watch';
export const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM, NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_NO_ERROR, NGHTTP2_INTERNAL_ERROR } =
  http2.constants;

const GRPC_HEADERS = { ':method': 'POST', 'content-type': 'application/grpc', te: 'trailers' } as const;

/** A gRPC length-prefixed message (uncompressed). */
export function grpcFrame(message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

/** A framed RateLimitRequest, serialized by proto-loader from the repository's proto files. */
export function rlsRequest(domain: string, entries: readonly (readonly [string, string])[]): Buffer {
  const method = serviceDefinition(loadClientPackage(), RLS_SERVICE)['ShouldRateLimit']!;
  const request = { domain, descriptors: [{ entries: entries.map(([key, value]) => ({ key, value })) }] };
  return grpcFrame(method.requestSerialize(request));
}

/** A ShouldRateLimit response message, decoded by proto-loader (enum names, numbers). */
export function decodeRlsResponse(message: Buffer): { overallCode: string; statuses: { code: string; limitRemaining: number }[] } {
  const method = serviceDefinition(loadClientPackage(), RLS_SERVICE)['ShouldRateLimit']!;
  return method.responseDeserialize(message) as { overallCode: string; statuses: { code: string; limitRemaining: number }[] };
}

/** One connection and what happened to it. */
export interface Conn {
  readonly session: http2.ClientHttp2Session;
  /** The first GOAWAY received: its error code and debug data. */
  goaway: { code: number; data: string } | undefined;
  /**
   * The first GOAWAY's last stream id: the highest the server had processed when it sent it
   * (Node fills it in from nghttp2), so `(id + 1) / 2` client streams reached the server, however
   * many more the client wrote before the GOAWAY reached it.
   */
  goawayLastStreamId: number | undefined;
  /** Set when the connection closed (for any reason). */
  closed: boolean;
  /** The server's SETTINGS, once received. */
  readonly settings: Promise<http2.Settings>;
  /** Resolves when the connection has closed. */
  readonly done: Promise<void>;
}

/**
 * Connects; `peerMaxConcurrentStreams` is what the client assumes before the server's SETTINGS
 * arrive, so a high value sends that many streams at once, ignoring the server's limit.
 */
export function connect(port: number, opts: { peerMaxConcurrentStreams?: number } = {}): Conn {
  const session = http2.connect(`http://127.0.0.1:${port}`, { peerMaxConcurrentStreams: opts.peerMaxConcurrentStreams ?? 100 });
  const conn: Conn = {
    session,
    goaway: undefined,
    goawayLastStreamId: undefined,
    closed: false,
    settings: new Promise((resolve) => session.once('remoteSettings', resolve)),
    done: new Promise((resolve) => session.once('close', resolve)),
  };
  session.on('error', () => undefined);
  session.on('goaway', (code, last, data) => {
    if (conn.goaway !== undefined) return;
    conn.goaway = { code, data: data?.toString() ?? '' };
    conn.goawayLastStreamId = last;
  });
  session.once('close', () => (conn.closed = true));
  return conn;
}

/** How the streams a test opened ended, by RST_STREAM code ('open' while they have not). */
export class StreamTally {
  readonly byCode = new Map<number | 'open', number>();
  /** The streams still open. */
  readonly streams = new Set<http2.ClientHttp2Stream>();
  opened = 0;

  track(stream: http2.ClientHttp2Stream): void {
    this.opened++;
    this.bump('open', 1);
    this.streams.add(stream);
    stream.on('error', () => undefined);
    stream.once('close', () => {
      this.streams.delete(stream);
      this.bump('open', -1);
      this.bump(stream.rstCode ?? NGHTTP2_NO_ERROR, 1);
    });
  }

  count(code: number | 'open'): number {
    return this.byCode.get(code) ?? 0;
  }

  private bump(code: number | 'open', by: number): void {
    this.byCode.set(code, this.count(code) + by);
  }
}

/**
 * Opens `n` streams on `conn` whose request never completes: HEADERS, the first 3 bytes of a
 * gRPC frame, and nothing more (no END_STREAM).
 */
export function openIncomplete(conn: Conn, n: number, tally: StreamTally, path = RLS_PATH): void {
  for (let i = 0; i < n && !conn.session.closed && !conn.session.destroyed; i++) {
    const stream = conn.session.request({ ...GRPC_HEADERS, ':path': path }, { endStream: false });
    tally.track(stream);
    stream.write(Buffer.from([0, 0, 0]));
  }
}

/** How many client streams the server had processed when it sent its GOAWAY (see `goawayLastStreamId`). */
export function streamsProcessedBeforeGoaway(conn: Conn): number {
  if (conn.goawayLastStreamId === undefined) throw new Error('no GOAWAY received');
  return (conn.goawayLastStreamId + 1) / 2;
}

/** Opens a stream on `path` with a complete request (`body`, END_STREAM); tracked by `tally`. */
export function openComplete(conn: Conn, body: Buffer, tally: StreamTally, path = RLS_PATH): http2.ClientHttp2Stream {
  const stream = conn.session.request({ ...GRPC_HEADERS, ':path': path });
  tally.track(stream);
  stream.end(body);
  return stream;
}

/**
 * The rapid-reset attack: batches of `batch` streams (HEADERS, plus the whole request when
 * `body` is given), each batch reset (RST_STREAM CANCEL) right after it was written, until
 * `total` streams or the connection ends. Resolves with the streams sent.
 */
export async function resetFlood(conn: Conn, opts: { total: number; batch: number; body?: Buffer | undefined }): Promise<number> {
  let sent = 0;
  const session = conn.session;
  while (sent < opts.total && !session.closed && !session.destroyed && conn.goaway === undefined) {
    const streams: http2.ClientHttp2Stream[] = [];
    for (let i = 0; i < opts.batch && sent < opts.total; i++, sent++) {
      const stream = session.request({ ...GRPC_HEADERS, ':path': RLS_PATH }, { endStream: false });
      stream.on('error', () => undefined);
      if (opts.body === undefined) stream.write(Buffer.from([0, 0, 0]));
      else stream.end(opts.body);
      streams.push(stream);
    }
    // Let the batch's frames leave in one write, then reset them all in the next.
    await new Promise((r) => setImmediate(r));
    for (const s of streams) s.close(NGHTTP2_CANCEL);
    await new Promise((r) => setImmediate(r));
  }
  return sent;
}

/** What one honest call got: its grpc-status (or a transport error) and how long it took. */
export interface CallResult {
  readonly status: string | undefined;
  readonly error: string | undefined;
  readonly ms: number;
  /** The response message bytes (without the 5-byte frame header). */
  readonly message: Buffer;
}

/** One complete ShouldRateLimit call on `conn`, bounded by `timeoutMs`. */
export function call(conn: Conn, body: Buffer, timeoutMs = 5000): Promise<CallResult> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const done = (status: string | undefined, error: string | undefined): void => {
      clearTimeout(timer);
      const data = Buffer.concat(chunks);
      resolve({ status, error, ms: performance.now() - t0, message: data.subarray(5) });
    };
    const timer = setTimeout(() => done(undefined, `no answer within ${timeoutMs} ms`), timeoutMs);
    const stream = conn.session.request({ ...GRPC_HEADERS, ':path': RLS_PATH });
    stream.on('data', (d: Buffer) => chunks.push(d));
    stream.on('response', (h) => h['grpc-status'] !== undefined && done(String(h['grpc-status']), undefined));
    stream.on('trailers', (t) => done(String(t['grpc-status']), undefined));
    stream.on('error', (e) => done(undefined, e.message));
    stream.end(body);
  });
}

/** VmRSS of process `pid` in MiB (Linux). */
export function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (m === null) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) / 1024;
}

/** NODE_OPTIONS for a service process that heapAfterFullGc() can ask (see heap-probe.mjs). */
export const HEAP_PROBE_NODE_OPTIONS = '--import ./test/support/heap-probe.mjs';

const probesAsked = new Map<number, number>();

/**
 * The heap a service process started with HEAP_PROBE_NODE_OPTIONS keeps after full GCs, and its
 * RSS then, in MiB: what it retains, not the garbage V8 has yet to collect.
 */
export async function heapAfterFullGc(proc: { pid: number; output(): string }): Promise<{ heap: number; rss: number }> {
  const seq = (probesAsked.get(proc.pid) ?? 0) + 1;
  probesAsked.set(proc.pid, seq);
  process.kill(proc.pid, 'SIGUSR2');
  const line = new RegExp(`heap-probe (\\{"seq":${seq},[^\\n]*\\})`);
  for (let waited = 0; waited < 10_000; waited += 20) {
    const m = line.exec(proc.output());
    if (m !== null) {
      const { heapUsed, rss } = JSON.parse(m[1]!) as { heapUsed: number; rss: number };
      return { heap: heapUsed / 2 ** 20, rss: rss / 2 ** 20 };
    }
    await sleep(20);
  }
  throw new Error(`pid ${proc.pid} wrote no heap-probe line ${seq} within 10 s: was it started with HEAP_PROBE_NODE_OPTIONS?`);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
