import { UNIT_SECONDS } from '../limiter/types.js';
import {
  DEFAULT_MAX_OUTSTANDING,
  MAX_OUTSTANDING_LIMIT,
  MAX_RESERVATION_AMOUNT,
  type ReservationSpec,
} from '../limiter/reservation-types.js';
import { at, type Checker, join } from './checker.js';
import type { LimitsSpec } from './limit-schema.js';
import { describeNode as describe, quoteText as q, type YEntry } from './yaml-tree.js';

/**
 * meshlimit `reservation:` on a descriptor (README "Reservations: token budgets and in-flight
 * limits"): calls matching the descriptor reserve (entry `<phase_key>: reserve`) or settle
 * (`<phase_key>: settle`) on its one limit, correlated by the value of `<id_key>`; neither entry
 * is part of the counter key. Checked strictly:
 * - keys: mode, phase_key, id_key, estimate, ttl_seconds, expiry_cost, max_outstanding;
 * - the descriptor has exactly one limit, a fixed_window `rate_limit` (not unlimited, no
 *   `rate_limits` list, no candidates, no shadow_mode, no quota_mode);
 * - the descriptor's path (its ancestors' keys and its own) holds both phase_key and id_key, so
 *   the rule matches the entries Envoy sends (a rule applies only at the last entry);
 * - ttl_seconds is at least 1 and at most the window (unit x unit_multiplier);
 * - mode tokens needs `estimate` (an integer >= 1, or `hits_addend`: the reserve call's);
 *   mode in_flight takes no estimate (each request holds 1) and expiry_cost none;
 * - max_outstanding 1..100000 (default 10000).
 */
export const RESERVATION_KEYS = ['mode', 'phase_key', 'id_key', 'estimate', 'ttl_seconds', 'expiry_cost', 'max_outstanding'] as const;

/** Descriptor features a reservation rule cannot be combined with (each would change what a counter means). */
export interface ReservationContext {
  readonly limits: LimitsSpec;
  readonly pathKeys: readonly string[];
  readonly shadowMode: boolean;
  readonly quotaMode: boolean;
  readonly hasCandidates: boolean;
}

export function checkReservation(
  c: Checker,
  entry: YEntry | undefined,
  path: string,
  ctx: ReservationContext,
): ReservationSpec | undefined {
  if (entry === undefined) return undefined;
  const node = entry.value;
  if (node.kind !== 'map') {
    c.error(path, `must be a mapping with ${RESERVATION_KEYS.join(', ')}, got ${describe(node)}${at(node.line)}`);
    return undefined;
  }
  const before = c.errors.length;
  c.keys(node, path, RESERVATION_KEYS);
  const e = node.entries;
  const text = (k: string, fallback: string): string => {
    const v = e.get(k);
    if (v === undefined) return fallback;
    const s = c.str(v.value, join(path, k));
    if (s === '') c.error(join(path, k), `must not be empty${at(v.keyLine)}`);
    return s === undefined || s === '' ? fallback : s;
  };
  const mode = text('mode', 'tokens');
  if (mode !== 'tokens' && mode !== 'in_flight')
    c.error(join(path, 'mode'), `unknown mode ${q(mode)}${at(e.get('mode')!.keyLine)}; expected tokens or in_flight`);
  const phaseKey = text('phase_key', 'phase');
  const idKey = text('id_key', 'request_id');
  if (phaseKey === idKey) c.error(join(path, 'id_key'), `must differ from phase_key (both ${q(idKey)})${at(node.line)}`);
  for (const [k, name] of [
    [phaseKey, 'phase_key'],
    [idKey, 'id_key'],
  ] as const) {
    if (!ctx.pathKeys.includes(k))
      c.error(
        join(path, name),
        `${q(k)} is not a key of this descriptor or its parents (${ctx.pathKeys.join(' -> ')})${at(node.line)}; nest the rule under a 'key: ${k}' descriptor so it matches the entry Envoy sends`,
      );
  }

  const estimate = checkEstimate(c, path, node.line, mode, e.get('estimate'));
  const expiry = text('expiry_cost', 'none');
  if (expiry !== 'none' && expiry !== 'estimate')
    c.error(join(path, 'expiry_cost'), `unknown expiry cost ${q(expiry)}${at(e.get('expiry_cost')!.keyLine)}; expected none or estimate`);
  else if (expiry === 'estimate' && mode === 'in_flight')
    c.error(
      join(path, 'expiry_cost'),
      `must be none with mode in_flight${at(e.get('expiry_cost')!.keyLine)}: an in-flight slot has no cost`,
    );

  const maxOutstanding = checkMaxOutstanding(c, path, e.get('max_outstanding'));
  const windowMs = limitWindow(c, path, node.line, ctx);
  let ttlMs = 0;
  const ttl = e.get('ttl_seconds');
  if (ttl === undefined)
    c.error(join(path, 'ttl_seconds'), `missing${at(node.line)}; how long an unsettled reservation is held (<= the window)`);
  else {
    const v = c.uint(ttl.value, join(path, 'ttl_seconds'), 1);
    if (v !== undefined && windowMs !== undefined && v * 1000 > windowMs)
      c.error(
        join(path, 'ttl_seconds'),
        `${v} s is longer than the limit's window (${windowMs / 1000} s)${at(ttl.keyLine)}; shorten it or widen the window`,
      );
    else if (v !== undefined) ttlMs = v * 1000;
  }
  if (c.errors.length !== before) return undefined;
  return Object.freeze({
    mode: mode as ReservationSpec['mode'],
    phaseKey,
    idKey,
    estimate,
    ttlMs,
    expiryCost: expiry as ReservationSpec['expiryCost'],
    maxOutstanding,
  });
}

/** The window of the one fixed_window limit a reservation rule needs, reporting what else it has. */
function limitWindow(c: Checker, path: string, line: number, ctx: ReservationContext): number | undefined {
  const why = (s: string): void => c.error(path, `${s}${at(line)}`);
  if (ctx.shadowMode) why('cannot be combined with shadow_mode');
  if (ctx.quotaMode) why('cannot be combined with quota_mode');
  if (ctx.hasCandidates) why('cannot be combined with candidate_rate_limits');
  if (ctx.limits.kind !== 'limits') {
    why(
      `needs a 'rate_limit' on the same descriptor (the budget or the in-flight maximum), and the descriptor has ${ctx.limits.kind === 'none' ? 'none' : 'an unlimited one'}`,
    );
    return undefined;
  }
  if (ctx.limits.limits.length !== 1) {
    why(`needs exactly one limit, got ${ctx.limits.limits.length}`);
    return undefined;
  }
  const l = ctx.limits.limits[0]!;
  if (l.algorithm !== 'fixed_window') {
    why(`needs a fixed_window limit, got ${l.algorithm}`);
    return undefined;
  }
  return l.unitMultiplier * UNIT_SECONDS[l.unit] * 1000;
}

/** `estimate`: required in tokens mode (an integer >= 1 or `hits_addend`), refused in in_flight mode (each request holds 1). */
function checkEstimate(c: Checker, path: string, line: number, mode: string, est: YEntry | undefined): number | undefined {
  if (mode === 'in_flight') {
    if (est !== undefined)
      c.error(join(path, 'estimate'), `is not allowed with mode in_flight${at(est.keyLine)}: each request in flight holds 1`);
    return 1;
  }
  if (est === undefined) {
    c.error(join(path, 'estimate'), `missing${at(line)}; give an integer >= 1 or hits_addend (the reserve call's hits_addend)`);
    return undefined;
  }
  if (est.value.kind === 'scalar' && est.value.value === 'hits_addend') return undefined;
  const v = c.uint(est.value, join(path, 'estimate'), 1);
  if (v !== undefined && v > MAX_RESERVATION_AMOUNT)
    c.error(join(path, 'estimate'), `must be at most ${MAX_RESERVATION_AMOUNT} (Envoy's cap on hits_addend), got ${v}${at(est.keyLine)}`);
  return v;
}

/** `max_outstanding`: 1..MAX_OUTSTANDING_LIMIT, default DEFAULT_MAX_OUTSTANDING. */
function checkMaxOutstanding(c: Checker, path: string, mo: YEntry | undefined): number {
  if (mo === undefined) return DEFAULT_MAX_OUTSTANDING;
  const v = c.uint(mo.value, join(path, 'max_outstanding'), 1);
  if (v === undefined) return DEFAULT_MAX_OUTSTANDING;
  if (v > MAX_OUTSTANDING_LIMIT)
    c.error(join(path, 'max_outstanding'), `must be at most ${MAX_OUTSTANDING_LIMIT}, got ${v}${at(mo.keyLine)}`);
  return v;
}
