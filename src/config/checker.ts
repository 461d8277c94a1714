import { describeNode as describe, quoteText as q, type YMap, type YNode, type YScalar } from './yaml-tree.js';

/**
 * The checker every schema module reports through: errors and warnings as `(field, detail)`,
 * and the typed field readers with yaml.v2's semantics (upstream decodes its config with it).
 */

export interface Problem {
  readonly field: string;
  readonly detail: string;
}

const UINT32_MAX = 4_294_967_295;

/**
 * ` (line N)` for a message about line N; empty for line 0, the line of every node of a tree that
 * did not come from YAML text (an xDS resource translated by ./xds-resources.ts has no lines).
 */
export const at = (line: number): string => (line > 0 ? ` (line ${line})` : '');

export const join = (path: string, key: string): string => (path ? `${path}.${key}` : key);

export class Checker {
  readonly errors: Problem[] = [];
  readonly warnings: Problem[] = [];

  error(field: string, detail: string): void {
    this.errors.push({ field, detail });
  }

  warn(field: string, detail: string): void {
    this.warnings.push({ field, detail });
  }

  /** Reports unknown and duplicate keys of a mapping. */
  keys(map: YMap, path: string, allowed: readonly string[]): void {
    for (const d of map.duplicates) {
      this.error(join(path, d.key), `duplicate key${at(d.line)}; first defined on line ${d.firstLine}`);
    }
    for (const line of map.complexKeyLines) this.error(path, `mapping keys must be strings${at(line)}`);
    for (const [key, entry] of map.entries) {
      if (!allowed.includes(key)) {
        this.error(join(path, key), `unknown key ${q(key)}${at(entry.keyLine)}; allowed here: ${allowed.join(', ')}`);
      }
    }
  }

  /**
   * A string field, decoded like yaml.v2: any scalar gives its source text, null gives ''.
   * Returns undefined (after reporting) for a mapping or list.
   */
  str(node: YNode, path: string): string | undefined {
    if (node.kind !== 'scalar') {
      this.error(path, `must be a string, got ${describe(node)}${at(node.line)}`);
      return undefined;
    }
    if (node.value === null) return '';
    if (typeof node.value === 'string') return node.value;
    return node.source;
  }

  bool(node: YNode | undefined, path: string): boolean {
    if (node === undefined) return false;
    if (node.kind === 'scalar') {
      if (node.value === null) return false;
      if (typeof node.value === 'boolean' && !node.quoted) return node.value;
    }
    this.error(path, `must be a boolean (true or false), got ${describe(node)}${at(node.line)}`);
    return false;
  }

  /** An unsigned 32-bit integer field (yaml.v2 `uint32`): no floats, no quoted numbers. */
  uint(node: YNode, path: string, min: number): number | undefined {
    if (isInteger(node)) {
      const v = (node as YScalar).value as number;
      if (v >= min && v <= UINT32_MAX) return v;
    }
    const what = min === 0 ? 'a non-negative integer' : `an integer >= ${min}`;
    this.error(path, `must be ${what} (at most ${UINT32_MAX}), got ${describe(node)}${at(node.line)}`);
    return undefined;
  }
}

export function isInteger(node: YNode): boolean {
  if (node.kind !== 'scalar' || node.quoted || typeof node.value !== 'number') return false;
  if (!Number.isSafeInteger(node.value)) return false;
  // 10.0 resolves to the integer 10 in JS, but it is a YAML float, which upstream rejects.
  return !/[.]|^[-+]?[0-9_]*[eE]/.test(node.source);
}
