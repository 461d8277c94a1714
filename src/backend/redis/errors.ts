import { BackendError, BackendUnavailableError } from '../../errors.js';
import type { ReplyKind } from './call-health.js';

/**
 * Maps whatever ioredis or the network throws to meshlimit's two backend errors, once.
 *
 * Transient (BackendUnavailableError, gRPC UNAVAILABLE, counts against the circuit breaker):
 * the server could not answer now but may later. Connection refused/reset/closed, timeouts, a
 * disabled offline queue while reconnecting, and Redis replies that mean "not now": LOADING,
 * BUSY, CLUSTERDOWN, TRYAGAIN (after the bounded retries), MOVED/ASK (a slot moving),
 * READONLY and MASTERDOWN (failover), NOREPLICAS, OOM (maxmemory reached). Cluster and Sentinel
 * client conditions too: no slot map yet or any more ("Failed to refresh slots cache", "None of
 * startup nodes is available", "Cluster isn't ready"), a MOVED loop ("Too many Cluster
 * redirections"), "All sentinels are unreachable", a cluster client being shut down.
 *
 * Not transient (BackendError, gRPC INTERNAL): Redis understood and refused, so retrying cannot
 * help and the bug must surface: script errors, WRONGTYPE, authentication and ACL errors,
 * unexpected replies, and anything unrecognised.
 *
 * A timed-out command may still have run on the server: the request gets UNAVAILABLE but its
 * hits may have been counted. Nothing is retried automatically (a retry could count twice).
 */
const TRANSIENT_REPLY = /^(LOADING|BUSY|CLUSTERDOWN|TRYAGAIN|MOVED|ASK|READONLY|MASTERDOWN|NOREPLICAS|OOM)\b/;

const TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENOENT', // unix socket path missing (server not started yet)
]);

const TRANSIENT_MESSAGE = new RegExp(
  [
    'Command timed out',
    "Stream isn't writeable",
    'Connection is closed',
    'Reached the max retries per request limit',
    'socket hang up',
    'write after end',
    'connect ETIMEDOUT',
    // Redis Cluster (ioredis Cluster)
    'Failed to refresh slots cache',
    'None of startup nodes is available',
    "Cluster isn't ready",
    'Too many Cluster redirections',
    'Cluster is ended',
    'Connection is (?:aborted|discarded)',
    'All keys in the pipeline should belong to the same slots allocation group', // slot map changed under a batch
    // Sentinel
    'All sentinels are unreachable',
  ].join('|'),
  'i',
);

export function toBackendError(err: unknown): BackendError | BackendUnavailableError {
  if (err instanceof BackendError || err instanceof BackendUnavailableError) return err;
  const e = err instanceof Error ? err : new Error(String(err));
  if (e.name === 'ReplyError') {
    return TRANSIENT_REPLY.test(e.message)
      ? new BackendUnavailableError(`redis: ${e.message}`, { cause: e })
      : new BackendError(`redis: ${e.message}`, { cause: e });
  }
  const code = (e as NodeJS.ErrnoException).code;
  if (
    (code !== undefined && TRANSIENT_CODES.has(code)) ||
    e.name === 'AbortError' ||
    e.name === 'MaxRetriesPerRequestError' ||
    TRANSIENT_MESSAGE.test(e.message)
  ) {
    return new BackendUnavailableError(`redis unavailable: ${e.message}`, { cause: e });
  }
  return new BackendError(`redis: ${e.message}`, { cause: e });
}

/**
 * What a failed call tells about the server ({@link CallHealth}): a Redis error reply means it is
 * alive (`failed_reply` for the "not now" ones that fail the call: LOADING, BUSY, CLUSTERDOWN,
 * ...), anything else (a dropped or refused connection, a client-side error) means no reply.
 * Looks through meshlimit's own wrapping (toBackendError keeps the reply as `cause`).
 */
export function replyKind(err: unknown): ReplyKind {
  const reply = err instanceof Error && err.name !== 'ReplyError' ? err.cause : err;
  if (!(reply instanceof Error) || reply.name !== 'ReplyError') return 'dropped';
  return TRANSIENT_REPLY.test(reply.message) ? 'failed_reply' : 'reply';
}
