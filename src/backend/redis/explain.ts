import { BackendUnavailableError } from '../../errors.js';

/**
 * meshlimit's own account of a Redis it cannot use: which Redis (its label, naming the setting
 * that points at it), what failed (from the last connection error ioredis reported) and what to
 * check. ioredis' wording ("Stream isn't writeable and enableOfflineQueue options is false")
 * describes the client's internals, not the cause, so it is only ever kept as a detail.
 *
 * Used for the start-up and reminder log lines, the `/healthcheck` body and the message of a
 * request that failed because the connection is not there.
 */

/** What the label names when the options carry none. */
export const DEFAULT_REDIS_LABEL = 'Redis';

/** One sentence: `<label> is not connected: <what failed>; check <what>`. */
export function notConnectedReason(label: string | undefined, lastError: Error | undefined): string {
  const name = label ?? DEFAULT_REDIS_LABEL;
  const { failed, check } = diagnose(lastError, name);
  return `${name} is not connected: ${failed}; check ${check}`;
}

/**
 * A request's error while the connection is down: meshlimit's sentence, with the error the call
 * actually met (`detail`, the client library's text) appended as a detail and kept as the cause.
 */
export function notConnectedError(label: string | undefined, lastError: Error | undefined, detail: Error): BackendUnavailableError {
  const inner = detail.cause instanceof Error ? detail.cause : detail;
  return new BackendUnavailableError(`${notConnectedReason(label, lastError)} (detail: ${inner.message})`, { cause: detail });
}

interface Diagnosis {
  readonly failed: string;
  readonly check: string;
}

/** The settings of the Redis a label names (the per-second one has its own). */
function settingsOf(label: string): { url: string; auth: string; tls: string } {
  const p = label.includes('REDIS_PERSECOND_') ? 'REDIS_PERSECOND_' : 'REDIS_';
  return { url: `${p}URL`, auth: `${p}AUTH`, tls: `${p}TLS` };
}

function diagnose(err: Error | undefined, label: string): Diagnosis {
  const s = settingsOf(label);
  if (err === undefined)
    return {
      failed: 'no connection has been made yet',
      check: `that Redis is running and reachable at that address (${s.url}), and REDIS_CONNECT_TIMEOUT_MS`,
    };
  const e = err as Error & { code?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  const said = err.message;
  if (code === 'ECONNREFUSED' || /ECONNREFUSED/.test(said))
    return {
      failed: `connection refused (${said})`,
      check: `that Redis is running and listening on that host and port, and that ${s.url} names them`,
    };
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || /ENOTFOUND|EAI_AGAIN/.test(said))
    return { failed: `the host name does not resolve (${said})`, check: `the host name in ${s.url} and this pod's DNS` };
  if (code === 'ETIMEDOUT' || /ETIMEDOUT|timed? ?out/i.test(said))
    return {
      failed: `no answer in time (${said})`,
      check: `the address in ${s.url}, and firewalls or network policies between meshlimit and Redis (REDIS_CONNECT_TIMEOUT_MS bounds each attempt)`,
    };
  if (code === 'ENOENT' || /ENOENT/.test(said))
    return { failed: `no socket at that path (${said})`, check: `that Redis is running and the socket path in ${s.url}` };
  if (/^(WRONGPASS|NOAUTH|NOPERM)|AUTH/.test(said))
    return { failed: `Redis refused the credentials (${said})`, check: `${s.auth} (or the user:password in ${s.url})` };
  if (/SSL|TLS|CERT|certificate|UNABLE_TO_/i.test(`${code} ${said}`))
    return { failed: `the TLS handshake failed (${said})`, check: `${s.tls} and the REDIS_TLS_* certificate settings` };
  return { failed: said, check: `that Redis is running and reachable at that address (${s.url})` };
}
