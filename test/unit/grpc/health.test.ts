import { describe, expect, it } from 'vitest';
import { HEALTH_SERVICES, HealthState, ServingStatus } from '../../../src/server/grpc/health.js';

const RLS = 'envoy.service.ratelimit.v3.RateLimitService';

describe('HealthState', () => {
  it('knows the server ("") and the RLS service, NOT_SERVING until told otherwise', () => {
    expect(HEALTH_SERVICES).toEqual(['', RLS]);
    const state = new HealthState();
    expect(state.entries()).toEqual([
      ['', ServingStatus.NOT_SERVING],
      [RLS, ServingStatus.NOT_SERVING],
    ]);
    expect(state.isServing()).toBe(false);
    expect(new HealthState(true).status(RLS)).toBe(ServingStatus.SERVING);
  });

  it('setServing flips every known service; unknown services stay unknown', () => {
    const state = new HealthState();
    state.setServing(true);
    expect(state.status('')).toBe(ServingStatus.SERVING);
    expect(state.status(RLS)).toBe(ServingStatus.SERVING);
    expect(state.isServing()).toBe(true);
    expect(state.status('other')).toBeUndefined();
  });

  it('notifies watchers of transitions only, per service, until unsubscribed', () => {
    const state = new HealthState();
    const seen: [string, number][] = [];
    const offAll = state.watch('', (s) => seen.push(['', s]));
    const offRls = state.watch(RLS, (s) => seen.push([RLS, s]));
    const offNew = state.watch('later', (s) => seen.push(['later', s]));

    state.setServing(true);
    state.setServing(true); // no change: no notification
    state.setStatus(RLS, false);
    state.setStatus('later', true); // registers the service
    expect(state.status('later')).toBe(ServingStatus.SERVING);
    offRls();
    state.setServing(false); // now includes 'later'
    offAll();
    offNew();
    state.setServing(true);

    expect(seen).toEqual([
      ['', ServingStatus.SERVING],
      [RLS, ServingStatus.SERVING],
      [RLS, ServingStatus.NOT_SERVING],
      ['later', ServingStatus.SERVING],
      ['', ServingStatus.NOT_SERVING],
      ['later', ServingStatus.NOT_SERVING],
    ]);
  });
});
