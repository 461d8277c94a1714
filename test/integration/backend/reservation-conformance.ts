import { describe, expect, it } from 'vitest';
import type { ReservationCall, ReservationResult } from '../../../src/limiter/reservation-types.js';
import type { CounterOp } from '../../../src/limiter/types.js';
import type { BackendUnderTest } from './conformance.js';

/**
 * Reservation scenarios of the backend conformance suite (README "Reservations"): every backend
 * (memory, Redis standalone, Cluster, Sentinel, the per-second split) gives these exact answers
 * with a fixed clock. Registered by defineBackendSuite; `key(name, tag)` is that suite's key
 * builder (its prefix, one hash tag per descriptor).
 */

const T0 = 1_700_000_040_000; // minute-aligned
const MINUTE = 60_000;

export function reservationScenarios(sut: () => BackendUnderTest, key: (s: string, tag?: string) => string): void {
  describe('reservations', () => {
    const counter = (name: string, threshold: number, tag?: string): CounterOp => ({
      key: key(name, tag),
      algorithm: 'fixed_window',
      windowMs: MINUTE,
      threshold,
      burst: threshold,
      hits: 0,
      enforce: true,
    });
    const base = { ttlMs: 10_000, expiryCharge: false, maxOutstanding: 100 };
    type Said = [boolean, number, ReservationResult['outcome'], number, number, number, number];
    /** [overLimit, remaining, outcome, expired, outstanding, used, reserved] */
    const call = async (
      op: CounterOp,
      c: Partial<ReservationCall> & Pick<ReservationCall, 'phase' | 'id' | 'amount'>,
      now: number,
    ): Promise<Said> => {
      const r = await sut().backend.evaluate([op], { now, chargeOnDeny: false, reservation: { ...base, ...c } });
      const s = r.reservation!;
      expect(r.denied).toBe(r.outcomes[0]!.overLimit);
      return [r.outcomes[0]!.overLimit, r.outcomes[0]!.remaining, s.outcome, s.expired, s.outstanding, s.used, s.reserved];
    };

    it('admits a reserve only while used + reserved + estimate fit, and reports the window reset', async () => {
      const op = counter('budget', 1000);
      expect(await call(op, { phase: 'reserve', id: 'a', amount: 400 }, T0 + 1_000)).toEqual([false, 600, 'taken', 0, 1, 0, 400]);
      expect(await call(op, { phase: 'reserve', id: 'b', amount: 400 }, T0 + 2_000)).toEqual([false, 200, 'taken', 0, 2, 0, 800]);
      expect(await call(op, { phase: 'reserve', id: 'c', amount: 400 }, T0 + 3_000)).toEqual([true, 200, 'denied', 0, 2, 0, 800]);
      expect(await call(op, { phase: 'reserve', id: 'd', amount: 200 }, T0 + 3_000)).toEqual([false, 0, 'taken', 0, 3, 0, 1000]);
      const r = await sut().backend.evaluate([op], {
        now: T0 + 4_000,
        chargeOnDeny: false,
        reservation: { ...base, phase: 'reserve', id: 'e', amount: 1 },
      });
      expect(r.outcomes[0]!.resetMs).toBe(56_000);
    });

    it('settles: releases the estimate and charges the real cost, never denied (even past the limit)', async () => {
      const op = counter('settle', 100);
      await call(op, { phase: 'reserve', id: 'a', amount: 50 }, T0 + 1_000);
      await call(op, { phase: 'reserve', id: 'b', amount: 50 }, T0 + 1_000);
      expect(await call(op, { phase: 'settle', id: 'a', amount: 30 }, T0 + 2_000)).toEqual([false, 20, 'settled', 0, 1, 30, 50]);
      expect(await call(op, { phase: 'settle', id: 'b', amount: 500 }, T0 + 3_000)).toEqual([false, 0, 'settled', 0, 0, 530, 0]);
      expect(await call(op, { phase: 'reserve', id: 'c', amount: 1 }, T0 + 4_000)).toEqual([true, 0, 'denied', 0, 0, 530, 0]);
    });

    it('settling twice or settling an unknown id changes nothing and is answered OK', async () => {
      const op = counter('idem', 100);
      await call(op, { phase: 'reserve', id: 'a', amount: 40 }, T0 + 1_000);
      expect(await call(op, { phase: 'settle', id: 'a', amount: 10 }, T0 + 2_000)).toEqual([false, 90, 'settled', 0, 0, 10, 0]);
      expect(await call(op, { phase: 'settle', id: 'a', amount: 10 }, T0 + 3_000)).toEqual([false, 90, 'unknown', 0, 0, 10, 0]);
      expect(await call(op, { phase: 'settle', id: 'never', amount: 99 }, T0 + 4_000)).toEqual([false, 90, 'unknown', 0, 0, 10, 0]);
    });

    it('denies a second reserve of an outstanding id (one id cannot admit two requests)', async () => {
      const op = counter('dup', 100);
      await call(op, { phase: 'reserve', id: 'a', amount: 10 }, T0 + 1_000);
      expect(await call(op, { phase: 'reserve', id: 'a', amount: 10 }, T0 + 2_000)).toEqual([true, 90, 'duplicate', 0, 1, 0, 10]);
    });

    it('expires an unsettled reservation after its TTL exactly once, at no cost', async () => {
      const op = counter('exp', 100);
      await call(op, { phase: 'reserve', id: 'a', amount: 60 }, T0 + 1_000);
      expect(await call(op, { phase: 'reserve', id: 'b', amount: 60 }, T0 + 10_999)).toEqual([true, 40, 'denied', 0, 1, 0, 60]);
      expect(await call(op, { phase: 'reserve', id: 'b', amount: 60 }, T0 + 11_000)).toEqual([false, 40, 'taken', 1, 1, 0, 60]);
      expect(await call(op, { phase: 'settle', id: 'c', amount: 0 }, T0 + 12_000)).toEqual([false, 40, 'unknown', 0, 1, 0, 60]);
      // A late settle of the expired id charges nothing.
      expect(await call(op, { phase: 'settle', id: 'a', amount: 60 }, T0 + 13_000)).toEqual([false, 40, 'unknown', 0, 1, 0, 60]);
    });

    it('expiry_cost estimate charges the estimate when it expires', async () => {
      const op = counter('expcost', 100);
      const c = { expiryCharge: true };
      await call(op, { ...c, phase: 'reserve', id: 'a', amount: 30 }, T0 + 1_000);
      expect(await call(op, { ...c, phase: 'settle', id: 'x', amount: 0 }, T0 + 11_000)).toEqual([false, 70, 'unknown', 1, 0, 30, 0]);
      expect(await call(op, { ...c, phase: 'settle', id: 'a', amount: 5 }, T0 + 12_000)).toEqual([false, 70, 'unknown', 0, 0, 30, 0]);
    });

    it('refuses a reserve beyond max_outstanding (outcome full)', async () => {
      const op = counter('full', 100);
      const c = { maxOutstanding: 2 };
      await call(op, { ...c, phase: 'reserve', id: 'a', amount: 1 }, T0 + 1_000);
      await call(op, { ...c, phase: 'reserve', id: 'b', amount: 1 }, T0 + 1_000);
      expect(await call(op, { ...c, phase: 'reserve', id: 'c', amount: 1 }, T0 + 1_000)).toEqual([true, 98, 'full', 0, 2, 0, 2]);
    });

    it('in flight: at most N outstanding, a settle of cost 0 frees a slot', async () => {
      const op = counter('inflight', 2);
      expect(await call(op, { phase: 'reserve', id: 'a', amount: 1 }, T0 + 1_000)).toEqual([false, 1, 'taken', 0, 1, 0, 1]);
      expect(await call(op, { phase: 'reserve', id: 'b', amount: 1 }, T0 + 1_000)).toEqual([false, 0, 'taken', 0, 2, 0, 2]);
      expect(await call(op, { phase: 'reserve', id: 'c', amount: 1 }, T0 + 1_000)).toEqual([true, 0, 'denied', 0, 2, 0, 2]);
      expect(await call(op, { phase: 'settle', id: 'a', amount: 0 }, T0 + 2_000)).toEqual([false, 1, 'settled', 0, 1, 0, 1]);
      expect(await call(op, { phase: 'reserve', id: 'c', amount: 1 }, T0 + 2_000)).toEqual([false, 0, 'taken', 0, 2, 0, 2]);
    });

    it('a new window clears the charge but keeps outstanding reservations', async () => {
      const op = counter('roll', 100);
      await call(op, { phase: 'reserve', id: 'a', amount: 40 }, T0 + 1_000);
      await call(op, { phase: 'settle', id: 'a', amount: 70 }, T0 + 2_000);
      await call(op, { phase: 'reserve', id: 'b', amount: 20 }, T0 + 55_000);
      expect(await call(op, { phase: 'reserve', id: 'c', amount: 60 }, T0 + MINUTE + 1_000)).toEqual([false, 20, 'taken', 0, 2, 0, 80]);
    });

    it('keeps counters of different tags apart (each on its own slot on a cluster)', async () => {
      const a = counter('tags', 10, 'ta');
      const b = counter('tags', 10, 'tb');
      await call(a, { phase: 'reserve', id: 'x', amount: 10 }, T0 + 1_000);
      expect(await call(b, { phase: 'reserve', id: 'x', amount: 10 }, T0 + 1_000)).toEqual([false, 0, 'taken', 0, 1, 0, 10]);
    });
  });
}
