/**
 * Regression: the gRPC server answered PINGs however fast they came (grpc-js enforces no ping
 * policy), so a client could keep it busy with a PING flood at no cost of its own.
 *
 * Now, as grpc-go's keepalive EnforcementPolicy: a PING sooner than GRPC_PERMIT_KEEPALIVE_TIME
 * (10s) after the previous one, with no call in between, is a strike, and the connection that
 * collects more than GRPC_MAX_PING_STRIKES (2) gets GOAWAY ENHANCE_YOUR_CALM `too_many_pings`.
 *
 * Checked against the code before the fix (9499464): all 50 PINGs were answered and the
 * connection stayed open.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootService, type BootedService } from '../support/service.js';
import { connect, NGHTTP2_ENHANCE_YOUR_CALM, type Conn } from '../support/h2-attacker.js';

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

const ping = (c: Conn): Promise<boolean> =>
  new Promise((resolve) => {
    if (c.session.destroyed || c.session.closed) resolve(false);
    else c.session.ping((err) => resolve(err === null));
  });

describe('a PING flood', () => {
  it('ends in GOAWAY ENHANCE_YOUR_CALM too_many_pings after the third strike', async () => {
    const conn = connect(svc.handle.grpcPort);
    await conn.settings;
    let answered = 0;
    for (let i = 0; i < 50; i++) if (await ping(conn)) answered++;
    expect(answered).toBeLessThanOrEqual(4);
    expect(conn.goaway).toEqual({ code: NGHTTP2_ENHANCE_YOUR_CALM, data: 'too_many_pings' });
    conn.session.destroy();
  });
});
