import { describe, expect, it } from 'vitest';
import { CallHealth } from '../../../src/backend/redis/call-health.js';
import { replyKind } from '../../../src/backend/redis/errors.js';
import { BackendUnavailableError } from '../../../src/errors.js';

/** A Redis error reply as ioredis rejects with it. */
function replyError(message: string): Error {
  const e = new Error(message);
  e.name = 'ReplyError';
  return e;
}

describe('CallHealth', () => {
  it('silence: calls waiting with no reply at all, measured from the later of the first wait and the last reply', () => {
    let t = 1_000;
    const h = new CallHealth(() => t);
    h.connection(true);
    expect(h.silentFor(t)).toBe(0); // nothing waits
    h.written();
    t += 100;
    h.written();
    expect(h.silentFor(t)).toBe(100);
    t += 50;
    h.replied(false); // a late reply to the first call: alive
    expect(h.silentFor(t)).toBe(0);
    t += 300;
    expect(h.silentFor(t)).toBe(300); // the second still waits, nothing came since
    h.replied(false);
    expect(h.silentFor(t + 10_000)).toBe(0);
  });

  it('counts failed calls in a row, per call; any reply ends the run', () => {
    const h = new CallHealth(() => 0);
    for (let i = 0; i < 3; i++) {
      h.written();
      h.dropped();
    }
    expect(h.consecutiveFailures()).toBe(3);
    h.written();
    h.replied(true); // LOADING: a reply, but a failed call
    expect(h.consecutiveFailures()).toBe(4);
    h.written();
    h.replied(false);
    expect(h.consecutiveFailures()).toBe(0);
  });

  it('not connected yet is not lost: only a connection that was up can be lost', () => {
    const h = new CallHealth(() => 0);
    expect(h.lost()).toBe(false);
    h.connection(false); // a first attempt refused
    expect(h.lost()).toBe(false);
    h.connection(true);
    expect(h.lost()).toBe(false);
    h.connection(false);
    expect(h.lost()).toBe(true);
    h.connection(true);
    expect(h.lost()).toBe(false);
  });

  it('a lost connection forgets the calls that waited on it', () => {
    let t = 0;
    const h = new CallHealth(() => t);
    h.connection(true);
    h.written();
    t = 500;
    h.connection(false);
    expect(h.lost()).toBe(true);
    expect(h.silentFor(t)).toBe(0);
  });

  it('track(): a resolved call is a reply, a Redis error reply too, anything else was dropped', async () => {
    const h = new CallHealth(() => 0);
    await h.track(Promise.resolve(1), replyKind);
    await h
      .track(Promise.reject(replyError('WRONGTYPE Operation against a key holding the wrong kind of value')), replyKind)
      .catch(() => {});
    await Promise.resolve();
    expect(h.consecutiveFailures()).toBe(0);
    await h.track(Promise.reject(replyError('LOADING Redis is loading the dataset in memory')), replyKind).catch(() => {});
    await h.track(Promise.reject(new Error("Stream isn't writeable")), replyKind).catch(() => {});
    await Promise.resolve();
    expect(h.consecutiveFailures()).toBe(2);
  });

  it("replyKind looks through meshlimit's wrapping of a reply", () => {
    const cause = replyError('CLUSTERDOWN The cluster is down');
    expect(replyKind(new BackendUnavailableError('redis: CLUSTERDOWN The cluster is down', { cause }))).toBe('failed_reply');
    expect(replyKind(replyError('NOSCRIPT No matching script'))).toBe('reply');
    expect(replyKind(new BackendUnavailableError('redis unavailable: Command timed out'))).toBe('dropped');
  });
});
