import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseAllDocuments, type Document, type Node } from 'yaml';

/**
 * YAML text -> a small positional tree ({@link YNode}) that the schema checks walk.
 *
 * Why not `doc.toJS()` + a schema library: envoyproxy/ratelimit decodes with Go's yaml.v2 (YAML
 * 1.1), which puts the *source text* of any scalar into a string field (`value: 010` is the
 * string "010", `value: yes` is "yes"), while a JS conversion would give 8 and true. Keeping each
 * scalar's source and line lets the checks mirror that exactly and name lines in errors.
 *
 * YAML 1.1 is used on purpose (yaml.v2 compatibility): `yes/no/on/off` are booleans, `<<` merge
 * keys and anchors/aliases work. Only the first document of a multi-document file is used, as
 * yaml.v2 does; the caller is told so it can warn.
 */

export type YNode = YMap | YSeq | YScalar;

/** Quotes user text in an error message, clipped so a huge value cannot flood logs. */
export const quoteText = (text: string): string => `'${text.length > 60 ? `${text.slice(0, 57)}...` : text}'`;

/** What a node is, for an error message ("a mapping", "string '5'", "'true'", ...). */
export function describeNode(node: YNode): string {
  if (node.kind === 'map') return 'a mapping';
  if (node.kind === 'seq') return 'a list';
  if (node.value === null) return 'null';
  if (node.quoted || typeof node.value === 'string') return `string ${quoteText(node.source)}`;
  return quoteText(node.source);
}

export interface YMap {
  readonly kind: 'map';
  readonly line: number;
  /** Entries in source order; merge (`<<`) entries are expanded, explicit keys win. */
  readonly entries: ReadonlyMap<string, YEntry>;
  /** Keys that appeared more than once (explicitly), with the line of each repeat. */
  readonly duplicates: readonly { readonly key: string; readonly line: number; readonly firstLine: number }[];
  /** Keys that are not scalars (a mapping or sequence used as a key). */
  readonly complexKeyLines: readonly number[];
}

export interface YEntry {
  readonly keyLine: number;
  readonly value: YNode;
}

export interface YSeq {
  readonly kind: 'seq';
  readonly line: number;
  readonly items: readonly YNode[];
}

export interface YScalar {
  readonly kind: 'scalar';
  readonly line: number;
  /** The YAML 1.1 value: string, number, boolean, null, or a Date for timestamps. */
  readonly value: unknown;
  /** Source text (unescaped for quoted scalars); '' for an empty value. */
  readonly source: string;
  /** True for quoted or block scalars: their value is always a string. */
  readonly quoted: boolean;
}

export type YamlReadResult =
  | { readonly ok: true; readonly root: YNode | null; readonly extraDocuments: number; readonly yamlDuplicateKeyLines: readonly number[] }
  | { readonly ok: false; readonly line: number; readonly column: number; readonly message: string; readonly syntax: boolean };

/** Bounds against alias bombs and alias cycles (an anchor used inside itself). */
const MAX_NODES = 100_000;
const MAX_DEPTH = 64;

class TreeLimitError extends Error {}

export function readYaml(text: string): YamlReadResult {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, {
    version: '1.1',
    merge: true,
    uniqueKeys: true,
    prettyErrors: false,
    lineCounter,
  });
  // parseAllDocuments returns an EmptyStream (an array with `empty`) for blank input.
  const first = docs[0];
  if (first === undefined) return { ok: true, root: null, extraDocuments: 0, yamlDuplicateKeyLines: [] };
  const duplicateKeyLines: number[] = [];
  for (const err of first.errors) {
    const pos = lineCounter.linePos(err.pos[0]);
    if (err.code === 'DUPLICATE_KEY') {
      // Reported with a field path by the tree walk below; kept as a fallback.
      duplicateKeyLines.push(pos.line);
      continue;
    }
    return { ok: false, line: pos.line, column: pos.col, message: err.message, syntax: true };
  }
  const walker = new Walker(first, lineCounter);
  try {
    const root = first.contents === null ? null : walker.node(first.contents as Node, 0);
    return { ok: true, root, extraDocuments: docs.length - 1, yamlDuplicateKeyLines: duplicateKeyLines };
  } catch (err) {
    if (err instanceof TreeLimitError) {
      const line = walker.lastLine;
      return { ok: false, line, column: 1, message: err.message, syntax: false };
    }
    throw err;
  }
}

class Walker {
  private count = 0;
  lastLine = 1;

  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  private lineOf(node: { range?: readonly number[] | null | undefined } | null | undefined): number {
    const offset = node?.range?.[0];
    return offset === undefined ? this.lastLine : this.lines.linePos(offset).line;
  }

  node(raw: Node | null | undefined, depth: number): YNode {
    if (++this.count > MAX_NODES) throw new TreeLimitError(`document expands to more than ${MAX_NODES} nodes (alias expansion)`);
    if (depth > MAX_DEPTH) throw new TreeLimitError(`nesting deeper than ${MAX_DEPTH} levels (or an alias that refers to itself)`);
    if (raw === null || raw === undefined) return { kind: 'scalar', line: this.lastLine, value: null, source: '', quoted: false };
    const line = this.lineOf(raw);
    this.lastLine = line;
    if (isAlias(raw)) {
      const target = raw.resolve(this.doc);
      return this.node(target as Node | undefined, depth + 1);
    }
    if (isScalar(raw)) {
      const quoted = raw.type !== undefined && raw.type !== 'PLAIN';
      const source = typeof raw.source === 'string' ? raw.source : raw.value === null ? '' : String(raw.value);
      return { kind: 'scalar', line, value: raw.value, source, quoted };
    }
    if (isSeq(raw)) {
      return { kind: 'seq', line, items: raw.items.map((it) => this.node(it as Node, depth + 1)) };
    }
    if (isMap(raw)) return this.map(raw.items, line, depth);
    // Unknown node kinds do not occur for parsed documents; treat as null.
    return { kind: 'scalar', line, value: null, source: '', quoted: false };
  }

  private map(items: readonly unknown[], line: number, depth: number): YMap {
    const entries = new Map<string, YEntry>();
    const duplicates: { key: string; line: number; firstLine: number }[] = [];
    const complexKeyLines: number[] = [];
    const merges: Node[] = [];
    for (const pair of items) {
      if (!isPair(pair)) continue;
      const key = pair.key as Node | null;
      const keyLine = key ? this.lineOf(key) : line;
      if (isScalar(key) && typeof key.value === 'symbol') {
        merges.push(pair.value as Node);
        continue;
      }
      let name: string;
      if (key === null || key === undefined) name = '';
      else if (isScalar(key))
        name = typeof key.value === 'string' ? key.value : typeof key.source === 'string' ? key.source : String(key.value);
      else if (isAlias(key)) {
        const target = key.resolve(this.doc);
        if (isScalar(target)) name = String(target.value);
        else {
          complexKeyLines.push(keyLine);
          continue;
        }
      } else {
        complexKeyLines.push(keyLine);
        continue;
      }
      const seen = entries.get(name);
      if (seen !== undefined) {
        duplicates.push({ key: name, line: keyLine, firstLine: seen.keyLine });
        continue;
      }
      entries.set(name, { keyLine, value: this.node(pair.value as Node, depth + 1) });
    }
    // YAML merge keys: explicit keys win; among merged maps, earlier ones win.
    for (const m of merges) {
      const src = this.node(m, depth + 1);
      const sources = src.kind === 'seq' ? src.items : [src];
      for (const s of sources) {
        if (s.kind !== 'map') continue;
        for (const [k, v] of s.entries) if (!entries.has(k)) entries.set(k, v);
      }
    }
    return { kind: 'map', line, entries, duplicates, complexKeyLines };
  }
}
