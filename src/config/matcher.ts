import type { DescriptorEntry } from '../limiter/types.js';
import type { CompiledRule, MatchStep, MatchTrace, NodeSource } from './compiled.js';

/**
 * The compiled descriptor tree and envoyproxy/ratelimit's `GetLimit` walk over it.
 *
 * Upstream keys each level's map by `key` (descriptor without value) or `key_value`, and looks a
 * request entry up as `key_value`, then the level's wildcard patterns in config order, then the
 * bare `key`. We keep that string scheme on purpose, quirks included (a config `key: a_b` and a
 * request entry `(a, b)` meet at "a_b"), so every config matches exactly as it does upstream.
 *
 * Hot path: one string concatenation and one or two Map lookups per request entry; wildcard
 * patterns are split once at compile time and matched without allocation.
 */
export interface MatchNode {
  /** Children by `key` or `key_value`; undefined when the descriptor has no nested descriptors. */
  readonly children: ReadonlyMap<string, MatchNode> | undefined;
  /** Children whose `key_value` contains `*`, in config order. */
  readonly wildcards: readonly WildcardChild[];
  readonly rule: CompiledRule | undefined;
  /** Where the descriptor that made this node is written (the root has none). */
  readonly source?: NodeSource | undefined;
}

export interface WildcardChild {
  /** The child's `key_value` pattern as written, e.g. `path_/api/*`. */
  readonly pattern: string;
  /** The pattern split on `*` (at least two parts). */
  readonly parts: readonly string[];
  readonly node: MatchNode;
}

/**
 * Glob match where each `*` matches any run of characters (upstream `wildcardMatch`). A single
 * trailing `*` is a plain prefix test, identical to the older upstream `strings.HasPrefix` rule.
 */
export function wildcardMatch(parts: readonly string[], value: string): boolean {
  const n = parts.length;
  const first = parts[0]!;
  if (n === 1) return first === value;
  const last = parts[n - 1]!;
  if (!value.startsWith(first)) return false;
  if (n === 2 && last === '') return true;
  if (!value.endsWith(last)) return false;
  let fixed = 0;
  for (let i = 0; i < n; i++) fixed += parts[i]!.length;
  if (value.length < fixed) return false;
  let from = first.length;
  const end = value.length - last.length;
  for (let i = 1; i < n - 1; i++) {
    const part = parts[i]!;
    const idx = value.indexOf(part, from);
    if (idx < 0 || idx + part.length > end) return false;
    from = idx + part.length;
  }
  return true;
}

/** Upstream `GetLimit` without the per-request limit override (the limiter handles that). */
export function matchRule(root: MatchNode, entries: readonly DescriptorEntry[]): CompiledRule | undefined {
  let level = root;
  let rule: CompiledRule | undefined;
  const last = entries.length - 1;
  for (let i = 0; i <= last; i++) {
    const children = level.children;
    if (children === undefined) break;
    const entry = entries[i]!;
    const finalKey = `${entry.key}_${entry.value}`;
    let next = children.get(finalKey);
    if (next === undefined) {
      const wildcards = level.wildcards;
      for (let w = 0; w < wildcards.length; w++) {
        const wc = wildcards[w]!;
        if (wildcardMatch(wc.parts, finalKey)) {
          next = wc.node;
          break;
        }
      }
      if (next === undefined) next = children.get(entry.key);
    }
    if (next === undefined) break;
    // A rule applies only when it sits at the request's last entry.
    if (i === last && next.rule !== undefined) rule = next.rule;
    level = next;
  }
  return rule;
}

/**
 * {@link matchRule}'s walk, recorded: the same lookups in the same order (so it cannot disagree
 * with the request path; test/unit/config/trace-match.test.ts checks both on every fixture), with
 * the config descriptor each entry met. Allocates freely: explain only.
 */
export function traceMatch(root: MatchNode, entries: readonly DescriptorEntry[]): MatchTrace {
  const steps: MatchStep[] = [];
  const onTheWay: string[] = [];
  if (entries.length === 0) return { matched: false, reason: 'no_entries', entry: -1, rulesOnTheWay: onTheWay, steps };
  let level = root;
  const last = entries.length - 1;
  for (let i = 0; i <= last; i++) {
    const children = level.children;
    const entry = entries[i]!;
    const finalKey = `${entry.key}_${entry.value}`;
    let next: MatchNode | undefined;
    let via: MatchStep['via'] = 'exact';
    let configKey = finalKey;
    if (children !== undefined) {
      next = children.get(finalKey);
      if (next === undefined) {
        for (const wc of level.wildcards) {
          if (wildcardMatch(wc.parts, finalKey)) {
            next = wc.node;
            via = 'wildcard';
            configKey = wc.pattern;
            break;
          }
        }
      }
      if (next === undefined) {
        next = children.get(entry.key);
        via = 'key';
        configKey = entry.key;
      }
    }
    if (next === undefined) return { matched: false, reason: 'entry_not_matched', entry: i, rulesOnTheWay: onTheWay, steps };
    steps.push({ entry: i, via, configKey, source: next.source });
    if (i === last) {
      if (next.rule !== undefined) return { matched: true, rule: next.rule, steps };
      return { matched: false, reason: 'not_at_last_entry', entry: i, rulesOnTheWay: onTheWay, steps };
    }
    if (next.rule !== undefined) onTheWay.push(next.rule.ruleKey);
    level = next;
  }
  /* c8 ignore next */
  throw new Error('unreachable');
}
