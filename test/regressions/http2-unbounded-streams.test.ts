/**
 * Regression: the gRPC server advertised 4,294,967,295 concurrent streams and never timed out a
 * stream whose request did not finish: 50,000 open streams on one connection took the service
 * from 87 to 465 MB RSS (about 7.6 KB each), not released after the client left.
 *
 * Now a connection may hold GRPC_MAX_CONCURRENT_STREAMS (256) streams, advertised in its
 * SETTINGS, nghttp2 refuses the ones beyond, and a stream whose request has not completed after
 * GRPC_STREAM_TIMEOUT_MS is reset (src/server/grpc/transport-guard.ts).
 *
 * Checked against the code before the fix (9499464): its SETTINGS said 4294967295, and all 1,000
 * streams were accepted and still open when the test gave up.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootService, eventually, type BootedService } from '../support/service.js';
import { connect, NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM, openIncomplete, StreamTally } from '../support/h2-attacker.js';

const CONFIG = `
domain: d
descriptors:
  - key: k
    rate_limit: { unit: hour, requests_per_unit: 100 }
`;
let svc: BootedService;

beforeAll(async () => {
  svc = await bootService({ files: { 'd.yaml': CONFIG }, env: { GRPC_STREAM_TIMEOUT_MS: '300' } });
});

afterAll(async () => {
  await svc?.close();
});

describe('incomplete streams', () => {
  it('one connection holds at most 256 of them, and each is reset once its request is overdue', async () => {
    // 1,000 streams sent at once, before the server's SETTINGS can reach the client.
    const conn = connect(svc.handle.grpcPort, { peerMaxConcurrentStreams: 1000 });
    const tally = new StreamTally();
    openIncomplete(conn, 1000, tally);
    expect((await conn.settings).maxConcurrentStreams).toBe(256);
    await eventually(async () => tally.count(NGHTTP2_REFUSED_STREAM) === 744 && tally.count(NGHTTP2_CANCEL) === 256, 5000, 20);
    conn.session.destroy();
  });
});
