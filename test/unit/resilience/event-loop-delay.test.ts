import { describe, expect, it } from 'vitest';
import { EventLoopDelay } from '../../../src/backend/resilience/event-loop-delay.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
function block(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // a synchronous turn: the loop cannot run
  }
}

describe('EventLoopDelay', () => {
  it('reads a blocked turn as lag, and time since before it as at least that lag', async () => {
    const d = new EventLoopDelay(50);
    try {
      await sleep(120);
      const before = performance.now();
      block(200);
      await sleep(30);
      expect(d.recentMaxMs()).toBeGreaterThanOrEqual(150);
      expect(d.lagSinceMs(before)).toBeGreaterThanOrEqual(150);
      // Lag since a time after the block is much less: the window of `since` counts, not the past.
      await sleep(300);
      expect(d.lagSinceMs(performance.now() - 100)).toBeLessThan(100);
    } finally {
      d.stop();
    }
  });
});
