import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startService } from '../../src/app.js';
import { createRlsClient } from '../../src/client/rls-client.js';
import { loadSettings } from '../../src/settings/index.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { startJwksServer, type JwksServer } from '../integration/resolve/jwks-server.js';
import { AUDIENCE, ISSUER, jwksOf, makeKey, sign, type TestKey } from '../unit/resolve/tokens.js';
import { eventually, metricValue } from '../support/service.js';

/**
 * What broke: right after a restart, valid JWTs were limited as their client address for up to a
 * JWKS cooldown (10 s by default) whenever `jwks_timeout_ms` was shorter than start-up's
 * synchronous work. The first JWKS fetch starts while the resolver is built, and its timeout timer
 * was armed then; start-up then builds fastify and the gRPC server without yielding (about 250 ms
 * on a cold start here), so the timer fired in the first turn of the event loop, before the
 * request was even written: "no answer within N ms" from an issuer that was never contacted,
 * and the cooldown then refused the first tokens' retry. Now the fetch's deadline does not count
 * time this process could not run: a timer that fires late by more than the whole timeout
 * (the loop was blocked) is re-armed instead of failing the fetch.
 *
 * The synchronous start-up work is made deterministic here: the metrics renderer the composition
 * root builds (synchronously, after the resolver started its fetch) busy-waits 600 ms, longer
 * than the 200 ms JWKS timeout.
 */
const TIMEOUT_MS = 200;
const START_UP_WORK_MS = 600;
let jwks: JwksServer;
let key: TestKey;
let dir: string;
beforeAll(async () => {
  key = await makeKey('ES256', 'ec-1');
  jwks = await startJwksServer(jwksOf(key));
  dir = mkdtempSync(path.join(tmpdir(), 'meshlimit-reg-'));
  writeFileSync(
    path.join(dir, 'r.yaml'),
    `domain: r
resolution:
  jwt:
    issuer: ${ISSUER}
    audience: ${AUDIENCE}
    algorithms: [ES256]
    jwks_url: ${jwks.url}
    jwks_timeout_ms: ${TIMEOUT_MS}
    jwks_cooldown_seconds: 600
descriptors:
  - key: company_id
    rate_limit: { unit: minute, requests_per_unit: 100 }
  - key: remote_address
    rate_limit: { unit: minute, requests_per_unit: 100 }
`,
  );
});
afterAll(async () => {
  await jwks?.close();
  rmSync(dir, { recursive: true, force: true });
});

const busyWait = (ms: number): void => {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // start-up's synchronous work, standing in for fastify and gRPC server construction
  }
};

describe('a restart with jwks_timeout_ms shorter than start-up', () => {
  it("verifies a valid token on its first request once /healthcheck is 200 (the JWKS fetch's timer fired before the fetch was sent)", async () => {
    const settings = loadSettings({
      PORT: '0',
      GRPC_PORT: '0',
      HOST: '127.0.0.1',
      GRPC_HOST: '127.0.0.1',
      CONFIG_DIR: dir,
      LOG_LEVEL: 'fatal',
    });
    const handle = await startService(settings, {
      logger: createLogger({ level: 'fatal', format: 'json' }),
      metricsRender: (m) => {
        busyWait(START_UP_WORK_MS);
        return () => m.registry.metrics();
      },
    });
    const http = `http://127.0.0.1:${handle.httpPort}`;
    const rls = createRlsClient(`127.0.0.1:${handle.grpcPort}`);
    try {
      await eventually(async () => (await fetch(`${http}/healthcheck`)).status === 200);
      const token = await sign(key, { company_id: 'acme' }, { exp: Math.floor(Date.now() / 1000) + 600 });
      const r = await rls.shouldRateLimit({
        domain: 'r',
        descriptors: [
          {
            entries: [
              { key: 'authorization', value: `Bearer ${token}` },
              { key: 'remote_address', value: '192.0.2.1' },
            ],
          },
        ],
      });
      expect(r.overallCode).toBe('OK');
      expect(await metricValue(http, 'meshlimit_resolutions_total{domain="r",outcome="verified"}')).toBe(1);
      // Series are created on first use: the fallback and the failed load never happened.
      expect(await metricValue(http, 'meshlimit_resolutions_total{domain="r",outcome="fallback_unknown_key"}')).toBeNaN();
      expect(await metricValue(http, 'meshlimit_jwks_refreshes_total{domain="r",result="failure"}')).toBeNaN();
    } finally {
      rls.close();
      await handle.close();
    }
  });
});
