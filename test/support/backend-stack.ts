import { createBackendStack, type BackendStack, type BackendStackHooks } from '../../src/backend/stack.js';
import type { CounterOp } from '../../src/limiter/types.js';
import type { Settings } from '../../src/settings/index.js';

/** A counter of 5 per minute (fixed window) on `key`, charged one hit: the smallest op a stack test sends. */
export function minuteOp(key: string): CounterOp {
  return { key, algorithm: 'fixed_window', windowMs: 60_000, threshold: 5, burst: 5, hits: 1, enforce: true };
}

/** The backend stack as app.ts builds it from `settings` (no per-domain failure_mode), with `hooks`. */
export function stackOf(settings: Settings, hooks: BackendStackHooks = {}): BackendStack {
  return createBackendStack({ ...settings, ...settings.backend, domainPolicy: () => undefined }, hooks);
}
