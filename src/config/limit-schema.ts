import { ALGORITHMS, UNITS, UNIT_SECONDS, type Algorithm, type Unit } from '../limiter/types.js';
import { at, type Checker, join } from './checker.js';
import { describeNode as describe, quoteText as q, type YMap, type YNode } from './yaml-tree.js';

/**
 * The `rate_limit` / `rate_limits` part of a descriptor: upstream's keys (unit,
 * requests_per_unit, unlimited, name, replaces) and meshlimit's extensions (algorithm, burst,
 * unit_multiplier, several limits per descriptor). Reports through the file's {@link Checker}.
 */

export const RATE_LIMIT_KEYS = [
  'unit',
  'requests_per_unit',
  'unlimited',
  'name',
  'replaces',
  'algorithm',
  'burst',
  'unit_multiplier',
] as const;
export const REPLACES_KEYS = ['name'] as const;

/** A limit as written (before compilation into a `Limit`). */
export interface LimitSpec {
  readonly path: string;
  readonly line: number;
  readonly name: string | undefined;
  readonly algorithm: Algorithm;
  readonly unit: Unit;
  readonly unitMultiplier: number;
  readonly requestsPerUnit: number;
  readonly burst: number;
  readonly replaces: readonly string[];
}

export type LimitsSpec =
  | { readonly kind: 'none' }
  | { readonly kind: 'unlimited'; readonly name: string | undefined; readonly replaces: readonly string[] }
  | { readonly kind: 'limits'; readonly limits: readonly LimitSpec[] };

/** Proto enum names upstream looks the upper-cased unit up in (UNKNOWN excluded). */
function parseUnit(text: string): Unit | undefined {
  const upper = text.toUpperCase();
  return UNITS.find((u) => u.toUpperCase() === upper);
}

export function checkSingle(c: Checker, node: YNode, path: string): LimitsSpec {
  if (node.kind !== 'map') {
    c.error(path, `must be a mapping, got ${describe(node)}${at(node.line)}`);
    return { kind: 'none' };
  }
  const unlimited = c.bool(node.entries.get('unlimited')?.value, join(path, 'unlimited'));
  if (unlimited) return checkUnlimited(c, node, path);
  const limit = checkLimit(c, node, path);
  return limit === undefined ? { kind: 'none' } : { kind: 'limits', limits: [limit] };
}

export function checkList(c: Checker, node: YNode, path: string): LimitsSpec {
  if (node.kind !== 'seq') {
    c.error(path, `must be a list of rate limits, got ${describe(node)}${at(node.line)}`);
    return { kind: 'none' };
  }
  if (node.items.length === 0) {
    c.error(path, `must list at least one rate limit${at(node.line)}`);
    return { kind: 'none' };
  }
  const limits: LimitSpec[] = [];
  node.items.forEach((item, i) => {
    const p = `${path}[${i}]`;
    if (item.kind !== 'map') {
      c.error(p, `must be a mapping, got ${describe(item)}${at(item.line)}`);
      return;
    }
    const u = item.entries.get('unlimited');
    if (u !== undefined) {
      c.error(join(p, 'unlimited'), `is not allowed in 'rate_limits'${at(u.keyLine)}; use 'rate_limit: {unlimited: true}' instead`);
      return;
    }
    const limit = checkLimit(c, item, p);
    if (limit !== undefined) limits.push(limit);
  });
  // Two limits with one counter identity would share (and double-count) one counter.
  const seen = new Map<string, LimitSpec>();
  for (const l of limits) {
    const id = `${l.algorithm}/${l.unit}/${l.unitMultiplier}`;
    const first = seen.get(id);
    if (first !== undefined) {
      c.error(
        l.path,
        `uses the same counter as ${first.path.slice(first.path.lastIndexOf('.') + 1)} (algorithm ${l.algorithm}, unit ${l.unit}, unit_multiplier ${l.unitMultiplier})${at(l.line)}; merge them or change the unit`,
      );
    } else seen.set(id, l);
  }
  return { kind: 'limits', limits };
}

function checkName(c: Checker, node: YMap, path: string): string | undefined {
  const n = node.entries.get('name');
  if (n === undefined) return undefined;
  const s = c.str(n.value, join(path, 'name'));
  return s === '' ? undefined : s;
}

function checkReplaces(c: Checker, node: YMap, path: string, ownName: string | undefined): string[] {
  const r = node.entries.get('replaces');
  if (r === undefined || (r.value.kind === 'scalar' && r.value.value === null)) return [];
  const p = join(path, 'replaces');
  if (r.value.kind !== 'seq') {
    c.error(p, `must be a list of {name: ...} entries, got ${describe(r.value)}${at(r.value.line)}`);
    return [];
  }
  const out: string[] = [];
  r.value.items.forEach((item, i) => {
    const ip = `${p}[${i}]`;
    if (item.kind !== 'map') {
      c.error(ip, `must be a mapping with 'name', got ${describe(item)}${at(item.line)}`);
      return;
    }
    c.keys(item, ip, REPLACES_KEYS);
    const n = item.entries.get('name');
    const name = n === undefined ? '' : c.str(n.value, join(ip, 'name'));
    if (name === undefined) return;
    if (name === '') c.error(join(ip, 'name'), `should not have an empty replaces entry${at(n?.keyLine ?? item.line)}`);
    else if (name === ownName)
      c.error(join(ip, 'name'), `replaces should not contain name of same descriptor (${q(name)})${at(n!.keyLine)}`);
    else out.push(name);
  });
  return out;
}

function checkUnlimited(c: Checker, node: YMap, path: string): LimitsSpec {
  c.keys(node, path, RATE_LIMIT_KEYS);
  const e = node.entries;
  const unit = e.get('unit');
  if (unit !== undefined) {
    const s = c.str(unit.value, join(path, 'unit'));
    if (s !== undefined && parseUnit(s) !== undefined) {
      c.error(join(path, 'unit'), `should not specify rate limit unit when unlimited${at(unit.keyLine)}`);
    } else if (s !== undefined && s !== '') {
      c.warn(join(path, 'unit'), `ignored: unlimited limits have no unit${at(unit.keyLine)}`);
    }
  }
  const rpu = e.get('requests_per_unit');
  if (rpu !== undefined) c.warn(join(path, 'requests_per_unit'), `ignored: the limit is unlimited${at(rpu.keyLine)}`);
  for (const ours of ['algorithm', 'burst', 'unit_multiplier'] as const) {
    const x = e.get(ours);
    if (x !== undefined) c.error(join(path, ours), `must not be set when unlimited is true${at(x.keyLine)}`);
  }
  const name = checkName(c, node, path);
  const replaces = checkReplaces(c, node, path, name);
  return { kind: 'unlimited', name, replaces };
}

function checkLimit(c: Checker, node: YMap, path: string): LimitSpec | undefined {
  const before = c.errors.length;
  c.keys(node, path, RATE_LIMIT_KEYS);
  const e = node.entries;

  let unit: Unit | undefined;
  const u = e.get('unit');
  if (u === undefined) {
    c.error(join(path, 'unit'), `missing${at(node.line)}; expected one of ${UNITS.join(', ')}`);
  } else {
    const s = c.str(u.value, join(path, 'unit'));
    if (s !== undefined) {
      unit = parseUnit(s);
      if (unit === undefined)
        c.error(join(path, 'unit'), `invalid rate limit unit ${q(s)}${at(u.keyLine)}; expected one of ${UNITS.join(', ')}`);
    }
  }

  let requestsPerUnit = 0;
  const r = e.get('requests_per_unit');
  if (r === undefined || (r.value.kind === 'scalar' && r.value.value === null)) {
    c.warn(join(path, 'requests_per_unit'), `missing, so it is 0 and every request is over the limit${at(r?.keyLine ?? node.line)}`);
  } else {
    requestsPerUnit = c.uint(r.value, join(path, 'requests_per_unit'), 0) ?? 0;
  }

  let algorithm: Algorithm = 'fixed_window';
  let algorithmKnown = true;
  const a = e.get('algorithm');
  if (a !== undefined) {
    const s = c.str(a.value, join(path, 'algorithm'));
    const found = ALGORITHMS.find((x) => x === s);
    if (found !== undefined) algorithm = found;
    else {
      algorithmKnown = false;
      if (s !== undefined)
        c.error(join(path, 'algorithm'), `unknown algorithm ${q(s)}${at(a.keyLine)}; expected one of ${ALGORITHMS.join(', ')}`);
    }
  }

  let unitMultiplier = 1;
  const m = e.get('unit_multiplier');
  if (m !== undefined) unitMultiplier = c.uint(m.value, join(path, 'unit_multiplier'), 1) ?? 1;

  let burst = requestsPerUnit;
  const b = e.get('burst');
  if (b !== undefined && algorithmKnown) {
    if (algorithm === 'token_bucket') burst = c.uint(b.value, join(path, 'burst'), 1) ?? burst;
    else {
      const which = a === undefined ? 'the default fixed_window' : algorithm;
      c.error(join(path, 'burst'), `is only valid with algorithm token_bucket, not ${which}${at(b.keyLine)}`);
    }
  }

  const name = checkName(c, node, path);
  const replaces = checkReplaces(c, node, path, name);

  if (unit !== undefined) {
    const windowMs = UNIT_SECONDS[unit] * unitMultiplier * 1000;
    // Token bucket state is kept in token-milliseconds; both must stay exact in a double.
    const scale = algorithm === 'token_bucket' ? Math.max(burst, requestsPerUnit, 1) : 1;
    if (windowMs * scale > Number.MAX_SAFE_INTEGER) {
      const why = algorithm === 'token_bucket' ? 'window x max(burst, requests_per_unit)' : 'window';
      c.error(
        join(path, 'unit_multiplier'),
        `${why} is too large for exact arithmetic (${unit} x ${unitMultiplier})${at(m?.keyLine ?? node.line)}`,
      );
    }
  }

  if (c.errors.length !== before || unit === undefined) return undefined;
  return { path, line: node.line, name, algorithm, unit, unitMultiplier, requestsPerUnit, burst, replaces };
}

/**
 * meshlimit `candidate_rate_limits`: a list in the shape of `rate_limits`, evaluated and counted on
 * counters of their own beside the descriptor's limits and never enforced (a lower limit tried
 * before it is enforced). Only where the descriptor has a limit (`rate_limit` or `rate_limits`,
 * not `unlimited`); no `replaces` (a candidate changes no answer).
 */
export function checkCandidates(
  c: Checker,
  entry: { value: YNode; keyLine: number } | undefined,
  path: string,
  ruleKind: LimitsSpec['kind'],
): LimitSpec[] {
  if (entry === undefined) return [];
  if (ruleKind !== 'limits') {
    const why = ruleKind === 'none' ? 'the descriptor has no limit' : 'the descriptor is unlimited';
    c.error(
      path,
      `needs a limit ('rate_limit' or 'rate_limits') on the same descriptor${at(entry.keyLine)}: candidates are tried beside a rule's limits, and ${why}`,
    );
    return [];
  }
  if (entry.value.kind === 'seq') {
    entry.value.items.forEach((item, i) => {
      if (item.kind !== 'map') return;
      const r = item.entries.get('replaces');
      if (r !== undefined)
        c.error(join(`${path}[${i}]`, 'replaces'), `is not allowed in a candidate${at(r.keyLine)}: a candidate never changes an answer`);
    });
  }
  const spec = checkList(c, entry.value, path);
  return spec.kind === 'limits' ? [...spec.limits] : [];
}
