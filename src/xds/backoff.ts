/**
 * The two waits of the xDS client, with envoyproxy/ratelimit's settings and arithmetic:
 *
 * - {@link connectRetryDelay}: between attempts to reach a management server that cannot be
 *   reached, `CONFIG_GRPC_XDS_SERVER_CONNECT_RETRY_INTERVAL` with +-50% jitter (upstream hands
 *   that interval to `grpc_retry.BackoffLinearWithJitter(interval, 0.5)`);
 * - {@link ReconnectBackoff}: before reconnecting after an established stream was lost,
 *   `XDS_CLIENT_BACKOFF_*` with the arithmetic of the backoff upstream uses (jpillora/backoff):
 *   `initial x factor^attempt`, with jitter a uniform pick between `initial` and that, clamped to
 *   [initial, max]. A factor below 1 (upstream's default is 0.5) therefore always waits `initial`;
 *   2 doubles. Unlike upstream, the attempt count restarts once a stream delivers a response, so a
 *   long-lived process does not keep waiting the maximum after a few restarts of the server.
 *
 * `random` is injectable (tests); it returns [0, 1).
 */

export interface ReconnectBackoffOptions {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly factor: number;
  readonly jitter: boolean;
  readonly random?: () => number;
}

export class ReconnectBackoff {
  #attempt = 0;
  readonly #opts: ReconnectBackoffOptions;

  constructor(options: ReconnectBackoffOptions) {
    this.#opts = options;
  }

  /** The wait before the next reconnection; each call counts one attempt. */
  next(): number {
    const { initialMs: min, maxMs: max, factor, jitter } = this.#opts;
    const attempt = this.#attempt++;
    if (min >= max) return max;
    let ms = min * Math.pow(factor, attempt);
    if (jitter) ms = (this.#opts.random ?? Math.random)() * (ms - min) + min;
    if (!Number.isFinite(ms) || ms > max) return max;
    return Math.max(min, Math.floor(ms));
  }

  /** A stream delivered a response: the next loss starts from `initialMs` again. */
  reset(): void {
    this.#attempt = 0;
  }
}

/** `intervalMs` +-50%, uniformly (grpc_retry's linear backoff with jitter 0.5). */
export function connectRetryDelay(intervalMs: number, random: () => number = Math.random): number {
  return Math.round(intervalMs * (1 + 0.5 * (random() * 2 - 1)));
}
