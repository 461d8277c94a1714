import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileText } from './helpers.js';

/**
 * `traceMatch` (explain's recorded walk) against `findRule` (the request path): the same rule or
 * the same absence on every request descriptor, so explain can never name a rule a decision
 * would not apply. Requests are drawn from the config's own keys and values plus strangers.
 */
const CONFIG = `
domain: d
descriptors:
  - key: a
    value: x
    descriptors:
      - key: b
        rate_limit: {unit: second, requests_per_unit: 5}
      - key: b
        value: y*
        rate_limit: {unit: second, requests_per_unit: 6}
  - key: a
    rate_limit: {unit: minute, requests_per_unit: 20}
    descriptors:
      - key: c
        descriptors:
          - key: b
            rate_limit: {unit: minute, requests_per_unit: 2}
  - key: b
    value: "*z"
    rate_limit: {unit: minute, requests_per_unit: 1}
  - key: c
    value: q
    rate_limit: {unlimited: true}
`;

describe('traceMatch', () => {
  const snapshot = compileText(CONFIG);
  const entry = fc.record({ key: fc.constantFrom('a', 'b', 'c', 'zz'), value: fc.constantFrom('x', 'y', 'yes', 'z', 'qz', 'q', '') });

  it('matches exactly what findRule matches, and says why when nothing does', () => {
    fc.assert(
      fc.property(fc.array(entry, { minLength: 0, maxLength: 4 }), (entries) => {
        const rule = snapshot.findRule('d', entries);
        const trace = snapshot.traceMatch('d', entries)!;
        expect(trace.matched ? trace.rule : undefined).toBe(rule);
        if (!trace.matched)
          expect(trace.reason).toBe(
            entries.length === 0 ? 'no_entries' : trace.steps.length === entries.length ? 'not_at_last_entry' : 'entry_not_matched',
          );
        else expect(trace.steps).toHaveLength(entries.length);
      }),
      { numRuns: 2000 },
    );
  });

  it('records each step with its config source', () => {
    const t = snapshot.traceMatch('d', [
      { key: 'a', value: 'x' },
      { key: 'b', value: 'yes' },
    ])!;
    expect(t).toMatchObject({
      matched: true,
      rule: { ruleKey: 'd.a_x.b_y*', file: 'test.yaml', path: 'descriptors[0].descriptors[1]', line: 9 },
    });
    expect(t.steps).toEqual([
      { entry: 0, via: 'exact', configKey: 'a_x', source: { file: 'test.yaml', path: 'descriptors[0]', line: 4 } },
      { entry: 1, via: 'wildcard', configKey: 'b_y*', source: { file: 'test.yaml', path: 'descriptors[0].descriptors[1]', line: 9 } },
    ]);
    expect(snapshot.traceMatch('nope', [{ key: 'a', value: 'x' }])).toBeUndefined();
  });
});
