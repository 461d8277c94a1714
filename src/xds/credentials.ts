import { rootCertificates } from 'node:tls';
import * as grpc from '@grpc/grpc-js';

/**
 * Transport credentials to the xDS management server, as envoyproxy/ratelimit builds them
 * (`CONFIG_GRPC_XDS_SERVER_USE_TLS`, `..._SERVER_TLS_CACERT`, `..._CLIENT_TLS_CERT/_KEY`):
 * plaintext unless TLS is on; with TLS the server is verified against the system roots plus the
 * given CA (upstream appends the CA to the system pool), and a client certificate is presented
 * when one is given (mTLS, as Envoy Gateway configures it).
 */
export interface XdsTlsMaterial {
  /** PEM of the CA(s) that sign the server certificate, added to the system roots. */
  readonly ca: Buffer | undefined;
  /** PEM client certificate chain and its key, both or neither. */
  readonly cert: Buffer | undefined;
  readonly key: Buffer | undefined;
}

/** Credentials for one connection attempt; `tls` undefined means plaintext (the default). */
export function channelCredentials(tls: XdsTlsMaterial | undefined): grpc.ChannelCredentials {
  if (tls === undefined) return grpc.credentials.createInsecure();
  const roots = tls.ca === undefined ? null : Buffer.concat([tls.ca, Buffer.from(`\n${rootCertificates.join('\n')}\n`)]);
  return grpc.credentials.createSsl(roots, tls.key ?? null, tls.cert ?? null);
}
