import { Gauge, type Registry } from 'prom-client';
import { buildInfo, type BuildInfo } from '../util/build-info.js';

/**
 * The two info metrics (Prometheus' `_info` convention: always 1, the labels carry the facts),
 * part of metrics.ts's declarations. Under WORKERS > 1 the pod-wide value is the max (1), not a
 * sum of workers.
 */

export const INFO_METRIC_NAMES = ['meshlimit_build_info', 'meshlimit_config_info'] as const;

/** `meshlimit_build_info{version,commit,node_version} 1`: which meshlimit runs (commit empty when unknown). */
export function buildInfoGauge(registry: Registry, info: BuildInfo = buildInfo()): void {
  new Gauge({
    name: 'meshlimit_build_info',
    aggregator: 'max',
    help: 'Always 1; the labels say which meshlimit runs: package version, git commit it was built from (empty when unknown), Node.js version.',
    labelNames: ['version', 'commit', 'node_version'] as const,
    registers: [registry],
  }).set({ version: info.version, commit: info.commit ?? '', node_version: info.nodeVersion }, 1);
}

/**
 * `meshlimit_config_info{version} 1`: the content version of the config in use, as
 * `meshlimit check-config` and `/rlconfig` show it, so a CI check can be matched to a pod. One
 * series; a rejected reload keeps it. Returns the setter a successful (re)load calls.
 */
export function configInfoGauge(registry: Registry): (version: string) => void {
  const gauge = new Gauge({
    name: 'meshlimit_config_info',
    aggregator: 'max',
    help: 'Always 1; version is the content version of the config in use, as meshlimit check-config and /rlconfig show it.',
    labelNames: ['version'] as const,
    registers: [registry],
  });
  return (version) => {
    gauge.reset();
    gauge.set({ version }, 1);
  };
}
