import { describe, expect, it } from 'vitest';
import { parseRequestCounts } from '../../benchmarks/lib/targets.js';

/**
 * What broke: `benchmarks/ab-builds.ts --base 634d4dc` reported 26,000-40,000 errors per pair of
 * runs. The base build labels meshlimit_requests_total with `code` (the label became `outcome` on
 * 2026-12-06); the harness read only `outcome`, so none of the base's answers were counted and
 * every request it answered was reported as unanswered, an error. The harness now reads both.
 */
describe('bench harness: an older build labelled meshlimit_requests_total with code', () => {
  it('counts its answers and its real errors', () => {
    const text = [
      'meshlimit_requests_total{code="ok"} 7',
      'meshlimit_requests_total{code="over_limit"} 2',
      'meshlimit_requests_total{code="deadline_exceeded"} 1',
    ].join('\n');
    expect(parseRequestCounts(text)).toEqual({ ok: 7, overLimit: 2, errors: 1, errorsByCode: { deadline_exceeded: 1 } });
  });
});
