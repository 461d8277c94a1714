import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * A real JWKS endpoint on a loopback port for the resolution tests, whose behaviour the test
 * switches: serve the current key set, answer 503, hang (accept and never answer), or stop
 * listening altogether (connection refused).
 */
export type JwksMode = 'serve' | 'error' | 'hang';

export interface JwksServer {
  readonly url: string;
  /** Requests received so far (every mode). */
  readonly requests: number;
  /** Requests accepted in `hang` mode whose client has not gone away yet. */
  readonly hanging: number;
  mode: JwksMode;
  setKeys(jwks: object): void;
  /** Resolves once a request is hanging (at once if one already is). */
  hangStarted(): Promise<void>;
  /** Resolves when a hanging request's client has aborted it (e.g. on its timeout). */
  nextHangAborted(): Promise<void>;
  /** Stops listening (new connections are refused); `start()` listens again on the same port. */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

export async function startJwksServer(initial: object, path = '/.well-known/jwks.json'): Promise<JwksServer> {
  let jwks = JSON.stringify(initial);
  let requests = 0;
  const hangingSet = new Set<ServerResponse>();
  const sockets = new Set<Socket>();
  let abortWaiters: (() => void)[] = [];
  let hangWaiters: (() => void)[] = [];
  const state = { mode: 'serve' as JwksMode };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    requests++;
    if (req.url !== path) {
      res.writeHead(404).end();
      return;
    }
    if (state.mode === 'error') {
      res.writeHead(503).end('unavailable');
      return;
    }
    if (state.mode === 'hang') {
      hangingSet.add(res);
      const hw = hangWaiters;
      hangWaiters = [];
      for (const f of hw) f();
      res.on('close', () => {
        hangingSet.delete(res);
        const w = abortWaiters;
        abortWaiters = [];
        for (const f of w) f();
      });
      return;
    }
    res.writeHead(200, { 'content-type': 'application/jwk-set+json' }).end(jwks);
  };

  let server = createServer(handler);
  const track = (s: Socket): void => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  };
  server.on('connection', track);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;

  const stop = async (): Promise<void> => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  };

  return {
    url: `http://127.0.0.1:${port}${path}`,
    get requests() {
      return requests;
    },
    get hanging() {
      return hangingSet.size;
    },
    get mode() {
      return state.mode;
    },
    set mode(m: JwksMode) {
      state.mode = m;
    },
    setKeys(next) {
      jwks = JSON.stringify(next);
    },
    hangStarted() {
      return hangingSet.size > 0 ? Promise.resolve() : new Promise((r) => hangWaiters.push(r));
    },
    nextHangAborted() {
      return new Promise((r) => abortWaiters.push(r));
    },
    stop,
    async start() {
      server = createServer(handler);
      server.on('connection', track);
      await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    },
    async close() {
      if (server.listening) await stop();
    },
  };
}
