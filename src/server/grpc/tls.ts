/**
 * TLS on the gRPC port (GRPC_SERVER_USE_TLS, GRPC_SERVER_TLS_CERT/_KEY, GRPC_CLIENT_TLS_CACERT,
 * GRPC_CLIENT_TLS_SAN), with the certificate files re-read while serving.
 *
 * How a rotated certificate gets in without dropping anything: grpc-js's experimental (and
 * exported) certificate-provider API. {@link TlsFileWatcher} implements
 * `experimental.CertificateProvider`; `experimental.createCertificateProviderServerCredentials`
 * subscribes to it when the port is bound and, on each update, calls Node's
 * `Http2SecureServer.setSecureContext`, which applies to handshakes from then on: established
 * connections, and the calls on them, keep the TLS session they started with
 * (test/e2e/envoy-gateway.test.ts keeps calling across a rotation). No private field of grpc-js
 * is read for this.
 *
 * Why not grpc-js's own `FileWatcherCertificateProvider`: it reads the certificate and the key
 * separately and hands on whatever it read. A Kubernetes Secret update swaps a `..data` symlink
 * between the two reads now and then (a new certificate with the old key), and a file that is
 * briefly missing or malformed makes grpc-js's secure context fail; grpc-js then refuses every
 * new connection until the next good read. Here a new set is used only once it checks out (every
 * certificate parses, the key matches the certificate, the CA parses: OpenSSL's own checks, as a
 * handshake makes them); a set that does not is read once more 100 ms later (the tail of a
 * symlink swap), and if it still does not, it is reported once (logged and counted by the
 * caller's `onReload`) and the previous set stays in force until the files change again.
 *
 * Client SAN (GRPC_CLIENT_TLS_SAN): Node's TLS server has no hook to check a client certificate's
 * names during the handshake, so the check runs once per connection, right after it
 * ({@link clientSanCheck}, applied by the transport guard on `secureConnection`), and a client
 * without the name is disconnected before a stream is read. Upstream fails the handshake itself;
 * for the client both end the connection before any call. Names are matched as OpenSSL matches
 * a server name (`X509Certificate.checkHost`, wildcards included) against the subjectAltName
 * only, as Go's `x509.Certificate.Verify` with a `DNSName` does; an IP address against IP SANs.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import type { TLSSocket } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { TlsReloadEvent } from '../../telemetry/events.js';
import { certificatesProblem, digest, keyProblem, leafIdentity, pairProblem } from '../../util/pem.js';

/** The files of one TLS listener. */
export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  /** Client certificates are required and verified against this CA bundle when set. */
  readonly caFile?: string | undefined;
}

/** The settings that name a listener's files, for its error messages. */
export interface TlsSettingNames {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

/** The gRPC port's (the default). */
export const GRPC_TLS_SETTINGS: TlsSettingNames = {
  cert: 'GRPC_SERVER_TLS_CERT',
  key: 'GRPC_SERVER_TLS_KEY',
  ca: 'GRPC_CLIENT_TLS_CACERT',
};

export interface TlsWatcherOptions extends TlsFiles {
  /** Named in errors (default {@link GRPC_TLS_SETTINGS}). */
  readonly settings?: TlsSettingNames | undefined;
  /** How often the files are re-read (GRPC_SERVER_TLS_RELOAD_INTERVAL, ADMIN_TLS_RELOAD_INTERVAL). */
  readonly reloadIntervalMs: number;
  /** Each applied or rejected change (for a log line and a counter); must not throw. */
  readonly onReload?: ((event: TlsReloadEvent) => void) | undefined;
}

/** One consistent set of PEM bytes. */
export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer | undefined;
}

/** How long to wait before the second read of a set that did not check out (a symlink swap's tail). */
const SECOND_READ_MS = 100;

/**
 * Reads a listener's TLS files, checks them, and publishes each new set that checks out to
 * grpc-js (see the module comment). Created from files the settings already checked; throws if
 * they no longer check out at that moment.
 */
export class TlsFileWatcher implements grpc.experimental.CertificateProvider {
  private current: TlsMaterial;
  /** Digest of the set reported as rejected last: a bad set is reported once, not at every poll. */
  private rejected: string | undefined;
  private readonly identityListeners = new Set<grpc.experimental.IdentityCertificateUpdateListener>();
  private readonly caListeners = new Set<grpc.experimental.CaCertificateUpdateListener>();
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly options: TlsWatcherOptions) {
    const first: TlsMaterial = {
      cert: readFileSync(options.certFile),
      key: readFileSync(options.keyFile),
      ca: options.caFile === undefined ? undefined : readFileSync(options.caFile),
    };
    const wrong = this.problem(first);
    if (wrong !== undefined) throw new Error(`TLS files: ${wrong}`);
    this.current = first;
  }

  /** The set in force: what a listener starts with (later sets reach it through the listeners). */
  get material(): TlsMaterial {
    return this.current;
  }

  private get names(): TlsSettingNames {
    return this.options.settings ?? GRPC_TLS_SETTINGS;
  }

  /** The serial and SHA-256 fingerprint of the certificate in force (logs, tests). */
  get identity(): { readonly serial: string; readonly fingerprint256: string } | undefined {
    return leafIdentity(this.current.cert.toString('utf8'));
  }

  addIdentityCertificateListener(listener: grpc.experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.add(listener);
    // Not synchronously: grpc-js registers its own watcher after subscribing here, and would miss it.
    process.nextTick(() => listener({ certificate: this.current.cert, privateKey: this.current.key }));
    this.startPolling();
  }

  removeIdentityCertificateListener(listener: grpc.experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.delete(listener);
    this.maybeStopPolling();
  }

  addCaCertificateListener(listener: grpc.experimental.CaCertificateUpdateListener): void {
    this.caListeners.add(listener);
    // Subscribed only when the watcher has a CA file (see tlsServerCredentials).
    process.nextTick(() => listener(this.current.ca === undefined ? null : { caCertificate: this.current.ca }));
    this.startPolling();
  }

  removeCaCertificateListener(listener: grpc.experimental.CaCertificateUpdateListener): void {
    this.caListeners.delete(listener);
    this.maybeStopPolling();
  }

  /**
   * Re-reads the files now and applies them if they changed and check out. Resolves when done;
   * never rejects. Concurrent calls share one read.
   */
  check(): Promise<void> {
    this.checking ??= this.readAndApply().finally(() => (this.checking = undefined));
    return this.checking;
  }

  /** Stops polling; listeners get nothing more. Idempotent. */
  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private startPolling(): void {
    if (this.timer !== undefined || this.closed) return;
    this.timer = setInterval(() => void this.check(), this.options.reloadIntervalMs);
    this.timer.unref();
  }

  private maybeStopPolling(): void {
    if (this.identityListeners.size > 0 || this.caListeners.size > 0) return;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async readAndApply(): Promise<void> {
    let next = await this.read();
    if (typeof next !== 'string' && this.same(next)) return;
    let wrong = typeof next === 'string' ? next : this.problem(next);
    if (wrong !== undefined) {
      // Perhaps read in the middle of a Secret's symlink swap: once more, a moment later.
      await new Promise((r) => setTimeout(r, SECOND_READ_MS));
      next = await this.read();
      if (typeof next !== 'string' && this.same(next)) return;
      wrong = typeof next === 'string' ? next : this.problem(next);
    }
    if (this.closed) return;
    if (wrong !== undefined || typeof next === 'string') {
      const seen = typeof next === 'string' ? next : digest(next.cert, next.key, next.ca ?? '');
      if (this.rejected === seen) return;
      this.rejected = seen;
      this.report({ result: 'rejected', reason: wrong ?? String(next) });
      return;
    }
    this.rejected = undefined;
    const caChanged = !buffersEqual(next.ca, this.current.ca);
    this.current = next;
    const update = { certificate: next.cert, privateKey: next.key };
    if (caChanged && next.ca !== undefined) for (const l of this.caListeners) l({ caCertificate: next.ca });
    for (const l of this.identityListeners) l(update);
    const id = this.identity;
    this.report({ result: 'applied', serial: id?.serial ?? '', fingerprint256: id?.fingerprint256 ?? '' });
  }

  /** The three files, or why they could not be read. */
  private async read(): Promise<TlsMaterial | string> {
    const { certFile, keyFile, caFile } = this.options;
    const one = (path: string, setting: string): Promise<Buffer> =>
      readFile(path).catch((err: unknown) => {
        throw new Error(`${setting} ${JSON.stringify(path)} cannot be read: ${err instanceof Error ? err.message : String(err)}`);
      });
    try {
      const [cert, key, ca] = await Promise.all([
        one(certFile, this.names.cert),
        one(keyFile, this.names.key),
        caFile === undefined ? undefined : one(caFile, this.names.ca),
      ]);
      return { cert, key, ca };
    } catch (err) {
      return (err as Error).message;
    }
  }

  private same(m: TlsMaterial): boolean {
    return m.cert.equals(this.current.cert) && m.key.equals(this.current.key) && buffersEqual(m.ca, this.current.ca);
  }

  /** What is wrong with a set, naming the setting and its file; undefined when it can be served. */
  private problem(m: TlsMaterial): string | undefined {
    const { certFile, keyFile, caFile } = this.options;
    const names = this.names;
    const cert = m.cert.toString('utf8');
    const key = m.key.toString('utf8');
    const certWrong = certificatesProblem(cert);
    if (certWrong !== undefined) return `${names.cert} ${JSON.stringify(certFile)} ${certWrong}`;
    const keyWrong = keyProblem(key);
    if (keyWrong !== undefined) return `${names.key} ${JSON.stringify(keyFile)} ${keyWrong}`;
    const pair = pairProblem(cert, key);
    if (pair !== undefined) return `${names.key} ${JSON.stringify(keyFile)} does not match the certificate of ${names.cert}: ${pair}`;
    if (m.ca !== undefined) {
      const caWrong = certificatesProblem(m.ca.toString('utf8'));
      if (caWrong !== undefined) return `${names.ca} ${JSON.stringify(caFile)} ${caWrong}`;
    }
    return undefined;
  }

  private report(event: TlsReloadEvent): void {
    try {
      this.options.onReload?.(event);
    } catch {
      // reporting must never stop the watcher
    }
  }
}

function buffersEqual(a: Buffer | undefined, b: Buffer | undefined): boolean {
  return a === undefined || b === undefined ? a === b : a.equals(b);
}

/**
 * The server credentials for a watcher: TLS with its certificate, and with `requireClientCert`
 * client certificates requested, required and verified against its CA (Node's `requestCert` and
 * `rejectUnauthorized`).
 *
 * grpc-js 1.14's `createCertificateProviderServerCredentials` declares its parameters as
 * `(caCertificateProvider, identityCertificateProvider, ...)` but passes them on as
 * `(identity, ca)`: its first argument is the identity provider, as used here.
 * test/integration/grpc/tls.test.ts handshakes through it with and without a client CA, so a
 * grpc-js that changes the order fails there, not in production.
 */
export function tlsServerCredentials(watcher: TlsFileWatcher, requireClientCert: boolean): grpc.ServerCredentials {
  return grpc.experimental.createCertificateProviderServerCredentials(watcher, requireClientCert ? watcher : null, requireClientCert);
}

/**
 * GRPC_CLIENT_TLS_SAN: whether a connection's (already verified) client certificate carries
 * `name` in its subjectAltName: a DNS name as a server name is matched (wildcards included, the
 * subject CN never), an IP address against the IP entries. Runs once per connection.
 */
export function clientSanCheck(name: string): (socket: TLSSocket) => boolean {
  const ip = isIP(name) !== 0;
  return (socket) => {
    const raw = socket.getPeerCertificate().raw as Buffer | undefined;
    if (raw === undefined) return false;
    try {
      const cert = new X509Certificate(raw);
      return (ip ? cert.checkIP(name) : cert.checkHost(name, { subject: 'never' })) !== undefined;
    } catch {
      return false;
    }
  };
}

/** The gRPC port's TLS, built once by the composition and handed to the server. */
export interface GrpcTls {
  readonly credentials: grpc.ServerCredentials;
  /** Set with GRPC_CLIENT_TLS_SAN: connections whose client certificate lacks the name are closed. */
  readonly acceptPeer: ((socket: TLSSocket) => boolean) | undefined;
  readonly watcher: TlsFileWatcher;
}

export interface GrpcTlsOptions {
  readonly certFile: string;
  readonly keyFile: string;
  readonly clientCaFile: string | undefined;
  readonly clientSan: string | undefined;
  readonly reloadIntervalMs: number;
  readonly onReload?: ((event: TlsReloadEvent) => void) | undefined;
}

export function createGrpcTls(o: GrpcTlsOptions): GrpcTls {
  const watcher = new TlsFileWatcher({
    certFile: o.certFile,
    keyFile: o.keyFile,
    caFile: o.clientCaFile,
    reloadIntervalMs: o.reloadIntervalMs,
    onReload: o.onReload,
  });
  return {
    watcher,
    credentials: tlsServerCredentials(watcher, o.clientCaFile !== undefined),
    acceptPeer: o.clientSan === undefined ? undefined : clientSanCheck(o.clientSan),
  };
}
