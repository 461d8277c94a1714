import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  counterKey,
  descriptorTag,
  limitIdentity,
  MAX_CACHED_DESCRIPTOR_CHARS,
  MAX_CACHED_DESCRIPTOR_ENTRIES,
  TagCache,
} from '../../../src/limiter/keys.js';

/** Cluster slot of a key, per the Redis Cluster spec (CRC16/XMODEM of the hash tag). */
function crc16(buf: Buffer): number {
  let crc = 0;
  for (const byte of buf) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}
function hashTagOf(key: string): string {
  const open = key.indexOf('{');
  if (open < 0) return key;
  const close = key.indexOf('}', open + 1);
  if (close < 0 || close === open + 1) return key;
  return key.slice(open + 1, close);
}
const slot = (key: string) => crc16(Buffer.from(hashTagOf(key))) % 16384;

describe('counter keys', () => {
  it('puts every limit of one descriptor on one cluster slot', () => {
    const tag = descriptorTag('edge', [{ key: 'company_id', value: '42' }]);
    const keys = ['fw', 'sw', 'tb'].map((a) => counterKey('ml:', tag, `${a}:second:1`));
    expect(new Set(keys.map(slot)).size).toBe(1);
  });

  it('cannot be broken or made to collide by descriptor values (property)', () => {
    const entry = fc.record({ key: fc.string({ minLength: 1 }), value: fc.string() });
    fc.assert(
      fc.property(
        fc.string(),
        fc.array(entry, { minLength: 1, maxLength: 4 }),
        fc.string(),
        fc.array(entry, { minLength: 1, maxLength: 4 }),
        (d1, e1, d2, e2) => {
          const k1 = counterKey('p:', descriptorTag(d1, e1), 'fw:minute:1');
          const k2 = counterKey('p:', descriptorTag(d2, e2), 'fw:minute:1');
          const same = d1 === d2 && JSON.stringify(e1) === JSON.stringify(e2);
          expect(k1 === k2).toBe(same);
          // the hash tag is exactly the digest: values never reach the key
          expect(hashTagOf(k1)).toMatch(/^[A-Za-z0-9_-]{22}$/);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('keeps hostile values out of the key: braces, colons, separators that would shift boundaries', () => {
    const a = descriptorTag('d', [{ key: 'a', value: 'b|1:c=d' }]);
    const b = descriptorTag('d', [
      { key: 'a', value: 'b' },
      { key: 'c', value: 'd' },
    ]);
    const c = descriptorTag('d', [{ key: 'a', value: '}{x}' }]);
    expect(new Set([a, b, c]).size).toBe(3);
    expect(counterKey('', c, 'fw:second:1')).toMatch(/^\{[A-Za-z0-9_-]{22}\}:fw:second:1$/);
  });

  it('bounds key size whatever the value size (a 4 MiB value)', () => {
    const huge = 'x'.repeat(4 * 1024 * 1024);
    const key = counterKey('prefix:', descriptorTag('d', [{ key: 'k', value: huge }]), limitIdentity('token_bucket', 'minute', 1));
    expect(key.length).toBeLessThan(64);
  });

  it('leaves the threshold out of the counter identity', () => {
    expect(limitIdentity('fixed_window', 'minute', 1)).toBe('fw:minute:1');
    expect(limitIdentity('sliding_window', 'second', 30)).toBe('sw:second:30');
    expect(limitIdentity('token_bucket', 'hour', 1)).toBe('tb:hour:1');
  });
});

describe('TagCache', () => {
  const one = (value: string) => [{ key: 'k', value }];

  it('keeps at most two generations and promotes a hit from the old one', () => {
    const c = new TagCache(2);
    c.set('d', one('a'), 'A');
    c.set('d', one('b'), 'B');
    c.set('d', one('c'), 'C'); // young {a,b} becomes old; young {c}
    expect(c.size).toBe(3);
    expect(c.get('d', one('a'))).toBe('A'); // promoted into young {c,a}
    c.set('d', one('d'), 'D'); // young {c,a} full: old = {c,a}, b is dropped; young {d}
    expect(c.get('d', one('b'))).toBeUndefined();
    expect(c.get('d', one('a'))).toBe('A');
    expect(c.get('d', one('c'))).toBe('C');
    expect(c.size).toBeLessThanOrEqual(4);
  });

  it('tells apart paths that share a prefix or would join to the same string', () => {
    const c = new TagCache(100);
    const paths: [string, { key: string; value: string }[]][] = [
      ['d', [{ key: 'a', value: 'b' }]],
      [
        'd',
        [
          { key: 'a', value: 'b' },
          { key: 'c', value: 'd' },
        ],
      ],
      [
        'd',
        [
          { key: 'a', value: 'bc' },
          { key: 'd', value: '' },
        ],
      ],
      ['d', [{ key: 'ab', value: '' }]],
      ['da', [{ key: '', value: 'b' }]],
      ['d', []],
      ['', [{ key: 'd', value: 'a' }]],
    ];
    paths.forEach(([domain, entries], i) => c.set(domain, entries, `T${i}`));
    expect(c.size).toBe(paths.length);
    paths.forEach(([domain, entries], i) =>
      expect(
        c.get(
          domain,
          entries.map((e) => ({ ...e })),
        ),
      ).toBe(`T${i}`),
    );
    expect(c.get('d', [{ key: 'a', value: 'x' }])).toBeUndefined();
    expect(
      c.get('d', [
        { key: 'a', value: 'b' },
        { key: 'c', value: 'e' },
      ]),
    ).toBeUndefined();
    // Setting a path again replaces its tag without counting it twice.
    c.set('d', [{ key: 'a', value: 'b' }], 'again');
    expect(c.get('d', [{ key: 'a', value: 'b' }])).toBe('again');
    expect(c.size).toBe(paths.length);
  });

  it('never stores a descriptor longer than MAX_CACHED_DESCRIPTOR_CHARS or with more than MAX_CACHED_DESCRIPTOR_ENTRIES entries', () => {
    const c = new TagCache(100);
    const fits = 'v'.repeat(MAX_CACHED_DESCRIPTOR_CHARS - 2); // + domain 'd' + key 'k'
    expect(c.set('d', one(fits), 'A')).toBe('A');
    expect(c.get('d', one(fits))).toBe('A');
    const bytes = c.bytes;
    expect(c.set('d', one(`${fits}w`), 'B')).toBe('B'); // one unit over: returned, not stored
    expect(c.get('d', one(`${fits}w`))).toBeUndefined();
    expect(c.set('d', one('x'.repeat(1_000_000)), 'C')).toBe('C');
    const many = Array.from({ length: MAX_CACHED_DESCRIPTOR_ENTRIES + 1 }, () => ({ key: '', value: '' }));
    expect(c.set('d', many, 'D')).toBe('D');
    expect(c.get('d', many)).toBeUndefined();
    expect(c.set('d', many.slice(1), 'E')).toBe('E');
    expect(c.get('d', many.slice(1))).toBe('E');
    expect(c.size).toBe(2);
    expect(c.bytes).toBeGreaterThan(bytes);
  });

  it('starts a new generation when the young one reaches its byte budget, so both stay within 2 x (budget + one path)', () => {
    const budget = 20_000;
    const c = new TagCache(1_000_000, budget);
    let maxBytes = 0;
    let pathBytes = 0;
    for (let i = 0; i < 2_000; i++) {
      const before = c.bytes;
      c.set('d', one(`${i}`.padEnd(400, '.')), `T${i}`);
      pathBytes = Math.max(pathBytes, c.bytes - before);
      maxBytes = Math.max(maxBytes, c.bytes);
    }
    expect(pathBytes).toBeGreaterThan(800); // the 400-unit value is counted at 2 bytes per unit
    expect(maxBytes).toBeLessThanOrEqual(2 * (budget + pathBytes));
    expect(c.size).toBeLessThan(100); // bytes, not the count, bounded it
    // The newest descriptors are still there, the oldest were dropped with their generation.
    expect(c.get('d', one('1999'.padEnd(400, '.')))).toBe('T1999');
    expect(c.get('d', one('0'.padEnd(400, '.')))).toBeUndefined();
  });

  it('gives descriptorTag the same tag on a cache hit as on a miss', () => {
    const entries = [{ key: 'remote_address', value: '203.0.113.9' }];
    const first = descriptorTag('edge', entries);
    for (let i = 0; i < 3; i++) expect(descriptorTag('edge', [{ ...entries[0]! }])).toBe(first);
    // thousands of other descriptors in between push the first out of the cache, same answer
    for (let i = 0; i < 40_000; i++) descriptorTag('edge', [{ key: 'remote_address', value: `10.0.${i >> 8}.${i & 255}` }]);
    expect(descriptorTag('edge', entries)).toBe(first);
  });
});
