import { describe, expect, it } from 'vitest';
import { notConnectedReminder, REMINDER_FIRST_MS, REMINDER_MAX_MS } from '../../src/lifecycle.js';
import type { Backend } from '../../src/limiter/ports.js';
import type { Logger } from '../../src/telemetry/logger.js';

/**
 * While Redis stays unconnected the reason is logged again after 5 s, then 10, 20, 40 s, then
 * every minute (bounded: never a line per second), and nothing once it connects. Driven by a
 * clock moved by hand, ticked once a second as the lifecycle's timer does.
 */
describe('the not-connected reminder', () => {
  it('repeats the reason at doubling intervals up to a minute, and stops when Redis connects', () => {
    let now = 0;
    let why: string | undefined = 'Redis at REDIS_URL=127.0.0.1:1 is not connected: connection refused (...); check ...';
    const lines: { obj: Record<string, unknown>; msg: string }[] = [];
    const logger = { warn: (obj: Record<string, unknown>, msg: string) => lines.push({ obj, msg }) } as unknown as Logger;
    const stack = () => ({ backend: {} as Backend, storesConnected: () => why === undefined, whyNotConnected: () => why });
    const tick = notConnectedReminder({ stack, logger }, () => now);
    const at: number[] = [];
    for (now = 0; now <= 300_000; now += 1000) {
      const before = lines.length;
      tick();
      if (lines.length > before) at.push(now / 1000);
    }
    expect(REMINDER_FIRST_MS).toBe(5_000);
    expect(REMINDER_MAX_MS).toBe(60_000);
    expect(at).toEqual([5, 15, 35, 75, 135, 195, 255]);
    expect(lines[0]).toEqual({
      obj: { redis: why, downForS: 5, nextReminderInS: 10 },
      msg: 'Redis is still not connected; answering by FAILURE_POLICY',
    });
    why = undefined;
    const count = lines.length;
    for (; now <= 600_000; now += 1000) tick();
    expect(lines).toHaveLength(count);
  });
});
