/**
 * Calibration: what standalone Redis costs at best on this machine (a minimal script, `return 1`,
 * a PING round trip from the service's CPU), measured before any meshlimit load so the
 * commandstats deltas are the calibration scripts alone. See lib/calibrate.ts.
 */
import { calibrateRedis } from '../lib/calibrate.js';
import { log, onCpus, type Results, type RunContext } from './context.js';

export async function measureCalibration(ctx: RunContext, results: Results): Promise<void> {
  const dep = ctx.single;
  if (dep === undefined) return;
  results.calibration = await onCpus(ctx.cpus.service, () => calibrateRedis(dep));
}

/** The log line after the phase (also when it failed: then there is nothing to say). */
export function logCalibration(results: Results): void {
  const c = results.calibration;
  if (c)
    log(
      `calibration: minimal TIME+GET+SET script ${c.minimalScriptUs.toFixed(2)} us, return 1 ${c.returnOneUs.toFixed(2)} us per call; PING round trip p50 ${c.roundTrip.p50.toFixed(3)} ms`,
    );
}
