import { describe, expect, it } from 'vitest';
import { backendEvents } from '../../../src/telemetry/events.js';
import { createLogger } from '../../../src/telemetry/logger.js';
import { createMetrics } from '../../../src/telemetry/metrics.js';

/** What the backend stack's events do to metrics and logs, with two Redis (REDIS_PERSECOND). */
describe('backendEvents with two breakers', () => {
  function setup(): { lines: Record<string, unknown>[]; events: ReturnType<typeof backendEvents>; gauge: () => Promise<string[]> } {
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({ level: 'info', format: 'json', destination: { write: (s: string) => lines.push(JSON.parse(s)) } });
    const metrics = createMetrics({ collectDefault: false });
    metrics.setBreakerState('closed');
    const gauge = async (): Promise<string[]> =>
      (await metrics.render()).split('\n').filter((l) => l.startsWith('meshlimit_breaker_state{') && l.endsWith(' 1'));
    return { lines, events: backendEvents(metrics, logger, () => {}), gauge };
  }

  it('the state gauge shows the worse breaker; each transition is logged with its store', async () => {
    const { lines, events, gauge } = setup();
    events.onBreakerTransition!('closed', 'open', 'connection_lost', 'per_second');
    expect(await gauge()).toEqual(['meshlimit_breaker_state{state="open"} 1']);
    // The main breaker half-opening after its own trouble does not hide the open per-second one.
    events.onBreakerTransition!('closed', 'open', 'silence', 'main');
    events.onBreakerTransition!('open', 'half_open', 'open_elapsed', 'main');
    expect(await gauge()).toEqual(['meshlimit_breaker_state{state="open"} 1']);
    events.onBreakerTransition!('open', 'half_open', 'open_elapsed', 'per_second');
    expect(await gauge()).toEqual(['meshlimit_breaker_state{state="half_open"} 1']);
    events.onBreakerTransition!('half_open', 'closed', 'probes_succeeded', 'main');
    expect(await gauge()).toEqual(['meshlimit_breaker_state{state="half_open"} 1']);
    events.onBreakerTransition!('half_open', 'closed', 'probes_succeeded', 'per_second');
    expect(await gauge()).toEqual(['meshlimit_breaker_state{state="closed"} 1']);
    expect(lines.map((l) => [l.msg, l.store])).toEqual([
      ['circuit breaker open', 'per_second'],
      ['circuit breaker open', 'main'],
      ['circuit breaker half_open', 'main'],
      ['circuit breaker half_open', 'per_second'],
      ['circuit breaker closed', 'main'],
      ['circuit breaker closed', 'per_second'],
    ]);
  });

  it('names the store in connection log lines', () => {
    const { lines, events } = setup();
    events.onRedisState!({ ready: false, error: new Error('connect ECONNREFUSED') }, 'per_second');
    events.onRedisState!({ ready: true }, 'main');
    expect(lines.map((l) => [l.msg, l.store, l.error])).toEqual([
      ['redis connection lost', 'per_second', 'connect ECONNREFUSED'],
      ['redis connection ready', 'main', undefined],
    ]);
  });
});
