import { DEFAULT_STRING_LIMITS, overBytes } from '../limiter/string-limits.js';
import { FAILURE_POLICIES, type FailurePolicy, type MetadataStruct } from '../limiter/types.js';
import { at, Checker, join, type Problem } from './checker.js';
import { checkCandidates, checkList, checkSingle, type LimitSpec, type LimitsSpec } from './limit-schema.js';
import { checkDescriptorMetadata } from './metadata-schema.js';
import { checkReservation } from './reservation-schema.js';
import type { ReservationSpec } from '../limiter/reservation-types.js';
import { checkResolution, type ResolutionOptions } from './resolution-schema.js';
import { describeNode as describe, quoteText as q, type YNode } from './yaml-tree.js';

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
  'metadata',
  'candidate_rate_limits',
  'reservation',
] as const;
export interface DescriptorSpec {
  readonly path: string;
  readonly line: number;
  readonly key: string;
  /** Undefined when the descriptor has no `value` (matches any value). */
  readonly value: string | undefined;
  readonly limits: LimitsSpec;
  /** meshlimit `candidate_rate_limits`: limits counted beside `limits`, never enforced (empty when absent). */
  readonly candidates: readonly LimitSpec[];
  readonly shadowMode: boolean;
  readonly quotaMode: boolean;
  readonly detailedMetric: boolean;
  readonly valueToMetric: boolean;
  readonly shareThreshold: boolean;
  /** upstream descriptor `metadata` (a non-empty mapping), else undefined. */
  readonly metadata: MetadataStruct | undefined;
  /** meshlimit `reservation` (./reservation-schema.ts), else undefined. */
  readonly reservation: ReservationSpec | undefined;
  readonly descriptors: readonly DescriptorSpec[];
}

export interface FileSpec {
  readonly file: string;
  readonly domain: string;
  readonly domainLine: number;
  readonly options: DomainOptions;
  readonly descriptors: readonly DescriptorSpec[];
}

export interface CheckResult {
  readonly spec: FileSpec | undefined;
  readonly errors: readonly Problem[];
  readonly warnings: readonly Problem[];
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
    else if (s !== undefined) {
      domain = s;
      warnUnreachable(c, 'domain', s, d.keyLine, 'domain');
    }
  }

  let failureMode: FailurePolicy | undefined;
  const fm = root.entries.get('failure_mode');
  if (fm !== undefined) {
    const s = c.str(fm.value, 'failure_mode');
    if (s !== undefined) {
      failureMode = FAILURE_POLICIES.find((m) => m === s.toLowerCase());
      if (failureMode === undefined)
        c.error('failure_mode', `invalid failure mode ${q(s)}${at(fm.keyLine)}; expected one of ${FAILURE_POLICIES.join(', ')}`);
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

function checkDescriptorList(c: Checker, node: YNode | undefined, path: string, parentKeys: readonly string[] = []): DescriptorSpec[] {
  if (node === undefined || (node.kind === 'scalar' && node.value === null)) return [];
  if (node.kind !== 'seq') {
    c.error(path, `must be a list of descriptors, got ${describe(node)}${at(node.line)}`);
    return [];
  }
  const out: DescriptorSpec[] = [];
  node.items.forEach((item, i) => {
    const d = checkDescriptor(c, item, `${path}[${i}]`, parentKeys);
    if (d !== undefined) out.push(d);
  });
  return out;
}

function checkDescriptor(c: Checker, node: YNode, path: string, parentKeys: readonly string[]): DescriptorSpec | undefined {
  if (node.kind !== 'map') {
    c.error(path, `must be a mapping with at least 'key', got ${describe(node)}${at(node.line)}`);
    return undefined;
  }
  c.keys(node, path, DESCRIPTOR_KEYS);
  const e = node.entries;

  const key = descriptorKey(c, node, path);
  const value = descriptorValue(c, node, path, key);

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

  const candidates = checkCandidates(c, e.get('candidate_rate_limits'), join(path, 'candidate_rate_limits'), limits.kind);
  const metadata = checkDescriptorMetadata(c, e.get('metadata'), join(path, 'metadata'), limits.kind);
  const pathKeys = [...parentKeys, key];
  const context = { limits, pathKeys, shadowMode, quotaMode, hasCandidates: e.has('candidate_rate_limits') };
  const reservation = checkReservation(c, e.get('reservation'), join(path, 'reservation'), context);
  const descriptors = checkDescriptorList(c, e.get('descriptors')?.value, join(path, 'descriptors'), pathKeys);
  return {
    path,
    line: node.line,
    key,
    value,
    limits,
    candidates,
    shadowMode,
    quotaMode,
    detailedMetric,
    valueToMetric,
    shareThreshold,
    metadata,
    reservation,
    descriptors,
  };
}

/** The descriptor's `key` ('' when missing or invalid, with the error recorded). */
function descriptorKey(c: Checker, node: YNode & { kind: 'map' }, path: string): string {
  const k = node.entries.get('key');
  if (k === undefined) {
    c.error(join(path, 'key'), `missing; descriptor has empty key${at(node.line)}`);
    return '';
  }
  const s = c.str(k.value, join(path, 'key'));
  if (s === '') c.error(join(path, 'key'), `descriptor has empty key${at(k.keyLine)}`);
  if (s === undefined || s === '') return '';
  warnUnreachable(c, join(path, 'key'), s, k.keyLine, 'key');
  return s;
}

/** The descriptor's `value`; undefined when absent, empty or invalid. */
function descriptorValue(c: Checker, node: YNode & { kind: 'map' }, path: string, key: string): string | undefined {
  const v = node.entries.get('value');
  if (v === undefined) return undefined;
  const s = c.str(v.value, join(path, 'value'));
  // Upstream treats an empty value as "no value" (the rule matches any value of the key). A
  // config upstream accepts must load unchanged, so this is a warning (it is often a templating
  // slip that turned a specific rule into a catch-all), not an error.
  if (s === '') c.warn(join(path, 'value'), `is empty${at(v.keyLine)}; treated as absent, so the rule matches any value of ${q(key)}`);
  if (s === undefined || s === '') return undefined;
  warnUnreachable(c, join(path, 'value'), s, v.keyLine, 'value');
  return s;
}

/**
 * A domain, key or value longer than a request may carry (src/limiter/string-limits.ts) cannot be
 * matched: a request carrying it is refused with INVALID_ARGUMENT, and Envoy's default
 * `failure_mode_deny: false` then lets that request through unlimited. Upstream accepts any
 * length, so this is a warning, not an error.
 */
function warnUnreachable(c: Checker, field: string, s: string, line: number, what: keyof typeof UNREACHABLE): void {
  const { max, consequence } = UNREACHABLE[what];
  if (!overBytes(s, max)) return;
  c.warn(
    field,
    `is ${Buffer.byteLength(s, 'utf8')} bytes${at(line)}; meshlimit refuses a request whose ${what} is over ${max} bytes (INVALID_ARGUMENT, which Envoy's default failure_mode_deny: false lets through unlimited), so ${consequence}`,
  );
}

/** Per string a request carries: its bound, and what a config string over it means. */
const UNREACHABLE = {
  domain: { max: DEFAULT_STRING_LIMITS.maxDomainBytes, consequence: 'every request of this domain is refused' },
  key: { max: DEFAULT_STRING_LIMITS.maxKeyBytes, consequence: 'this rule can never match' },
  value: { max: DEFAULT_STRING_LIMITS.maxValueBytes, consequence: 'this rule can never match unless MAX_DESCRIPTOR_VALUE_BYTES is raised' },
} as const;
