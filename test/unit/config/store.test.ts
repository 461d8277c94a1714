import { describe, expect, it } from 'vitest';
import { ConfigStore } from '../../../src/config/store.js';
import { compileText } from './helpers.js';

describe('ConfigStore', () => {
  const a = compileText('domain: a\n');
  const b = compileText('domain: b\n');

  it('holds the current snapshot and swaps it', () => {
    const store = new ConfigStore(a);
    expect(store.current()).toBe(a);
    expect(store.swap(b)).toBe(a);
    expect(store.current()).toBe(b);
  });

  it('notifies listeners with next and previous; unsubscribe stops notifications', () => {
    const store = new ConfigStore(a);
    const seen: string[] = [];
    const off = store.onChange((next, prev) => seen.push(`${prev.domainNames[0]}->${next.domainNames[0]}`));
    store.swap(b);
    off();
    store.swap(a);
    expect(seen).toEqual(['a->b']);
  });

  it('a throwing listener does not stop the swap or the other listeners', () => {
    const errors: unknown[] = [];
    const store = new ConfigStore(a, { onListenerError: (err) => errors.push(err) });
    const seen: string[] = [];
    store.onChange(() => {
      throw new Error('boom');
    });
    store.onChange((next) => seen.push(next.domainNames[0]!));
    store.swap(b);
    expect(store.current()).toBe(b);
    expect(seen).toEqual(['b']);
    expect(errors.map((e) => (e as Error).message)).toEqual(['boom']);
  });

  it('a reader keeps the snapshot it read for its whole evaluation', () => {
    const store = new ConfigStore(a);
    const held = store.current();
    store.swap(b);
    expect(held.hasDomain('a')).toBe(true);
    expect(store.current().hasDomain('a')).toBe(false);
  });
});
