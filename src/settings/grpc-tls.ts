import { readFileSync } from 'node:fs';
import { SettingsError } from '../errors.js';
import { certificatesProblem, keyProblem, pairProblem } from '../util/pem.js';
import { readPem, type FileReader } from './redis-tls.js';
import { goDuration, InvalidValue, parseBool, setting, text } from './spec.js';

/**
 * The gRPC server's TLS and listening socket (rows of the settings table, spread in after the
 * transport bounds): envoyproxy/ratelimit's names and meanings (src/settings/settings.go,
 * src/server/server_impl.go), which Envoy Gateway sets for the rate-limit Deployment it runs
 * (certificates mounted at `/certs`). The files are read and checked here, once, so a missing
 * file, a bundle without a certificate or a key that does not match its certificate stops
 * start-up with an error naming the setting and the path; src/server/grpc/tls.ts then watches
 * them and swaps a rotated certificate in without touching established connections.
 *
 * Stricter than upstream, on purpose: TLS files without `GRPC_SERVER_USE_TLS=true`, a
 * certificate without its key (upstream fails later, at the first handshake) and a client SAN
 * without a client CA (upstream then never asks for a client certificate, so the SAN is never
 * checked) are errors, because each leaves a user believing the port is protected when it is not.
 */

const ENVOY_GATEWAY_CA = 'Envoy Gateway sets it to /certs/ca.crt';

/** `GRPC_UDS`: an absolute path, as a unix socket path must fit in sun_path (107 bytes on Linux). */
function socketPath(raw: string): string {
  const v = raw.trim();
  if (!v.startsWith('/')) throw new InvalidValue(`expected an absolute path for the unix socket, got ${JSON.stringify(raw)}`);
  if (Buffer.byteLength(v) > 107) throw new InvalidValue(`a unix socket path is at most 107 bytes, got ${Buffer.byteLength(v)}`);
  return v;
}

/** `GRPC_CLIENT_TLS_SAN`: a DNS name (wildcards allowed in the certificate, not here) or an IP address. */
function sanName(raw: string): string {
  const v = raw.trim();
  if (v === '' || /[\s,/*]/.test(v)) throw new InvalidValue(`expected one DNS name or IP address, got ${JSON.stringify(raw)}`);
  return v;
}

export const GRPC_TLS_DEFS = {
  GRPC_UDS: setting({
    group: 'grpc',
    default: undefined,
    parse: socketPath,
    description:
      'Serve gRPC on this unix domain socket instead of `GRPC_HOST:GRPC_PORT` (e.g. `/var/run/ratelimit/rls.sock`, for an Envoy in the same pod), as envoyproxy/ratelimit. A socket file left by a previous process is replaced when nothing listens on it; any other file there stops start-up. TLS and the transport bounds apply as on TCP.',
  }),
  GRPC_SERVER_USE_TLS: setting({
    group: 'grpc',
    default: 'false',
    parse: parseBool,
    description:
      'Serve gRPC over TLS with `GRPC_SERVER_TLS_CERT` and `GRPC_SERVER_TLS_KEY` (as envoyproxy/ratelimit; Envoy Gateway sets it). The files are re-read when they change (see `GRPC_SERVER_TLS_RELOAD_INTERVAL`).',
  }),
  GRPC_SERVER_TLS_CERT: setting({
    group: 'grpc',
    default: undefined,
    parse: text,
    description:
      "PEM file of the gRPC server's certificate chain (leaf first). Envoy Gateway: `/certs/tls.crt`. Checked at start-up: it must parse and match `GRPC_SERVER_TLS_KEY`.",
  }),
  GRPC_SERVER_TLS_KEY: setting({
    group: 'grpc',
    default: undefined,
    parse: text,
    description: "PEM file of the gRPC server certificate's private key (not encrypted). Envoy Gateway: `/certs/tls.key`.",
  }),
  GRPC_CLIENT_TLS_CACERT: setting({
    group: 'grpc',
    default: undefined,
    parse: text,
    description:
      'mTLS: PEM file of the CA(s) that sign client certificates. When set, every gRPC client must present a certificate that chains to it, or its handshake fails (as envoyproxy/ratelimit: `RequireAndVerifyClientCert`). Reloaded with the server certificate.',
  }),
  GRPC_CLIENT_TLS_SAN: setting({
    group: 'grpc',
    default: undefined,
    parse: sanName,
    description:
      "mTLS: the DNS name (or IP address) a client certificate's subjectAltName must match (wildcard certificates match as for a server name; the subject CN is never used); a client without it is disconnected right after its handshake. Needs `GRPC_CLIENT_TLS_CACERT`.",
  }),
  GRPC_SERVER_TLS_CA_CERT: setting({
    group: 'grpc',
    default: undefined,
    parse: text,
    description: `Not read by envoyproxy/ratelimit, though ${ENVOY_GATEWAY_CA}: accepted and, like upstream, unused (client certificates are then not required), with a line at start-up saying so. Set \`GRPC_CLIENT_TLS_CACERT\` to require them.`,
  }),
  GRPC_SERVER_TLS_RELOAD_INTERVAL: setting({
    group: 'grpc',
    default: '10s',
    parse: goDuration(100, 3_600_000),
    description:
      'How often the gRPC TLS files are re-read (a Go duration, 100ms to 1h). A changed certificate, key or client CA that checks out is used for new connections from then on; established connections and their calls keep the certificate they started with. One that does not (no certificate, a key that does not match, a file missing) is logged and counted (`meshlimit_grpc_tls_reloads_total{result="rejected"}`) and the previous one stays. Kubernetes updates a mounted Secret within about a minute (kubelet\'s sync period), so the default adds little; upstream watches the directory instead.',
  }),
} as const;

/** The gRPC server's TLS, as {@link loadGrpcTls} checked it. */
export interface GrpcServerTls {
  readonly certFile: string;
  readonly keyFile: string;
  /** GRPC_CLIENT_TLS_CACERT: client certificates are required and verified against it. */
  readonly clientCaFile: string | undefined;
  /** GRPC_CLIENT_TLS_SAN: the name a client certificate must carry. */
  readonly clientSan: string | undefined;
  readonly reloadIntervalMs: number;
  /** GRPC_SERVER_TLS_CA_CERT, set (Envoy Gateway) but not used: said once at start-up. */
  readonly unusedCaFile: string | undefined;
}

export interface GrpcTlsInputs {
  readonly GRPC_SERVER_USE_TLS: boolean;
  readonly GRPC_SERVER_TLS_CERT: string | undefined;
  readonly GRPC_SERVER_TLS_KEY: string | undefined;
  readonly GRPC_CLIENT_TLS_CACERT: string | undefined;
  readonly GRPC_CLIENT_TLS_SAN: string | undefined;
  readonly GRPC_SERVER_TLS_CA_CERT: string | undefined;
  readonly GRPC_SERVER_TLS_RELOAD_INTERVAL: number;
}

const readText: FileReader = (path) => readFileSync(path, 'utf8');

/**
 * Checks the combination and reads the files; every problem is pushed onto `errors` (one per
 * setting). Undefined when TLS is off or something is wrong.
 */
export function loadGrpcTls(p: GrpcTlsInputs, errors: SettingsError[], read: FileReader = readText): GrpcServerTls | undefined {
  const before = errors.length;
  if (!p.GRPC_SERVER_USE_TLS) {
    for (const name of ['GRPC_SERVER_TLS_CERT', 'GRPC_SERVER_TLS_KEY', 'GRPC_CLIENT_TLS_CACERT', 'GRPC_CLIENT_TLS_SAN'] as const)
      if (p[name] !== undefined)
        errors.push(new SettingsError(name, 'is set but GRPC_SERVER_USE_TLS is not true: the gRPC port would serve plaintext'));
    return undefined;
  }
  for (const name of ['GRPC_SERVER_TLS_CERT', 'GRPC_SERVER_TLS_KEY'] as const)
    if (p[name] === undefined)
      errors.push(
        new SettingsError(name, 'is required with GRPC_SERVER_USE_TLS=true: the server presents a certificate with its private key'),
      );
  if (p.GRPC_CLIENT_TLS_SAN !== undefined && p.GRPC_CLIENT_TLS_CACERT === undefined)
    errors.push(
      new SettingsError(
        'GRPC_CLIENT_TLS_SAN',
        'needs GRPC_CLIENT_TLS_CACERT: without a client CA no client certificate is asked for, so there is no SAN to check',
      ),
    );
  const cert = readPem('GRPC_SERVER_TLS_CERT', p.GRPC_SERVER_TLS_CERT, read, errors, certificatesProblem);
  const key = readPem('GRPC_SERVER_TLS_KEY', p.GRPC_SERVER_TLS_KEY, read, errors, keyProblem);
  readPem('GRPC_CLIENT_TLS_CACERT', p.GRPC_CLIENT_TLS_CACERT, read, errors, certificatesProblem);
  if (cert !== undefined && key !== undefined) {
    const mismatch = pairProblem(cert, key);
    if (mismatch !== undefined)
      errors.push(
        new SettingsError(
          'GRPC_SERVER_TLS_KEY',
          `${JSON.stringify(p.GRPC_SERVER_TLS_KEY)} does not match the certificate of GRPC_SERVER_TLS_CERT: ${mismatch}`,
        ),
      );
  }
  if (errors.length > before || p.GRPC_SERVER_TLS_CERT === undefined || p.GRPC_SERVER_TLS_KEY === undefined) return undefined;
  return {
    certFile: p.GRPC_SERVER_TLS_CERT,
    keyFile: p.GRPC_SERVER_TLS_KEY,
    clientCaFile: p.GRPC_CLIENT_TLS_CACERT,
    clientSan: p.GRPC_CLIENT_TLS_SAN,
    reloadIntervalMs: p.GRPC_SERVER_TLS_RELOAD_INTERVAL,
    unusedCaFile: p.GRPC_SERVER_TLS_CA_CERT,
  };
}
