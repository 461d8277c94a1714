import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { RlsClient, RlsDescriptorInput } from '../../client/rls-client.js';

/**
 * A stand-in for the Istio ingress gateway (Envoy + its rate-limit filter), for the demo and the
 * end-to-end tests: for each request it sends meshlimit the descriptors the gateway's EnvoyFilter
 * would send, answers 429 on OVER_LIMIT, and otherwise proxies to the upstream service.
 *
 * The descriptors, per request, are those of these Envoy `rate_limits` actions (see README,
 * "Descriptor resolution"):
 *
 * 1. `[(authorization, <header>), (remote_address, <client ip>)]` - per caller
 * 2. `[(authorization, <header>), (remote_address, <client ip>), (path, <path>)]` - per caller and path
 * 3. `[(path, <path>)]` - per path, every caller
 *
 * with `skip_if_absent: true` on the authorization action (no header: the entry is left out).
 * meshlimit's resolution turns (1) and (2) into `company_id` descriptors for verified tokens and
 * `remote_address` descriptors for everyone else. The path is sent without its query string.
 *
 * Not Envoy: no streaming (bodies are buffered, 1 MiB at most), no HTTP/2, no retries. Like
 * Envoy's default (`failure_mode_deny: false`), a request passes when meshlimit cannot answer.
 */
export interface GatewayOptions {
  /** Upstream base URL, e.g. `http://127.0.0.1:3000`. */
  readonly upstream: string;
  readonly rls: RlsClient;
  /** Descriptor config domain (the gateway's EnvoyFilter `domain`). */
  readonly domain: string;
  /**
   * Demo only: read the client address from this request header (its first comma-separated
   * value) instead of the socket, so a single machine can play several clients. Envoy does the
   * equivalent with `xff_num_trusted_hops`; never trust such a header from the internet.
   */
  readonly clientAddressHeader?: string | undefined;
  /** Deadline of the meshlimit call, ms (default 200). */
  readonly deadlineMs?: number | undefined;
}

export interface Gateway {
  readonly server: Server;
  listen(host: string, port: number): Promise<number>;
  close(): Promise<void>;
}

const MAX_BODY = 1024 * 1024;
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'host',
  'content-length',
]);

/** The descriptors the gateway's EnvoyFilter sends for one request (see the module comment). */
export function gatewayDescriptors(authorization: string | undefined, clientAddress: string, path: string): RlsDescriptorInput[] {
  const caller = authorization === undefined || authorization === '' ? [] : [{ key: 'authorization', value: authorization }];
  const ip = { key: 'remote_address', value: clientAddress };
  const p = { key: 'path', value: path };
  return [{ entries: [...caller, ip] }, { entries: [...caller, ip, p] }, { entries: [p] }];
}

export function createGateway(opts: GatewayOptions): Gateway {
  const upstream = opts.upstream.replace(/\/+$/, '');
  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'bad gateway' }));
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://gateway.invalid');
    const auth = req.headers.authorization;
    let extraHeaders: Record<string, string> = {};
    try {
      const answer = await opts.rls.shouldRateLimit(
        { domain: opts.domain, descriptors: gatewayDescriptors(auth, clientAddress(req, opts.clientAddressHeader), url.pathname) },
        { deadlineMs: opts.deadlineMs ?? 200 },
      );
      extraHeaders = Object.fromEntries(answer.responseHeadersToAdd.map((h) => [h.key, h.value]));
      if (answer.overallCode === 'OVER_LIMIT') {
        req.resume();
        res.writeHead(429, { 'content-type': 'application/json', 'x-envoy-ratelimited': 'true', ...extraHeaders });
        res.end(JSON.stringify({ error: 'rate limited' }));
        return;
      }
    } catch {
      // meshlimit unavailable: fail open, as Envoy does unless failure_mode_deny is set.
      extraHeaders = { 'x-ratelimit-status': 'unavailable' };
    }
    await proxy(req, res, `${upstream}${url.pathname}${url.search}`, extraHeaders);
  }

  return {
    server,
    listen(host, port) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve((server.address() as { port: number }).port));
      });
    },
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** The client's address: the first item of `header` when configured and present, else the socket's. */
function clientAddress(req: IncomingMessage, header: string | undefined): string {
  if (header !== undefined) {
    const h = req.headers[header.toLowerCase()];
    const first = (Array.isArray(h) ? h[0] : h)?.split(',')[0]?.trim();
    if (first) return first;
  }
  const a = req.socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

/** Forwards `req` to `target` and its answer back, with `extraHeaders` (the rate-limit headers) added. */
async function proxy(req: IncomingMessage, res: ServerResponse, target: string, extraHeaders: Record<string, string>): Promise<void> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) {
      res.writeHead(413).end();
      return;
    }
    chunks.push(chunk as Buffer);
  }
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers))
    if (!HOP_BY_HOP.has(k) && v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
  const method = req.method ?? 'GET';
  const up = await fetch(target, {
    method,
    headers,
    body: method === 'GET' || method === 'HEAD' ? undefined : Buffer.concat(chunks),
    redirect: 'manual',
  });
  const body = Buffer.from(await up.arrayBuffer());
  const out: Record<string, string> = {};
  up.headers.forEach((v, k) => {
    if (!HOP_BY_HOP.has(k) && k !== 'content-encoding') out[k] = v;
  });
  res.writeHead(up.status, { ...out, ...extraHeaders, 'content-length': String(body.length) });
  res.end(body);
}
