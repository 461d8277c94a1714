import { SettingsError } from '../errors.js';
import { composeRedis, PER_SECOND_REDIS_VARIABLES, type RedisSettings } from './redis.js';
import { loadRedisTls } from './redis-tls.js';
import type { Parsed } from './table.js';

/** REDIS_* and REDIS_PERSECOND_* composed into the two Redis the service may use (part of index.ts's loader). */
/**
 * REDIS_*: the main Redis, the per-second one when REDIS_PERSECOND is true (its
 * REDIS_PERSECOND_* settings are not used otherwise, as upstream), and the TLS files both use
 * (./redis-tls.ts, read here, once).
 */
export function composeRedisGroup(p: Parsed, errors: SettingsError[]): RedisGroup | undefined {
  const timeouts = { commandTimeoutMs: p.REDIS_COMMAND_TIMEOUT_MS, connectTimeoutMs: p.REDIS_CONNECT_TIMEOUT_MS };
  const main = composeRedis(
    {
      type: p.REDIS_TYPE,
      socketType: p.REDIS_SOCKET_TYPE,
      url: p.REDIS_URL,
      auth: p.REDIS_AUTH,
      sentinelAuth: p.REDIS_SENTINEL_AUTH,
      tls: p.REDIS_TLS,
      ...timeouts,
    },
    errors,
  );
  let perSecond: RedisSettings | undefined;
  if (p.REDIS_PERSECOND) {
    if (p.REDIS_PERSECOND_URL === undefined)
      errors.push(
        new SettingsError('REDIS_PERSECOND_URL', 'is required with REDIS_PERSECOND=true: the Redis holding the per-second counters'),
      );
    else
      perSecond = composeRedis(
        {
          type: p.REDIS_PERSECOND_TYPE,
          socketType: p.REDIS_PERSECOND_SOCKET_TYPE,
          url: p.REDIS_PERSECOND_URL,
          auth: p.REDIS_PERSECOND_AUTH,
          sentinelAuth: p.REDIS_PERSECOND_SENTINEL_AUTH,
          tls: p.REDIS_PERSECOND_TLS,
          ...timeouts,
        },
        errors,
        PER_SECOND_REDIS_VARIABLES,
      );
  }
  if (main === undefined || (p.REDIS_PERSECOND && perSecond === undefined)) return undefined;
  const tls = loadRedisTls(
    {
      caCert: p.REDIS_TLS_CACERT,
      clientCert: p.REDIS_TLS_CLIENT_CERT,
      clientKey: p.REDIS_TLS_CLIENT_KEY,
      skipHostnameVerification: p.REDIS_TLS_SKIP_HOSTNAME_VERIFICATION,
      anyTls: main.tls || perSecond?.tls === true,
    },
    errors,
  );
  if (tls === undefined) return undefined;
  return { main: { ...main, ...tls }, perSecond: perSecond === undefined ? undefined : { ...perSecond, ...tls } };
}

export interface RedisGroup {
  readonly main: RedisSettings;
  readonly perSecond: RedisSettings | undefined;
}
