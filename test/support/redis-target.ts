import type { RedisAddress } from '../../src/backend/index.js';
import { parseEndpoint } from '../../src/settings/index.js';

/**
 * The addresses of a harness's `host:port[,host:port...]` string (a standalone server's `url`, a
 * cluster's `seeds`), parsed by the settings' own REDIS_URL parser: the backends take typed
 * addresses, never a string.
 */
export function redisNodes(list: string): RedisAddress[] {
  return list.split(',').map((item) => parseEndpoint(item.trim()).node);
}
