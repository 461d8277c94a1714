import { describe, expect, it } from 'vitest';
import { LruMap } from '../../src/util/lru.js';

describe('LruMap', () => {
  it('drops the least recently used entry when full; get touches, peek does not', () => {
    const m = new LruMap<string, number>(3);
    m.set('a', 1);
    m.set('b', 2);
    m.set('c', 3);
    expect(m.get('a')).toBe(1); // a is now the newest
    expect(m.peek('b')).toBe(2); // b stays the oldest
    m.set('d', 4);
    expect([m.peek('a'), m.peek('b'), m.peek('c'), m.peek('d')]).toEqual([1, undefined, 3, 4]);
    m.set('c', 30); // an update is a use
    m.set('e', 5);
    expect([m.peek('a'), m.peek('c'), m.peek('d'), m.peek('e')]).toEqual([undefined, 30, 4, 5]);
    expect(m.size).toBe(3);
  });

  it('delete, clear and capacity 0', () => {
    const m = new LruMap<string, number>(2);
    m.set('a', 1);
    m.set('b', 2);
    expect(m.delete('a')).toBe(true);
    expect(m.delete('a')).toBe(false);
    m.set('c', 3);
    m.set('d', 4); // b is the oldest now
    expect([m.peek('b'), m.peek('c'), m.peek('d')]).toEqual([undefined, 3, 4]);
    m.clear();
    expect(m.size).toBe(0);
    m.set('x', 1);
    expect(m.peek('x')).toBe(1);
    const none = new LruMap<string, number>(0);
    none.set('a', 1);
    expect(none.size).toBe(0);
    expect(() => new LruMap(-1)).toThrow('capacity must be an integer >= 0, got -1');
  });

  it('keeps exact order through many evictions (against a reference array)', () => {
    const m = new LruMap<number, number>(50);
    const ref: number[] = []; // oldest first
    let seed = 7;
    const rand = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2147483648) % n;
    for (let i = 0; i < 20_000; i++) {
      const k = rand(120);
      if (rand(3) === 0) {
        const v = m.get(k);
        const at = ref.indexOf(k);
        expect(v !== undefined).toBe(at >= 0);
        if (at >= 0) ref.push(...ref.splice(at, 1));
      } else {
        m.set(k, i);
        const at = ref.indexOf(k);
        if (at >= 0) ref.splice(at, 1);
        else if (ref.length >= 50) ref.shift();
        ref.push(k);
      }
      expect(m.size).toBe(ref.length);
    }
    for (const k of ref) expect(m.peek(k)).toBeDefined();
  });
});
