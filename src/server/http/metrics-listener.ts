import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A second HTTP port that serves only the Prometheus metrics, for envoyproxy/ratelimit's
 * `USE_PROMETHEUS=true` with `PROMETHEUS_ADDR` and `PROMETHEUS_PATH`: Envoy Gateway starts its
 * rate-limit deployment with `PROMETHEUS_ADDR=:19001` and annotates the pod for Prometheus to
 * scrape that port, so the same scrape finds meshlimit's series there (they stay on `PORT`'s
 * `/metrics` as well).
 *
 * Bounded: `GET` (or `HEAD`) of the one path, nothing else (404, or 405 for another method on
 * the path); request bodies are never read; headers within 5 s, a request within 10 s; at most
 * {@link METRICS_MAX_CONNECTIONS} connections (a scraper needs one), further ones closed at once.
 */

/** Connections the metrics port keeps open at once. */
export const METRICS_MAX_CONNECTIONS = 16;
export interface MetricsListener {
  /** Binds; `host` undefined listens on every address (Go's `:port`). Resolves with the bound port. */
  listen(host: string | undefined, port: number): Promise<number>;
  /** Stops accepting connections and closes the open ones. */
  close(): Promise<void>;
}

export function createMetricsListener(
  path: string,
  metrics: { readonly contentType: string; render(): Promise<string> },
  maxConnections = METRICS_MAX_CONNECTIONS,
): MetricsListener {
  const server: Server = createServer({ requestTimeout: 10_000, headersTimeout: 5_000 }, (req, res) => {
    const url = req.url ?? '';
    const pathname = url.split('?', 1)[0];
    if (pathname !== path) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    metrics.render().then(
      (text) => {
        res.writeHead(200, { 'content-type': metrics.contentType });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      () => res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n'),
    );
  });
  server.maxConnections = maxConnections;
  return {
    listen: (host, port) =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve((server.address() as AddressInfo).port);
        });
      }),
    close: () =>
      new Promise((resolve) => {
        if (!server.listening) {
          resolve();
          return;
        }
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
