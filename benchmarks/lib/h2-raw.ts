/**
 * A minimal HTTP/2 (h2c, prior knowledge) client that sends prebuilt gRPC requests whose body
 * changes on every request, for the one scenario h2load cannot drive: h2load posts the same
 * `-d` file on every request (it re-reads it with pread, unchanged), so it cannot send a
 * million distinct client IPs.
 *
 * What it does, and what it deliberately does not:
 * - request HEADERS are one constant HPACK block (static-table indices and literals "without
 *   indexing", no Huffman), so every request costs one copy of a prebuilt buffer plus the body;
 * - it never decodes response headers (no HPACK decoder). A request counts as completed when its
 *   stream ends (END_STREAM) and as failed when it ends without a DATA frame (a gRPC
 *   "trailers-only" answer, which grpc-js sends exactly for non-OK statuses of a unary call) or
 *   is reset. The harness cross-checks exact error counts on the server side (metrics delta);
 * - flow control: it tracks the connection and stream send windows (request bodies are tiny)
 *   and advertises a large receive window so the server never waits on us.
 * Pure module: the child-process entry is `benchmarks/vary-load.ts`.
 */
import { connect, type Socket } from 'node:net';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const T_DATA = 0x0;
const T_HEADERS = 0x1;
const T_RST_STREAM = 0x3;
const T_SETTINGS = 0x4;
const T_PING = 0x6;
const T_GOAWAY = 0x7;
const T_WINDOW_UPDATE = 0x8;
const F_END_STREAM = 0x1;
const F_ACK = 0x1;
const F_END_HEADERS = 0x4;
const MAX_WINDOW = 0x7fffffff;

function frameHeader(length: number, type: number, flags: number, streamId: number): Buffer {
  const b = Buffer.alloc(9);
  b.writeUIntBE(length, 0, 3);
  b[3] = type;
  b[4] = flags;
  b.writeUInt32BE(streamId & MAX_WINDOW, 5);
  return b;
}

function hpackString(s: string): Buffer {
  const bytes = Buffer.from(s, 'latin1');
  if (bytes.length >= 127) throw new Error('header value too long for this minimal encoder');
  return Buffer.concat([Buffer.from([bytes.length]), bytes]);
}

/** The constant request header block: POST, http, path, authority, content-type, te. */
export function requestHeaderBlock(authority: string, path: string): Buffer {
  return Buffer.concat([
    Buffer.from([0x83]), // :method POST (static 3)
    Buffer.from([0x86]), // :scheme http (static 6)
    Buffer.from([0x04]),
    hpackString(path), // :path, literal without indexing, name static 4
    Buffer.from([0x01]),
    hpackString(authority), // :authority, name static 1
    Buffer.from([0x0f, 0x10]),
    hpackString('application/grpc'), // content-type, name static 31
    Buffer.from([0x00]),
    hpackString('te'),
    hpackString('trailers'), // te, new name
  ]);
}

export interface RawRunOptions {
  readonly host: string;
  readonly port: number;
  readonly path: string;
  readonly connections: number;
  /** Requests in flight per connection. */
  readonly streams: number;
  readonly requests: number;
  /** Body (a gRPC frame) of the request with sequence number `i` (0-based, across connections). */
  readonly body: (i: number) => Buffer;
}

export interface RawRunResult {
  readonly requests: number;
  readonly completed: number;
  /** Streams reset, or ended without a response message (gRPC trailers-only = non-OK status). */
  readonly failed: number;
  readonly seconds: number;
  /** Per-request latency in microseconds, in completion order. */
  readonly latenciesUs: Float64Array;
}

interface Conn {
  readonly socket: Socket;
  nextStreamId: number;
  inFlight: number;
  sendWindow: number;
  streamInitialWindow: number;
  readonly started: Map<number, { t: bigint; data: boolean }>;
  pending: Buffer[];
  buf: Buffer;
}

/** Runs `requests` requests over `connections` connections, `streams` in flight on each. */
export function runRaw(opts: RawRunOptions): Promise<RawRunResult> {
  const headerBlock = requestHeaderBlock(`${opts.host}:${opts.port}`, opts.path);
  const latencies = new Float64Array(opts.requests);
  let next = 0;
  let completed = 0;
  let failed = 0;
  const t0 = process.hrtime.bigint();

  return new Promise((resolve, reject) => {
    const conns: Conn[] = [];
    let finished = false;
    const finish = (err?: Error): void => {
      if (finished) return;
      finished = true;
      for (const c of conns) c.socket.destroy();
      if (err) return reject(err);
      resolve({
        requests: opts.requests,
        completed,
        failed,
        seconds: Number(process.hrtime.bigint() - t0) / 1e9,
        latenciesUs: latencies.subarray(0, completed),
      });
    };

    const fill = (c: Conn): void => {
      while (c.inFlight < opts.streams && next < opts.requests) {
        const body = opts.body(next++);
        if (body.length > c.sendWindow || body.length > c.streamInitialWindow) {
          next--;
          break; // wait for WINDOW_UPDATE
        }
        const id = c.nextStreamId;
        c.nextStreamId += 2;
        c.sendWindow -= body.length;
        c.pending.push(frameHeader(headerBlock.length, T_HEADERS, F_END_HEADERS, id), headerBlock);
        c.pending.push(frameHeader(body.length, T_DATA, F_END_STREAM, id), body);
        c.started.set(id, { t: process.hrtime.bigint(), data: false });
        c.inFlight++;
      }
      if (c.pending.length > 0) {
        c.socket.write(c.pending.length === 1 ? (c.pending[0] as Buffer) : Buffer.concat(c.pending));
        c.pending = [];
      }
    };

    const endStream = (c: Conn, id: number, ok: boolean): void => {
      const s = c.started.get(id);
      if (s === undefined) return;
      c.started.delete(id);
      c.inFlight--;
      latencies[completed++] = Number(process.hrtime.bigint() - s.t) / 1000;
      if (!ok || !s.data) failed++;
    };

    const onFrame = (c: Conn, type: number, flags: number, id: number, payload: Buffer): void => {
      switch (type) {
        case T_DATA:
          if (id !== 0 && payload.length > 0) {
            const s = c.started.get(id);
            if (s) s.data = true;
          }
          if (flags & F_END_STREAM) endStream(c, id, true);
          break;
        case T_HEADERS:
          if (flags & F_END_STREAM) endStream(c, id, true);
          break;
        case T_RST_STREAM:
          endStream(c, id, false);
          break;
        case T_SETTINGS:
          if (!(flags & F_ACK)) {
            for (let o = 0; o + 6 <= payload.length; o += 6) {
              if (payload.readUInt16BE(o) === 0x4) c.streamInitialWindow = payload.readUInt32BE(o + 2);
            }
            c.socket.write(frameHeader(0, T_SETTINGS, F_ACK, 0));
          }
          break;
        case T_PING:
          if (!(flags & F_ACK)) c.socket.write(Buffer.concat([frameHeader(8, T_PING, F_ACK, 0), payload]));
          break;
        case T_WINDOW_UPDATE:
          if (id === 0) c.sendWindow += payload.readUInt32BE(0) & MAX_WINDOW;
          break;
        case T_GOAWAY:
          finish(new Error(`server sent GOAWAY (error code ${payload.length >= 8 ? payload.readUInt32BE(4) : '?'})`));
          break;
        default:
          break; // CONTINUATION, PRIORITY, unknown: nothing to do
      }
    };

    for (let k = 0; k < opts.connections; k++) {
      const socket = connect({ host: opts.host, port: opts.port, noDelay: true });
      const c: Conn = {
        socket,
        nextStreamId: 1,
        inFlight: 0,
        sendWindow: 65_535,
        streamInitialWindow: 65_535,
        started: new Map(),
        pending: [],
        buf: Buffer.alloc(0),
      };
      conns.push(c);
      socket.on('error', (e) => finish(e));
      socket.on('close', () => {
        if (!finished && completed < opts.requests) finish(new Error('connection closed by the server'));
      });
      socket.on('connect', () => {
        // Preface, SETTINGS (no push, max initial window), then a connection WINDOW_UPDATE to max.
        const settings = Buffer.alloc(12);
        settings.writeUInt16BE(0x2, 0); // ENABLE_PUSH
        settings.writeUInt32BE(0, 2);
        settings.writeUInt16BE(0x4, 6); // INITIAL_WINDOW_SIZE
        settings.writeUInt32BE(MAX_WINDOW, 8);
        const wu = Buffer.alloc(4);
        wu.writeUInt32BE(MAX_WINDOW - 65_535, 0);
        socket.write(Buffer.concat([PREFACE, frameHeader(12, T_SETTINGS, 0, 0), settings, frameHeader(4, T_WINDOW_UPDATE, 0, 0), wu]));
        fill(c);
      });
      socket.on('data', (chunk: Buffer) => {
        let buf = c.buf.length === 0 ? chunk : Buffer.concat([c.buf, chunk]);
        let off = 0;
        while (buf.length - off >= 9) {
          const len = buf.readUIntBE(off, 3);
          if (buf.length - off < 9 + len) break;
          const type = buf[off + 3] as number;
          const flags = buf[off + 4] as number;
          const id = buf.readUInt32BE(off + 5) & MAX_WINDOW;
          onFrame(c, type, flags, id, buf.subarray(off + 9, off + 9 + len));
          off += 9 + len;
        }
        c.buf = off === buf.length ? Buffer.alloc(0) : buf.subarray(off);
        if (completed === opts.requests) return finish();
        fill(c);
        buf = Buffer.alloc(0);
      });
    }
  });
}
