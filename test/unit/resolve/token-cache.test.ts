import { describe, expect, it } from 'vitest';
import { TokenCache, tokenHash } from '../../../src/resolve/token-cache.js';

describe('TokenCache', () => {
  it('returns a value until its expiry (exclusive), then misses and forgets it', () => {
    const c = new TokenCache(10);
    c.set('h', 'acme', 2000, 1000);
    expect(c.get('h', 1999)).toBe('acme');
    expect(c.get('h', 2000)).toBeUndefined();
    expect(c.size).toBe(0);
  });

  it('does not store an entry that is already expired, or anything when size is 0', () => {
    const c = new TokenCache(10);
    c.set('h', 'acme', 1000, 1000);
    expect(c.size).toBe(0);
    const off = new TokenCache(0);
    off.set('h', 'acme', 5000, 1000);
    expect(off.get('h', 1000)).toBeUndefined();
    expect(off.size).toBe(0);
  });

  it('drops the least recently used entry when full (a hit refreshes recency)', () => {
    const c = new TokenCache(2);
    c.set('a', '1', 9999, 0);
    c.set('b', '2', 9999, 0);
    expect(c.get('a', 1)).toBe('1'); // a is now the most recent
    c.set('c', '3', 9999, 0); // evicts b
    expect(c.get('b', 1)).toBeUndefined();
    expect(c.get('a', 1)).toBe('1');
    expect(c.get('c', 1)).toBe('3');
    expect(c.size).toBe(2);
  });

  it('replacing a key does not evict another one', () => {
    const c = new TokenCache(2);
    c.set('a', '1', 9999, 0);
    c.set('b', '2', 9999, 0);
    c.set('a', '1b', 9999, 0);
    expect(c.get('a', 1)).toBe('1b');
    expect(c.get('b', 1)).toBe('2');
  });
});

describe('tokenHash', () => {
  it('is the base64url SHA-256 of the token and does not contain it', () => {
    expect(tokenHash('abc')).toBe('ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0');
    expect(tokenHash('eyJhbGciOi.x.y')).not.toContain('eyJ');
  });
});
