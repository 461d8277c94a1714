import { ConfigError, ConfigErrors } from '../errors.js';
import type { DescriptorDump, LimitDump } from './compiled.js';
import { loadConfigDir, type LoadOptions } from './loader.js';

export interface CheckResult {
  readonly ok: boolean;
  /** Human-readable report: every error, or a summary of domains and rules; ends with a newline. */
  readonly output: string;
}

/**
 * Offline config check (`meshlimit check-config DIR`): the same loader and compiler the service
 * uses, so a directory that passes here loads in the service. Never throws for an invalid config;
 * other failures (bugs) propagate.
 */
export async function checkConfigDir(dir: string, options?: LoadOptions): Promise<CheckResult> {
  let snapshot;
  try {
    snapshot = await loadConfigDir(dir, options);
  } catch (err) {
    const errors = configErrorList(err);
    if (errors === undefined) throw err;
    const lines = [`config invalid: ${errors.length} error${errors.length === 1 ? '' : 's'}`, ...errors.map((e) => `  ${e.message}`)];
    return { ok: false, output: `${lines.join('\n')}\n` };
  }
  const dump = snapshot.dump();
  const lines = [
    `config OK: ${plural(dump.files.length, 'file')}, ${plural(dump.domains.length, 'domain')}, ${plural(snapshot.ruleCount, 'rule')} (version ${snapshot.version.slice(0, 12)})`,
  ];
  for (const d of dump.domains) {
    lines.push(`domain ${d.domain} (${d.files.join(', ')})`);
    const visit = (ds: readonly DescriptorDump[]): void => {
      for (const x of ds) {
        if (x.ruleKey !== null) lines.push(`  ${x.ruleKey}: ${describeRule(x)}`);
        visit(x.descriptors);
      }
    };
    visit(d.descriptors);
  }
  for (const w of snapshot.warnings) lines.push(`warning: ${w.message}`);
  return { ok: true, output: `${lines.join('\n')}\n` };
}

/** The individual errors of a `ConfigError` / `ConfigErrors`; undefined for any other value. */
export function configErrorList(err: unknown): readonly ConfigError[] | undefined {
  if (err instanceof ConfigErrors) return err.errors;
  if (err instanceof ConfigError) return [err];
  return undefined;
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

function describeLimit(l: LimitDump): string {
  const per = l.unitMultiplier === 1 ? l.unit : `${l.unitMultiplier} ${l.unit}s`;
  const parts = [`${l.requestsPerUnit} per ${per}`, l.algorithm];
  if (l.algorithm === 'token_bucket') parts.push(`burst ${l.burst}`);
  if (l.name !== null) parts.push(`name ${l.name}`);
  if (l.replaces.length > 0) parts.push(`replaces ${l.replaces.join(',')}`);
  return parts.join(', ');
}

function describeRule(x: DescriptorDump): string {
  const flags = [
    x.shadowMode ? ' [shadow_mode]' : '',
    x.quotaMode ? ' [quota_mode]' : '',
    x.detailedMetric ? ' [detailed_metric]' : '',
  ].join('');
  if (x.unlimited) return `unlimited${flags}`;
  return `${x.limits.map(describeLimit).join('; ')}${flags}`;
}
