/**
 * Regression: HTTP/2 rapid reset (CVE-2023-44487). A client opening streams and resetting them at
 * once got a GOAWAY only from nghttp2's own rate limit, with INTERNAL_ERROR, after about 1,100 of
 * them (2,001 in the issue's run): max_concurrent_streams bounds nothing when every stream is
 * reset as soon as it is sent.
 *
 * Now each connection may reset GRPC_MAX_RESET_STREAMS (200) streams more than it lets complete;
 * past that it gets GOAWAY ENHANCE_YOUR_CALM `too_many_resets` and is closed.
 *
 * Checked against the code before the fix (9499464): the GOAWAY carried INTERNAL_ERROR (2) and no
 * debug data, and came after the client had sent 1,050 streams.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootService, type BootedService } from '../support/service.js';
import { call, connect, NGHTTP2_ENHANCE_YOUR_CALM, resetFlood, rlsRequest, streamsProcessedBeforeGoaway } from '../support/h2-attacker.js';

const CONFIG = `
domain: d
descriptors:
  - key: k
    rate_limit: { unit: hour, requests_per_unit: 100 }
`;
let svc: BootedService;

beforeAll(async () => {
  svc = await bootService({ files: { 'd.yaml': CONFIG } });
});

afterAll(async () => {
  await svc?.close();
});

describe('a reset flood (HEADERS + RST_STREAM in a loop)', () => {
  it('ends in GOAWAY ENHANCE_YOUR_CALM too_many_resets after about 200 resets; other clients are served', async () => {
    const conn = connect(svc.handle.grpcPort);
    await conn.settings;
    const sent = await resetFlood(conn, { total: 20_000, batch: 10 });
    await conn.done;
    expect(conn.goaway).toEqual({ code: NGHTTP2_ENHANCE_YOUR_CALM, data: 'too_many_resets' });
    // 201 resets and the rest of their batch, as the server counted them (the GOAWAY's last stream
    // id); the client wrote more before the GOAWAY reached it, however many the machine's load let it.
    expect(sent).toBeGreaterThan(200);
    expect(streamsProcessedBeforeGoaway(conn)).toBeGreaterThan(200);
    expect(streamsProcessedBeforeGoaway(conn)).toBeLessThan(300);
    const other = connect(svc.handle.grpcPort);
    expect((await call(other, rlsRequest('d', [['k', 'v']]))).status).toBe('0');
    other.session.destroy();
  });
});
