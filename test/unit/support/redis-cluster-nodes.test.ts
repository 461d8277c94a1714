/**
 * The cluster harness's reading of `CLUSTER NODES` (test/support/redis-cluster-nodes.ts): what
 * start-up, failover and slot migration decide on. The harness itself is tested against real
 * servers in test/integration/harness.
 */
import { describe, expect, it } from 'vitest';
import { flaggedFailing, parseClusterNodes, servesSlot } from '../../support/redis-cluster-nodes.js';

// Redis 7 format: id addr@bus[,hostname] flags primary ping-sent pong-recv epoch link slots...
const NODES = [
  '07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@40004 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected',
  '67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@40002,host-2 master,fail? - 0 1426238316232 2 connected 5462-10922 5461',
  'e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460 10923-16383 [5461->-67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1] [93-<-292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f]',
  '',
].join('\n');

describe('parseClusterNodes', () => {
  it('reads port, flags, followed primary and slot ranges, skipping migration markers and blank lines', () => {
    expect(parseClusterNodes(NODES)).toEqual([
      {
        id: '07c37dfeb235213a872192d90877d0cd55635b91',
        port: 30004,
        flags: ['slave'],
        primaryId: 'e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca',
        slots: [],
      },
      {
        id: '67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1',
        port: 30002,
        flags: ['master', 'fail?'],
        primaryId: null,
        slots: [
          [5462, 10922],
          [5461, 5461],
        ],
      },
      {
        id: 'e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca',
        port: 30001,
        flags: ['myself', 'master'],
        primaryId: null,
        slots: [
          [0, 5460],
          [10923, 16383],
        ],
      },
    ]);
  });

  it('tells which line serves a slot and which is flagged as failing', () => {
    const [replica, failing, me] = parseClusterNodes(NODES);
    expect(servesSlot(me!, 0)).toBe(true);
    expect(servesSlot(me!, 16383)).toBe(true);
    expect(servesSlot(me!, 5461)).toBe(false); // only MIGRATING there: the owner is still 30002
    expect(servesSlot(failing!, 5461)).toBe(true);
    expect(servesSlot(replica!, 0)).toBe(false);
    expect([replica, failing, me].map((l) => flaggedFailing(l!))).toEqual([false, true, false]);
  });
});
