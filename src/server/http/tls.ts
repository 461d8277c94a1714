import type { Server as HttpsServer, ServerOptions as HttpsOptions } from 'node:https';
import type * as grpc from '@grpc/grpc-js';
import { TlsFileWatcher, type GrpcTlsOptions, type TlsMaterial } from '../grpc/tls.js';

/**
 * HTTPS on the HTTP port (ADMIN_TLS_*, src/settings/admin-tls.ts) with the same file watcher as
 * the gRPC port (../grpc/tls.ts: a set is used only once it checks out, a bad one is reported
 * once and the previous stays). A new set is applied with Node's `Server.setSecureContext`, which
 * applies to handshakes from then on: open keep-alive connections keep their session.
 */
export interface AdminHttps {
  /** Node's https options for the first set (fastify's `https`). */
  readonly options: HttpsOptions;
  /** Applies each later set to the listening server; returns the unsubscribe (the watcher then stops). */
  follow(server: HttpsServer): () => void;
}

/** The HTTP port's files and reload interval: the gRPC port's options without its client SAN check. */
export type AdminHttpsOptions = Omit<GrpcTlsOptions, 'clientSan'>;

export function createAdminHttps(o: AdminHttpsOptions): AdminHttps {
  const watcher = new TlsFileWatcher({
    certFile: o.certFile,
    keyFile: o.keyFile,
    caFile: o.clientCaFile,
    reloadIntervalMs: o.reloadIntervalMs,
    onReload: o.onReload,
    settings: { cert: 'ADMIN_TLS_CERT', key: 'ADMIN_TLS_KEY', ca: 'ADMIN_TLS_CLIENT_CACERT' },
  });
  const mtls = o.clientCaFile !== undefined;
  const context = (m: TlsMaterial): HttpsOptions => ({
    cert: m.cert,
    key: m.key,
    ...(mtls ? { ca: m.ca, requestCert: true, rejectUnauthorized: true } : {}),
  });
  return {
    options: context(watcher.material),
    follow(server) {
      // The watcher tells the CA before the identity on a change, and the identity on every change.
      let ca = watcher.material.ca;
      const onCa: grpc.experimental.CaCertificateUpdateListener = (u) => {
        if (u !== null) ca = u.caCertificate;
      };
      const onIdentity: grpc.experimental.IdentityCertificateUpdateListener = (u) => {
        if (u === null) return;
        // requestCert and rejectUnauthorized are the server's options and stay; the context has the files.
        server.setSecureContext({ cert: u.certificate, key: u.privateKey, ...(mtls ? { ca } : {}) });
      };
      if (mtls) watcher.addCaCertificateListener(onCa);
      watcher.addIdentityCertificateListener(onIdentity);
      return () => {
        watcher.removeIdentityCertificateListener(onIdentity);
        if (mtls) watcher.removeCaCertificateListener(onCa);
        watcher.close();
      };
    },
  };
}
