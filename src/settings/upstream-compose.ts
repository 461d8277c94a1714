import { SettingsError } from '../errors.js';
import type { Parsed, SettingName } from './table.js';
import { OVER_LIMIT_CACHE_ENTRY_BYTES } from './upstream-table.js';
import type { UpstreamTracing } from './upstream.js';

/**
 * The rows of ./upstream-table.ts that stand for another setting (or for several variables of
 * the OpenTelemetry SDK), composed into the settings ./index.ts returns.
 */

export interface LimiterAliases {
  readonly chargeOnDeny: boolean;
  readonly localCacheSize: number;
}

/**
 * STOP_CACHE_KEY_INCREMENT_WHEN_OVERLIMIT and LOCAL_CACHE_SIZE_IN_BYTES, envoyproxy/ratelimit's
 * names for what CHARGE_ON_DENY and LOCAL_CACHE_SIZE say: either name may be used, both only when
 * they agree. Values of rows that failed to parse are left to their own errors.
 */
export function composeLimiterAliases(p: Parsed, given: (name: SettingName) => boolean, errors: SettingsError[]): LimiterAliases {
  let chargeOnDeny = p.CHARGE_ON_DENY;
  const stop = p.STOP_CACHE_KEY_INCREMENT_WHEN_OVERLIMIT;
  if (stop !== undefined) {
    if (given('CHARGE_ON_DENY') && p.CHARGE_ON_DENY === stop) {
      errors.push(
        new SettingsError(
          'STOP_CACHE_KEY_INCREMENT_WHEN_OVERLIMIT',
          `${stop} contradicts CHARGE_ON_DENY=${p.CHARGE_ON_DENY} (STOP_CACHE_KEY_INCREMENT_WHEN_OVERLIMIT=true is CHARGE_ON_DENY=false): set only CHARGE_ON_DENY`,
        ),
      );
    }
    chargeOnDeny = !stop;
  }
  let localCacheSize = p.LOCAL_CACHE_SIZE;
  const bytes = p.LOCAL_CACHE_SIZE_IN_BYTES;
  if (bytes !== undefined) {
    if (given('LOCAL_CACHE_SIZE')) {
      errors.push(
        new SettingsError(
          'LOCAL_CACHE_SIZE_IN_BYTES',
          'is set together with LOCAL_CACHE_SIZE: they size the same cache (in bytes and in entries); set only one',
        ),
      );
    }
    localCacheSize = bytes === 0 ? 0 : Math.max(1, Math.floor(bytes / OVER_LIMIT_CACHE_ENTRY_BYTES));
  }
  return { chargeOnDeny, localCacheSize };
}

/** TRACING_*, grouped (turned into OTEL_* variables by `tracingEnvironment` in ./upstream.ts). */
export function tracingGroup(p: Parsed): UpstreamTracing {
  return {
    enabled: p.TRACING_ENABLED,
    protocol: p.TRACING_EXPORTER_PROTOCOL,
    serviceName: p.TRACING_SERVICE_NAME,
    serviceNamespace: p.TRACING_SERVICE_NAMESPACE,
    serviceInstanceId: p.TRACING_SERVICE_INSTANCE_ID,
    samplingRate: p.TRACING_SAMPLING_RATE,
  };
}

/** USE_PROMETHEUS: its port must not be PORT's (the admin port already serves /metrics). */
export function checkPrometheusPort(p: Parsed, errors: SettingsError[]): void {
  if (p.USE_PROMETHEUS && p.PROMETHEUS_ADDR !== undefined && p.PROMETHEUS_ADDR.port === p.PORT && p.PORT !== 0) {
    errors.push(
      new SettingsError(
        'PROMETHEUS_ADDR',
        `port ${p.PORT} is PORT's, which serves /metrics already: choose another port, or unset USE_PROMETHEUS to scrape PORT`,
      ),
    );
  }
}

/** USE_PROMETHEUS's port: PROMETHEUS_ADDR (host undefined: every address) and PROMETHEUS_PATH. */
export interface PrometheusListen {
  readonly host: string | undefined;
  readonly port: number;
  readonly path: string;
}
