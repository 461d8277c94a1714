import { describe, expect, it } from 'vitest';
import type { CounterOp } from '../../../src/limiter/types.js';
import { groupBySlot } from '../../../src/backend/redis/cluster-backend.js';
import { crc16, keySlot } from '../../../src/backend/redis/slot.js';
import { counterKey, descriptorTag } from '../../../src/limiter/keys.js';
import { SLOT_VECTORS } from './slot-vectors.js';

describe('Redis Cluster hash slots', () => {
  it('CRC16 is the XMODEM variant of the cluster spec (test vector "123456789" -> 0x31C3)', () => {
    expect(crc16(Buffer.from('123456789'))).toBe(0x31c3);
  });

  it.each(SLOT_VECTORS)('%j -> slot %i', (key, slot) => {
    expect(keySlot(key)).toBe(slot);
  });

  it("every key of one descriptor (keys.ts) shares a slot, whatever the prefix and the limit's identity", () => {
    const tag = descriptorTag('edge', [{ key: 'company_id', value: 'a{b}c:d' }]);
    const slots = ['', 'prod:', 'ü:'].flatMap((prefix) =>
      ['fw:second:1', 'sw:minute:1', 'tb:hour:3'].map((id) => keySlot(counterKey(prefix, tag, id))),
    );
    expect(new Set(slots).size).toBe(1);
    expect(slots[0]).toBe(keySlot(`{${tag}}`));
  });
});

describe('groupBySlot', () => {
  const op = (key: string): CounterOp => ({
    key,
    algorithm: 'fixed_window',
    windowMs: 1_000,
    threshold: 1,
    burst: 1,
    hits: 1,
    enforce: true,
  });

  it('groups ops by slot in order of first appearance, keeping positions and order inside a group', () => {
    const ops = [op('{a}:1'), op('{b}:1'), op('{a}:2'), op('{c}:1'), op('{b}:2'), op('{a}:1')];
    const groups = groupBySlot(ops);
    expect(groups.map((g) => g.indices)).toEqual([[0, 2, 5], [1, 4], [3]]);
    expect(groups[0]!.ops.map((o) => o.key)).toEqual(['{a}:1', '{a}:2', '{a}:1']);
  });

  it('keeps one group for ops on one descriptor (one call, exact like standalone Redis)', () => {
    expect(groupBySlot([op('p{t}:x'), op('p{t}:y'), op('q{t}:z')])).toHaveLength(1);
  });
});
