/**
 * Regression: calls their client cancelled (RST_STREAM) before meshlimit answered were charged.
 *
 * Found by resetting every call right after sending it in full ("1,067 cancelled calls still
 * charged"). With Redis, the requests of one event-loop turn wait for a `setImmediate` before
 * they are sent in one script call; RST_STREAM frames read in that turn mark their calls
 * cancelled before it runs, and the batch now drops those calls unsent (src/backend/redis/
 * batching.ts). Before, the batch sent them all and every one was charged.
 *
 * The attacker writes each call in full and its RST_STREAM right behind it, in the same tick:
 * both reach the server in the same read, the call is handed to the limiter, and the reset is
 * seen before the batch goes out. The attacker first waits for a PING round trip: on a connection
 * whose handshake had only just completed, the first burst's resets reached the server a few
 * milliseconds behind their calls (traced: ten handlers ran, the batch was sent, then came the ten
 * cancellations), and a reset that arrives after the batch was sent is too late for anyone, as
 * for any call already answered.
 *
 * Checked against the code before the fix (9499464): every one of the 100 reset calls was
 * charged (limit_remaining 999,899 instead of 999,999).
 */
import http2 from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootService, type BootedService } from '../support/service.js';
import { startRedis, type RedisInstance } from '../support/redis.js';
import { call, connect, decodeRlsResponse, rlsRequest, sleep, type Conn } from '../support/h2-attacker.js';

const LIMIT = 1_000_000;
const CONFIG = `
domain: rr
descriptors:
  - key: k
    rate_limit: { unit: hour, requests_per_unit: ${LIMIT} }
`;
const HEADERS = {
  ':method': 'POST',
  ':path': '/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit',
  'content-type': 'application/grpc',
  te: 'trailers',
};

let redis: RedisInstance;
let svc: BootedService;

beforeAll(async () => {
  redis = await startRedis();
  svc = await bootService({ files: { 'rr.yaml': CONFIG }, env: { BACKEND_TYPE: 'redis', REDIS_URL: redis.url } });
});

afterAll(async () => {
  await svc?.close();
  await redis?.stop();
});

/** `n` calls on `conn`, each sent in full and reset at once; resolves when all have closed. */
async function sendAndReset(conn: Conn, body: Buffer, n: number): Promise<void> {
  const closed: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const stream = conn.session.request(HEADERS);
    stream.on('error', () => undefined);
    closed.push(new Promise((resolve) => stream.once('close', () => resolve())));
    stream.end(body);
    stream.close(http2.constants.NGHTTP2_CANCEL);
  }
  await Promise.all(closed);
}

describe('calls cancelled by their client before the answer (Redis)', () => {
  it('charge nothing', async () => {
    const body = rlsRequest('rr', [['k', `v-${Date.now()}`]]);
    const conn = connect(svc.handle.grpcPort);
    await conn.settings;
    await new Promise((resolve) => conn.session.ping(resolve));
    for (let round = 0; round < 10; round++) {
      await sendAndReset(conn, body, 10);
      await sleep(20);
    }
    const follower = connect(svc.handle.grpcPort);
    const answer = await call(follower, body);
    expect(answer.status).toBe('0');
    // The follow-up call is the only one charged.
    expect(decodeRlsResponse(answer.message).statuses[0]!.limitRemaining).toBe(LIMIT - 1);
    conn.session.destroy();
    follower.session.destroy();
  });
});
