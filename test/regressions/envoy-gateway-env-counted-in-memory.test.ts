import { describe, expect, it } from 'vitest';
import { loadSettings } from '../../src/settings/index.js';

/**
 * What broke: Envoy Gateway's rate-limit Deployment sets REDIS_URL and never BACKEND_TYPE
 * (envoyproxy/ratelimit defaults to redis). meshlimit defaulted to memory, so under Envoy
 * Gateway each replica counted on its own and admitted the whole limit, silently. Unset,
 * BACKEND_TYPE now follows REDIS_URL.
 */
describe('BACKEND_TYPE unset', () => {
  it('is redis when REDIS_URL is set, as in Envoy Gateway environment', () => {
    const s = loadSettings({ REDIS_SOCKET_TYPE: 'tcp', REDIS_URL: 'envoy-gateway-redis.envoy-gateway-system.svc.cluster.local:6379' });
    expect(s.backend.type).toBe('redis');
  });

  it('stays memory without REDIS_URL (npm start needs nothing else), and an explicit value wins', () => {
    expect(loadSettings({}).backend.type).toBe('memory');
    expect(loadSettings({ BACKEND_TYPE: 'memory', REDIS_URL: '127.0.0.1:6379' }).backend.type).toBe('memory');
  });
});
