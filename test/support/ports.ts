/**
 * Free loopback ports for test servers.
 *
 * Contract: a returned port (and, with `withClusterBus`, port + 10000 too) could be bound on
 * 127.0.0.1 a moment ago. That is a hint, not a lease: another process may take it before the
 * caller binds it, so callers that spawn servers must detect "address in use" and ask again
 * (the Redis harnesses do). Two choices make such races rare:
 * - ports come from a fixed band *below* the kernel's ephemeral range (and the Redis Cluster bus
 *   port, port + 10000, stays below it too), so outgoing connections and `listen(0)` servers never
 *   land on them;
 * - the pick inside the band is random, so parallel test workers seldom collide.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Offset Redis Cluster adds to a node's port for its cluster bus. */
export const CLUSTER_BUS_OFFSET = 10_000;

const BAND_LOW = 10_000;
const FALLBACK_EPHEMERAL_LOW = 32_768;

/** First port of the kernel's ephemeral range (Linux), else the IANA-ish default. */
function ephemeralLow(): number {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
    const n = Number(low);
    return Number.isInteger(n) && n > BAND_LOW + 2 * CLUSTER_BUS_OFFSET ? n : FALLBACK_EPHEMERAL_LOW;
  } catch {
    return FALLBACK_EPHEMERAL_LOW;
  }
}

/** Resolves true when `port` can be bound on 127.0.0.1 right now. */
export function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

export interface FreePortOptions {
  /** Also require port + 10000 (the Redis Cluster bus) to be free. */
  readonly withClusterBus?: boolean;
  /** Ports to skip (e.g. ones already handed out for the same set-up). */
  readonly exclude?: ReadonlySet<number>;
  /** Attempts before giving up (default 200). */
  readonly attempts?: number;
}

/**
 * A free loopback port in [10000, ephemeralLow - 10000), so that even its cluster bus port stays
 * below the ephemeral range. Rejects after `attempts` random probes.
 */
export async function getFreePort(opts: FreePortOptions = {}): Promise<number> {
  const high = ephemeralLow() - CLUSTER_BUS_OFFSET; // exclusive
  const attempts = opts.attempts ?? 200;
  for (let i = 0; i < attempts; i++) {
    const port = BAND_LOW + Math.floor(Math.random() * (high - BAND_LOW));
    if (opts.exclude?.has(port)) continue;
    if (!(await isPortFree(port))) continue;
    if (opts.withClusterBus === true && !(await isPortFree(port + CLUSTER_BUS_OFFSET))) continue;
    return port;
  }
  throw new Error(`getFreePort: no free loopback port found in [${BAND_LOW}, ${high}) after ${attempts} attempts`);
}
