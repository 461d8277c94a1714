import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRlsClient } from '../../src/client/rls-client.js';
import { bootService, type BootedService } from '../support/service.js';
import { createTestPki, type TestPki } from '../support/tls-pki.js';

/**
 * What broke: GRPC_SERVER_USE_TLS, GRPC_SERVER_TLS_CERT and GRPC_SERVER_TLS_KEY, which Envoy
 * Gateway sets for the rate-limit Deployment it runs (its Envoy then calls over TLS), were not
 * settings at all: the variables were ignored and the port served plaintext, so every call of
 * that Envoy failed its handshake, and nothing at start-up said why. Now the port serves TLS with
 * those files, and plaintext clients are refused.
 */
let pki: TestPki;
let svc: BootedService | undefined;
beforeAll(() => {
  pki = createTestPki();
});
afterAll(async () => {
  await svc?.close();
  pki?.remove();
});

describe('GRPC_SERVER_USE_TLS', () => {
  it("serves gRPC over TLS with Envoy Gateway's variables", async () => {
    svc = await bootService({
      env: { GRPC_SERVER_USE_TLS: 'true', GRPC_SERVER_TLS_CERT: pki.server.cert, GRPC_SERVER_TLS_KEY: pki.server.key },
      files: { 'eg.yaml': 'domain: eg\ndescriptors:\n  - key: k\n    rate_limit: { unit: minute, requests_per_unit: 1 }\n' },
    });
    const tls = createRlsClient(`127.0.0.1:${svc.handle.grpcPort}`, { credentials: grpc.credentials.createSsl(readFileSync(pki.ca)) });
    try {
      const res = await tls.shouldRateLimit({ domain: 'eg', descriptors: [{ entries: [{ key: 'k', value: 'v' }] }] });
      expect(res.overallCode).toBe('OK');
      // bootService's own client speaks plaintext: refused.
      await expect(
        svc.client.shouldRateLimit({ domain: 'eg', descriptors: [{ entries: [{ key: 'k', value: 'v' }] }] }),
      ).rejects.toMatchObject({
        code: grpc.status.UNAVAILABLE,
      });
    } finally {
      tls.close();
    }
  });
});
