import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError, ConfigErrors } from '../../../src/errors.js';
import { compileConfig } from '../../../src/config/compile.js';
import type { CompiledSnapshot } from '../../../src/config/compiled.js';

/**
 * Property: whatever the input, the compiler returns a snapshot or throws ConfigError /
 * ConfigErrors; never another exception type. A returned snapshot answers findRule and dump().
 */
function compileOrConfigError(texts: readonly string[]): CompiledSnapshot | undefined {
  try {
    return compileConfig(texts.map((text, i) => ({ path: `f${i}.yaml`, text })));
  } catch (err) {
    if (err instanceof ConfigError || err instanceof ConfigErrors) {
      expect(err.message.length).toBeGreaterThan(0);
      for (const e of err instanceof ConfigErrors ? err.errors : [err]) expect(e.message.startsWith(`${e.file}: `)).toBe(true);
      return undefined;
    }
    throw err;
  }
}

const entries = fc.array(fc.record({ key: fc.string({ maxLength: 6 }), value: fc.string({ maxLength: 6 }) }), { maxLength: 4 });

function exercise(s: CompiledSnapshot, probes: readonly { key: string; value: string }[][]): void {
  expect(typeof JSON.stringify(s.dump())).toBe('string');
  for (const domain of [...s.domainNames, 'no-such-domain']) {
    for (const p of probes) {
      const r = s.findRule(domain, p);
      if (r !== undefined) expect(Object.isFrozen(r)).toBe(true);
    }
  }
}

const TOKENS = [
  'domain: d',
  'domain:',
  'descriptors:',
  '- ',
  'key: k',
  'key:',
  'value: v*',
  'value: 010',
  'rate_limit:',
  'rate_limits:',
  'unit: second',
  'unit: SECOND',
  'unit: x',
  'requests_per_unit: 5',
  'requests_per_unit: -1',
  'requests_per_unit: 1.5',
  'requests_per_unit: "5"',
  'unlimited: true',
  'unlimited: yes',
  'shadow_mode: on',
  'name: n',
  'replaces:',
  'algorithm: token_bucket',
  'burst: 3',
  'unit_multiplier: 0',
  'unit_multiplier: 99999999',
  'share_threshold: true',
  '{',
  '}',
  '[',
  ']',
  ',',
  ':',
  '&a ',
  '*a',
  '<<: *a',
  '"',
  "'",
  '#',
  '---',
  '~',
  '!!str ',
  '? ',
  '|',
  '\t',
  ' ',
  '  ',
  '    ',
  '\n',
  '\n',
  '\n',
];

const anyScalar = fc.oneof(
  fc.string({ maxLength: 8 }),
  fc.integer({ min: -5, max: 5_000_000_000 }),
  fc.double({ noNaN: false }),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom(
    'second',
    'MINUTE',
    'hour',
    'day',
    'week',
    'month',
    'year',
    'fortnight',
    'token_bucket',
    'sliding_window',
    'fixed_window',
    'a*',
    '*',
  ),
);

const KEYS = [
  ...['key', 'value', 'rate_limit', 'rate_limits', 'descriptors', 'shadow_mode', 'detailed_metric', 'value_to_metric'],
  ...[
    'share_threshold',
    'quota_mode',
    'unit',
    'requests_per_unit',
    'unlimited',
    'name',
    'replaces',
    'algorithm',
    'burst',
    'unit_multiplier',
    'domain',
    'bogus',
  ],
];

const { tree } = fc.letrec<{ tree: unknown }>((tie) => ({
  tree: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    anyScalar,
    fc.array(tie('tree'), { maxLength: 4 }),
    fc.dictionary(fc.constantFrom(...KEYS), tie('tree'), { maxKeys: 5 }),
  ),
}));

describe('fuzz: compileConfig yields a snapshot or a ConfigError/ConfigErrors, nothing else', () => {
  it('random text', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: 'binary', maxLength: 120 }), { minLength: 1, maxLength: 3 }),
        fc.array(entries, { maxLength: 3 }),
        (texts, probes) => {
          const s = compileOrConfigError(texts);
          if (s) exercise(s, probes);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('YAML-ish token soup', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.array(fc.constantFrom(...TOKENS), { maxLength: 40 }).map((t) => t.join('')),
          { minLength: 1, maxLength: 2 },
        ),
        fc.array(entries, { maxLength: 3 }),
        (texts, probes) => {
          const s = compileOrConfigError(texts);
          if (s) exercise(s, probes);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('random structures serialised as YAML', () => {
    const doc = fc.record({ domain: anyScalar, descriptors: tree }, { requiredKeys: [] });
    fc.assert(
      fc.property(fc.array(fc.oneof(doc, tree), { minLength: 1, maxLength: 2 }), fc.array(entries, { maxLength: 3 }), (docs, probes) => {
        const s = compileOrConfigError(docs.map((d) => stringify(d)));
        if (s) exercise(s, probes);
      }),
      { numRuns: 300 },
    );
  });

  it('valid generated configs: every rule is found by the entries of its own path', () => {
    // Keys and values from a small alphabet without '_' or '*', so composite keys cannot collide.
    const word = fc.stringMatching(/^[a-c]{1,2}$/);
    interface D {
      key: string;
      value?: string;
      rate_limit?: { unit: string; requests_per_unit: number };
      descriptors?: D[];
    }
    const { desc } = fc.letrec<{ desc: D }>((tie) => ({
      desc: fc.record(
        {
          key: word,
          value: word,
          rate_limit: fc.record({ unit: fc.constantFrom('second', 'minute'), requests_per_unit: fc.nat(100) }),
          descriptors: fc.array(tie('desc'), { maxLength: 3 }),
        },
        { requiredKeys: ['key'] },
      ),
    }));
    const dedupe = (ds: D[]): D[] => {
      const seen = new Set<string>();
      return ds.filter((d) => {
        const k = d.value === undefined ? d.key : `${d.key}_${d.value}`;
        if (seen.has(k)) return false;
        seen.add(k);
        if (d.descriptors) d.descriptors = dedupe(d.descriptors);
        return true;
      });
    };
    fc.assert(
      fc.property(fc.array(desc, { maxLength: 4 }), (raw) => {
        const descriptors = dedupe(raw);
        const s = compileConfig([{ path: 'g.yaml', text: stringify({ domain: 'g', descriptors }) }]);
        const visit = (ds: D[], path: { key: string; value: string }[], keyPath: string): void => {
          for (const d of ds) {
            const finalKey = d.value === undefined ? d.key : `${d.key}_${d.value}`;
            // A value-less descriptor is reached by a value no sibling names exactly.
            const value = d.value ?? 'zz';
            const p = [...path, { key: d.key, value }];
            const r = s.findRule('g', p);
            if (d.rate_limit) {
              expect(r?.ruleKey).toBe(`${keyPath}.${finalKey}`);
              expect(r?.limits[0]?.requestsPerUnit).toBe(d.rate_limit.requests_per_unit);
            } else expect(r).toBeUndefined();
            visit(d.descriptors ?? [], p, `${keyPath}.${finalKey}`);
          }
        };
        visit(descriptors, [], 'g');
      }),
      { numRuns: 200 },
    );
  });
});
