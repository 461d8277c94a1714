import { describe, expect, it } from 'vitest';
import { RESOLUTION_OUTCOMES } from '../../../src/resolve/outcome.js';
import { createMetrics } from '../../../src/telemetry/metrics.js';

describe('resolution metrics', () => {
  it('count resolutions by domain and outcome, cache lookups and JWKS loads', async () => {
    const m = createMetrics({ collectDefault: false });
    m.resolution('edge', 'verified');
    m.resolution('edge', 'verified');
    m.resolution('edge', 'fallback_expired');
    m.resolution('api', 'fallback_invalid');
    m.resolutionCacheLookup('edge', true);
    m.resolutionCacheLookup('edge', false);
    m.resolutionCacheLookup('edge', true);
    m.jwksRefresh('edge', true);
    m.jwksRefresh('edge', false);
    const text = await m.render();
    const lines = text.split('\n').filter((l) => /^meshlimit_(resolutions|resolution_cache_lookups|jwks_refreshes)_total\{/.test(l));
    expect(lines.filter((l) => !l.endsWith(' 0'))).toEqual([
      'meshlimit_resolutions_total{domain="edge",outcome="verified"} 2',
      'meshlimit_resolutions_total{domain="edge",outcome="fallback_expired"} 1',
      'meshlimit_resolutions_total{domain="api",outcome="fallback_invalid"} 1',
      'meshlimit_resolution_cache_lookups_total{domain="edge",outcome="hit"} 2',
      'meshlimit_resolution_cache_lookups_total{domain="edge",outcome="miss"} 1',
      'meshlimit_jwks_refreshes_total{domain="edge",outcome="success"} 1',
      'meshlimit_jwks_refreshes_total{domain="edge",outcome="failure"} 1',
    ]);
    expect(RESOLUTION_OUTCOMES).toEqual([
      'verified',
      'fallback_missing',
      'fallback_malformed',
      'fallback_invalid',
      'fallback_expired',
      'fallback_unknown_key',
      'fallback_no_claim',
    ]);
  });
});
