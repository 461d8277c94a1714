import { describe, expect, it } from 'vitest';
import { OverLimitCache } from '../../../src/limiter/over-limit-cache.js';

describe('OverLimitCache', () => {
  it('remembers a key until its reset, then forgets it', () => {
    const c = new OverLimitCache(10);
    c.add('k', 1000, 500);
    expect(c.remainingMs('k', 1000)).toBe(500);
    expect(c.remainingMs('k', 1499)).toBe(1);
    expect(c.remainingMs('k', 1500)).toBe(0);
    expect(c.size).toBe(0);
  });

  it('is bounded: the oldest entry goes when full', () => {
    const c = new OverLimitCache(2);
    c.add('a', 0, 100);
    c.add('b', 0, 100);
    c.add('c', 0, 100);
    expect([c.remainingMs('a', 0), c.remainingMs('b', 0), c.remainingMs('c', 0)]).toEqual([0, 100, 100]);
    expect(c.size).toBe(2);
  });

  it('does nothing when disabled, and clear() empties it', () => {
    const off = new OverLimitCache(0);
    off.add('a', 0, 100);
    expect(off.enabled).toBe(false);
    expect(off.remainingMs('a', 0)).toBe(0);
    const on = new OverLimitCache(5);
    on.add('a', 0, 100);
    on.clear();
    expect(on.remainingMs('a', 0)).toBe(0);
  });
});
