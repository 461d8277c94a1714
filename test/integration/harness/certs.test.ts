import { X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { makeTestPki } from '../../support/certs.js';

/**
 * The throwaway PKI of the TLS tests, made both ways (openssl, and the Node fallback used where
 * openssl is missing): a CA, a server certificate for the given names only, a client
 * certificate; an mTLS handshake with them succeeds, and the server certificate names nothing
 * else.
 */
describe.each(['openssl', 'node'] as const)('test PKI via %s', (via) => {
  it('gives certificates an mTLS handshake accepts', async () => {
    const pki = makeTestPki({ serverNames: ['xds.meshlimit.test'], via });
    try {
      expect(pki.via).toBe(via);
      const ca = new X509Certificate(pki.read('caCert'));
      const server = new X509Certificate(pki.read('serverCert'));
      expect(ca.ca).toBe(true);
      expect(server.verify(ca.publicKey)).toBe(true);
      expect(server.checkHost('xds.meshlimit.test')).toBe('xds.meshlimit.test');
      expect(server.checkIP('127.0.0.1')).toBeUndefined();
      expect(new X509Certificate(pki.read('clientCert')).verify(ca.publicKey)).toBe(true);

      const srv = tls.createServer(
        { key: pki.read('serverKey'), cert: pki.read('serverCert'), ca: pki.read('caCert'), requestCert: true, rejectUnauthorized: true },
        (socket) => socket.end(String(socket.getPeerCertificate().subject.CN)),
      );
      await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
      try {
        const peer = await new Promise<string>((resolve, reject) => {
          const c = tls.connect({
            port: (srv.address() as AddressInfo).port,
            host: '127.0.0.1',
            servername: 'xds.meshlimit.test',
            ca: pki.read('caCert'),
            key: pki.read('clientKey'),
            cert: pki.read('clientCert'),
          });
          let data = '';
          c.on('data', (d: Buffer) => (data += d.toString()));
          c.on('end', () => resolve(data));
          c.on('error', reject);
        });
        expect(peer).toBe('meshlimit test client');
      } finally {
        srv.close();
      }
    } finally {
      pki.remove();
    }
  });
});
