import { readFileSync } from 'node:fs';
import { SettingsError } from '../errors.js';
import { certificatesProblem, keyProblem, pairProblem } from '../util/pem.js';
import { readPem, type FileReader } from './redis-tls.js';
import { goDuration, setting, text } from './spec.js';

/**
 * HTTPS on the admin port (`PORT`: /healthcheck, /json, /metrics, /rlconfig, the admin API and
 * console), with client certificates when a client CA is given: rows of the settings table
 * (./table.ts spreads them in after the admin rows). The files are read and checked here once,
 * as the gRPC port's are (./grpc-tls.ts), so a missing file or a key that does not match stops
 * start-up naming the setting; src/server/http/tls.ts then re-reads them while serving. Not an
 * upstream setting: envoyproxy/ratelimit serves its HTTP port in plaintext only.
 */
export const ADMIN_TLS_DEFS = {
  ADMIN_TLS_CERT: setting({
    group: 'http',
    default: undefined,
    parse: text,
    description:
      'Serve the HTTP port (`PORT`: health, `/json`, metrics, admin API, console) over HTTPS with this PEM certificate chain (leaf first) and `ADMIN_TLS_KEY`. Re-read when the files change (`ADMIN_TLS_RELOAD_INTERVAL`); open connections keep the certificate they started with. Kubernetes probes then need `scheme: HTTPS`, a Prometheus scrape `scheme: https`.',
  }),
  ADMIN_TLS_KEY: setting({
    group: 'http',
    default: undefined,
    parse: text,
    description: "PEM file of `ADMIN_TLS_CERT`'s private key (not encrypted).",
  }),
  ADMIN_TLS_CLIENT_CACERT: setting({
    group: 'http',
    default: undefined,
    parse: text,
    description:
      'mTLS on the HTTP port: every client must present a certificate that chains to this CA bundle, or its handshake fails. That includes probes and Prometheus: kubelet presents no client certificate, so with it set use the gRPC health check for probes (or leave it unset and guard the admin API with `ADMIN_TOKEN`). Needs `ADMIN_TLS_CERT`.',
  }),
  ADMIN_TLS_RELOAD_INTERVAL: setting({
    group: 'http',
    default: '10s',
    parse: goDuration(100, 3_600_000),
    description:
      'How often the HTTPS files are re-read (a Go duration, 100ms to 1h). A changed set that checks out is used for new connections; one that does not is logged and counted (`meshlimit_admin_tls_reloads_total{outcome="rejected"}`) and the previous one stays.',
  }),
} as const;

/** The HTTP port's TLS, as {@link loadAdminTls} checked it. */
export interface AdminTls {
  readonly certFile: string;
  readonly keyFile: string;
  /** ADMIN_TLS_CLIENT_CACERT: client certificates are required and verified against it. */
  readonly clientCaFile: string | undefined;
  readonly reloadIntervalMs: number;
}

export interface AdminTlsInputs {
  readonly ADMIN_TLS_CERT: string | undefined;
  readonly ADMIN_TLS_KEY: string | undefined;
  readonly ADMIN_TLS_CLIENT_CACERT: string | undefined;
  readonly ADMIN_TLS_RELOAD_INTERVAL: number;
}

const readText: FileReader = (path) => readFileSync(path, 'utf8');

/**
 * Checks the combination and reads the files; every problem is pushed onto `errors`. Undefined
 * when HTTPS is off (no ADMIN_TLS_* file set) or something is wrong.
 */
export function loadAdminTls(p: AdminTlsInputs, errors: SettingsError[], read: FileReader = readText): AdminTls | undefined {
  const before = errors.length;
  if (p.ADMIN_TLS_CERT === undefined && p.ADMIN_TLS_KEY === undefined && p.ADMIN_TLS_CLIENT_CACERT === undefined) return undefined;
  if (p.ADMIN_TLS_CERT === undefined)
    errors.push(
      new SettingsError(
        'ADMIN_TLS_CERT',
        `is required with ${p.ADMIN_TLS_KEY !== undefined ? 'ADMIN_TLS_KEY' : 'ADMIN_TLS_CLIENT_CACERT'}: HTTPS needs the certificate the port presents`,
      ),
    );
  if (p.ADMIN_TLS_KEY === undefined)
    errors.push(new SettingsError('ADMIN_TLS_KEY', "is required with ADMIN_TLS_CERT: the certificate's private key"));
  const cert = readPem('ADMIN_TLS_CERT', p.ADMIN_TLS_CERT, read, errors, certificatesProblem);
  const key = readPem('ADMIN_TLS_KEY', p.ADMIN_TLS_KEY, read, errors, keyProblem);
  readPem('ADMIN_TLS_CLIENT_CACERT', p.ADMIN_TLS_CLIENT_CACERT, read, errors, certificatesProblem);
  if (cert !== undefined && key !== undefined) {
    const mismatch = pairProblem(cert, key);
    if (mismatch !== undefined)
      errors.push(
        new SettingsError(
          'ADMIN_TLS_KEY',
          `${JSON.stringify(p.ADMIN_TLS_KEY)} does not match the certificate of ADMIN_TLS_CERT: ${mismatch}`,
        ),
      );
  }
  if (errors.length > before || p.ADMIN_TLS_CERT === undefined || p.ADMIN_TLS_KEY === undefined) return undefined;
  return {
    certFile: p.ADMIN_TLS_CERT,
    keyFile: p.ADMIN_TLS_KEY,
    clientCaFile: p.ADMIN_TLS_CLIENT_CACERT,
    reloadIntervalMs: p.ADMIN_TLS_RELOAD_INTERVAL,
  };
}
