import { ConfigError, ConfigErrors } from '../errors.js';
import type { DescriptorDump, LimitDump } from './compiled.js';
import { readFile, stat } from 'node:fs/promises';
import { compileConfig } from './compile.js';
import { readConfigDir, type LoadOptions } from './loader.js';
import { configMapFiles, withManifestLines, type ManifestFile } from './manifest.js';
import type { ConfigFile } from './version.js';

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
  return checkConfigPaths([dir], options);
}

/**
 * `meshlimit check-config PATH...`: each path a config directory, a YAML config file, or a
 * Kubernetes ConfigMap manifest (./manifest.ts; `configMap` picks one by name); all the files
 * found are checked together, as one config directory holding them.
 */
export async function checkConfigPaths(paths: readonly string[], options?: LoadOptions, configMap?: string): Promise<CheckResult> {
  let snapshot;
  const manifestFiles: ManifestFile[] = [];
  try {
    const files: ConfigFile[] = [];
    for (const p of paths) files.push(...(await readPath(p, configMap, manifestFiles, options)));
    snapshot = compileConfig(files, options);
  } catch (err) {
    const errors = configErrorList(err);
    if (errors === undefined) throw err;
    const message = (m: string): string => manifestFiles.reduce((acc, f) => withManifestLines(acc, f), m);
    const lines = [
      `config invalid: ${errors.length} error${errors.length === 1 ? '' : 's'}`,
      ...errors.map((e) => `  ${message(e.message)}`),
    ];
    return { ok: false, output: `${lines.join('\n')}\n` };
  }
  const dump = snapshot.dump();
  const lines = [
    `config OK: ${plural(dump.files.length, 'file')}, ${plural(dump.domains.length, 'domain')}, ${plural(snapshot.ruleCount, 'rule')}`,
    `version ${snapshot.version}`,
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

async function readPath(
  path: string,
  configMap: string | undefined,
  manifestFiles: ManifestFile[],
  options: LoadOptions | undefined,
): Promise<ConfigFile[]> {
  const isDir = await stat(path).then(
    (st) => st.isDirectory(),
    () => true, // let the directory reader name the problem
  );
  if (isDir) return [...(await readConfigDir(path, options)).files];
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(path, '', `cannot read file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const fromManifest = configMapFiles(path, text, configMap);
  if (fromManifest === undefined) return [{ path, text }];
  manifestFiles.push(...fromManifest);
  return fromManifest;
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

function describeReservation(r: NonNullable<DescriptorDump['reservation']>): string {
  const estimate = r.mode === 'in_flight' ? '' : `, estimate ${r.estimate ?? 'hits_addend'}, expiry cost ${r.expiryCost}`;
  return `reservation ${r.mode}${estimate}, ttl ${r.ttlMs / 1000} s, phase ${r.phaseKey}, id ${r.idKey}`;
}

function describeRule(x: DescriptorDump): string {
  const flags = [
    x.shadowMode ? ' [shadow_mode]' : '',
    x.quotaMode ? ' [quota_mode]' : '',
    x.detailedMetric ? ' [detailed_metric]' : '',
    x.reservation === undefined ? '' : ` [${describeReservation(x.reservation)}]`,
  ].join('');
  if (x.unlimited) return `unlimited${flags}`;
  return `${x.limits.map(describeLimit).join('; ')}${flags}`;
}
