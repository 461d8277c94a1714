import { ALGORITHMS, FAILURE_POLICIES, UNITS, UNIT_SECONDS, type Algorithm, type FailurePolicy, type Unit } from '../limiter/types.js';
import { checkResolution, type ResolutionOptions } from './resolution-schema.js';
import { describeNode as describe, quoteText as q, type YMap, type YNode, type YScalar } from './yaml-tree.js';

/**
 * Strict schema checks for one descriptor config file (envoyproxy/ratelimit format plus our
 * extensions), over the positional tree from `yaml-tree.ts`.
 *
 * Hand-written rather than a zod schema because every check needs the YAML source text and line
 * (yaml.v2 compatibility, see yaml-tree.ts) and upstream's own wording for its errors. Contract:
 * - every accepted key is listed per level below; any other key is an error (upstream's key list
 *   is flat, so it silently ignores a valid key at the wrong level, e.g. `shadow_mode` inside
 *   `rate_limit`; we reject that, because the setting would otherwise do nothing);
 * - checks continue after an error so one run reports every problem in the file;
 * - things upstream accepts but that are probably mistakes are warnings, never errors, so a config
 *   upstream loads also loads here unchanged.
 */

export const ROOT_KEYS = ['domain', 'descriptors', 'failure_mode', 'resolution'] as const;

/** Domain-level options (meshlimit extensions at the top of a file). */
export interface DomainOptions {
  /** What to answer when the counter store fails (overrides FAILURE_POLICY). */
  readonly failureMode?: FailurePolicy | undefined;
  /** Descriptor resolution (verified JWT claim, else client address); see ./resolution-schema.ts. */
  readonly resolution?: ResolutionOptions | undefined;
}
export const DESCRIPTOR_KEYS = [
  'key',
  'value',
  'rate_limit',
  'rate_limits',
  'descriptors',
  'shadow_mode',
  'detailed_metric',
  'value_to_metric',
  'share_threshold',
  'quota_mode',
] as const;
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

const UINT32_MAX = 4_294_967_295;

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

export interface DescriptorSpec {
  readonly path: string;
  readonly line: number;
  readonly key: string;
  /** Undefined when the descriptor has no `value` (matches any value). */
  readonly value: string | undefined;
  readonly limits: LimitsSpec;
  readonly shadowMode: boolean;
  readonly quotaMode: boolean;
  readonly detailedMetric: boolean;
  readonly valueToMetric: boolean;
  readonly shareThreshold: boolean;
  readonly descriptors: readonly DescriptorSpec[];
}

export interface FileSpec {
  readonly file: string;
  readonly domain: string;
  readonly domainLine: number;
  readonly options: DomainOptions;
  readonly descriptors: readonly DescriptorSpec[];
}

export interface Problem {
  readonly field: string;
  readonly detail: string;
}

export interface CheckResult {
  readonly spec: FileSpec | undefined;
  readonly errors: readonly Problem[];
  readonly warnings: readonly Problem[];
}

const at = (line: number): string => ` (line ${line})`;


const join = (path: string, key: string): string => (path ? `${path}.${key}` : key);

class Checker {
  readonly errors: Problem[] = [];
  readonly warnings: Problem[] = [];

  error(field: string, detail: string): void {
    this.errors.push({ field, detail });
  }

  warn(field: string, detail: string): void {
    this.warnings.push({ field, detail });
  }

  /** Reports unknown and duplicate keys of a mapping. */
  keys(map: YMap, path: string, allowed: readonly string[]): void {
    for (const d of map.duplicates) {
      this.error(join(path, d.key), `duplicate key${at(d.line)}; first defined on line ${d.firstLine}`);
    }
    for (const line of map.complexKeyLines) this.error(path, `mapping keys must be strings${at(line)}`);
    for (const [key, entry] of map.entries) {
      if (!allowed.includes(key)) {
        this.error(join(path, key), `unknown key ${q(key)}${at(entry.keyLine)}; allowed here: ${allowed.join(', ')}`);
      }
    }
  }

  /**
   * A string field, decoded like yaml.v2: any scalar gives its source text, null gives ''.
   * Returns undefined (after reporting) for a mapping or list.
   */
  str(node: YNode, path: string): string | undefined {
    if (node.kind !== 'scalar') {
      this.error(path, `must be a string, got ${describe(node)}${at(node.line)}`);
      return undefined;
    }
    if (node.value === null) return '';
    if (typeof node.value === 'string') return node.value;
    return node.source;
  }

  bool(node: YNode | undefined, path: string): boolean {
    if (node === undefined) return false;
    if (node.kind === 'scalar') {
      if (node.value === null) return false;
      if (typeof node.value === 'boolean' && !node.quoted) return node.value;
    }
    this.error(path, `must be a boolean (true or false), got ${describe(node)}${at(node.line)}`);
    return false;
  }

  /** An unsigned 32-bit integer field (yaml.v2 `uint32`): no floats, no quoted numbers. */
  uint(node: YNode, path: string, min: number): number | undefined {
    if (isInteger(node)) {
      const v = (node as YScalar).value as number;
      if (v >= min && v <= UINT32_MAX) return v;
    }
    const what = min === 0 ? 'a non-negative integer' : `an integer >= ${min}`;
    this.error(path, `must be ${what} (at most ${UINT32_MAX}), got ${describe(node)}${at(node.line)}`);
    return undefined;
  }
}

function isInteger(node: YNode): boolean {
  if (node.kind !== 'scalar' || node.quoted || typeof node.value !== 'number') return false;
  if (!Number.isSafeInteger(node.value)) return false;
  // 10.0 resolves to the integer 10 in JS, but it is a YAML float, which upstream rejects.
  return !/[.]|^[-+]?[0-9_]*[eE]/.test(node.source);
}

/** Proto enum names upstream looks the upper-cased unit up in (UNKNOWN excluded). */
function parseUnit(text: string): Unit | undefined {
  const upper = text.toUpperCase();
  return UNITS.find((u) => u.toUpperCase() === upper);
}

/** Checks one parsed file. `root` is null for an empty document. */
export function checkFile(file: string, root: YNode | null): CheckResult {
  const c = new Checker();
  if (root === null || (root.kind === 'scalar' && root.value === null)) {
    c.error('domain', 'missing; config file cannot have empty domain');
    return { spec: undefined, errors: c.errors, warnings: c.warnings };
  }
  if (root.kind !== 'map') {
    c.error('', `the top level must be a mapping with 'domain' and 'descriptors', got ${describe(root)}${at(root.line)}`);
    return { spec: undefined, errors: c.errors, warnings: c.warnings };
  }
  c.keys(root, '', ROOT_KEYS);

  let domain = '';
  let domainLine = root.line;
  const d = root.entries.get('domain');
  if (d === undefined) {
    c.error('domain', 'missing; config file cannot have empty domain');
  } else {
    domainLine = d.keyLine;
    const s = c.str(d.value, 'domain');
    if (s === '') c.error('domain', `config file cannot have empty domain${at(d.keyLine)}`);
    else if (s !== undefined) domain = s;
  }

  let failureMode: FailurePolicy | undefined;
  const fm = root.entries.get('failure_mode');
  if (fm !== undefined) {
    const s = c.str(fm.value, 'failure_mode');
    if (s !== undefined) {
      failureMode = FAILURE_POLICIES.find((m) => m === s.toLowerCase());
      if (failureMode === undefined) c.error('failure_mode', `invalid failure mode ${q(s)}${at(fm.keyLine)}; expected one of ${FAILURE_POLICIES.join(', ')}`);
    }
  }

  let resolution: ResolutionOptions | undefined;
  const rs = root.entries.get('resolution');
  if (rs !== undefined) resolution = checkResolution(rs.value, rs.keyLine, file, (field, detail) => c.error(field, detail));

  const descriptors = checkDescriptorList(c, root.entries.get('descriptors')?.value, 'descriptors');
  const options: DomainOptions = resolution === undefined ? { failureMode } : { failureMode, resolution };
  const spec = c.errors.length === 0 ? { file, domain, domainLine, options, descriptors } : undefined;
  return { spec, errors: c.errors, warnings: c.warnings };
}

function checkDescriptorList(c: Checker, node: YNode | undefined, path: string): DescriptorSpec[] {
  if (node === undefined || (node.kind === 'scalar' && node.value === null)) return [];
  if (node.kind !== 'seq') {
    c.error(path, `must be a list of descriptors, got ${describe(node)}${at(node.line)}`);
    return [];
  }
  const out: DescriptorSpec[] = [];
  node.items.forEach((item, i) => {
    const d = checkDescriptor(c, item, `${path}[${i}]`);
    if (d !== undefined) out.push(d);
  });
  return out;
}

function checkDescriptor(c: Checker, node: YNode, path: string): DescriptorSpec | undefined {
  if (node.kind !== 'map') {
    c.error(path, `must be a mapping with at least 'key', got ${describe(node)}${at(node.line)}`);
    return undefined;
  }
  c.keys(node, path, DESCRIPTOR_KEYS);
  const e = node.entries;

  let key = '';
  const k = e.get('key');
  if (k === undefined) c.error(join(path, 'key'), `missing; descriptor has empty key${at(node.line)}`);
  else {
    const s = c.str(k.value, join(path, 'key'));
    if (s === '') c.error(join(path, 'key'), `descriptor has empty key${at(k.keyLine)}`);
    else if (s !== undefined) key = s;
  }

  let value: string | undefined;
  const v = e.get('value');
  if (v !== undefined) {
    const s = c.str(v.value, join(path, 'value'));
    // Upstream treats an empty value as "no value" (the rule matches any value of the key). A
    // config upstream accepts must load unchanged, so this is a warning (it is often a templating
    // slip that turned a specific rule into a catch-all), not an error.
    if (s === '') c.warn(join(path, 'value'), `is empty${at(v.keyLine)}; treated as absent, so the rule matches any value of ${q(key)}`);
    else value = s;
  }

  const shadowMode = c.bool(e.get('shadow_mode')?.value, join(path, 'shadow_mode'));
  const quotaMode = c.bool(e.get('quota_mode')?.value, join(path, 'quota_mode'));
  const detailedMetric = c.bool(e.get('detailed_metric')?.value, join(path, 'detailed_metric'));
  const valueToMetric = c.bool(e.get('value_to_metric')?.value, join(path, 'value_to_metric'));
  const shareThreshold = c.bool(e.get('share_threshold')?.value, join(path, 'share_threshold'));

  const finalKey = value === undefined ? key : `${key}_${value}`;
  if (shareThreshold && key !== '' && !finalKey.includes('*')) {
    c.error(
      join(path, 'share_threshold'),
      `share_threshold can only be used with wildcard values (containing '*'), but found key ${q(finalKey)}${at(e.get('share_threshold')!.keyLine)}`,
    );
  }
  if (quotaMode) {
    c.warn(join(path, 'quota_mode'), 'quota mode is enforced like shadow_mode (over-limit requests pass); quota metadata is not sent');
  }

  const single = e.get('rate_limit');
  const list = e.get('rate_limits');
  let limits: LimitsSpec = { kind: 'none' };
  if (single !== undefined && list !== undefined) {
    c.error(path, `has both 'rate_limit' and 'rate_limits'${at(list.keyLine)}; use 'rate_limits' alone for several limits`);
  } else if (single !== undefined) {
    const node = single.value;
    // yaml.v2 decodes `rate_limit: ~` to a nil pointer: no limit.
    if (!(node.kind === 'scalar' && node.value === null)) limits = checkSingle(c, node, join(path, 'rate_limit'));
  } else if (list !== undefined) {
    limits = checkList(c, list.value, join(path, 'rate_limits'));
  }

  const descriptors = checkDescriptorList(c, e.get('descriptors')?.value, join(path, 'descriptors'));
  return { path, line: node.line, key, value, limits, shadowMode, quotaMode, detailedMetric, valueToMetric, shareThreshold, descriptors };
}

function checkSingle(c: Checker, node: YNode, path: string): LimitsSpec {
  if (node.kind !== 'map') {
    c.error(path, `must be a mapping, got ${describe(node)}${at(node.line)}`);
    return { kind: 'none' };
  }
  const unlimited = c.bool(node.entries.get('unlimited')?.value, join(path, 'unlimited'));
  if (unlimited) return checkUnlimited(c, node, path);
  const limit = checkLimit(c, node, path);
  return limit === undefined ? { kind: 'none' } : { kind: 'limits', limits: [limit] };
}

function checkList(c: Checker, node: YNode, path: string): LimitsSpec {
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
    else if (name === ownName) c.error(join(ip, 'name'), `replaces should not contain name of same descriptor (${q(name)})${at(n!.keyLine)}`);
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
      if (unit === undefined) c.error(join(path, 'unit'), `invalid rate limit unit ${q(s)}${at(u.keyLine)}; expected one of ${UNITS.join(', ')}`);
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
      if (s !== undefined) c.error(join(path, 'algorithm'), `unknown algorithm ${q(s)}${at(a.keyLine)}; expected one of ${ALGORITHMS.join(', ')}`);
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
      c.error(join(path, 'unit_multiplier'), `${why} is too large for exact arithmetic (${unit} x ${unitMultiplier})${at(m?.keyLine ?? node.line)}`);
    }
  }

  if (c.errors.length !== before || unit === undefined) return undefined;
  return { path, line: node.line, name, algorithm, unit, unitMultiplier, requestsPerUnit, burst, replaces };
}
