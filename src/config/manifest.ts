import { isMap, isScalar, parseAllDocuments, Scalar, type Document } from 'yaml';
import { ConfigError } from '../errors.js';
import type { ConfigFile } from './version.js';

/**
 * Config files inside a Kubernetes ConfigMap manifest (`kind: ConfigMap`, possibly among other
 * documents, as `kustomize build` prints them), so `meshlimit check-config` checks what will be
 * mounted without yq or jq. Each `data` key ending in `.yaml`/`.yml` is one file, named by its
 * key (its name once mounted, so the config version is the one the pod will show); messages name
 * the manifest, the ConfigMap and the key. A key written as a literal block (`|`) keeps its
 * lines, so {@link ManifestFile.lineOffset} turns a line of the file into a line of the manifest.
 */
export interface ManifestFile extends ConfigFile {
  /** Manifest line = file line + lineOffset; undefined when the value is not a literal block. */
  readonly lineOffset: number | undefined;
}

const CONFIG_KEY = /\.ya?ml$/;
/** Most documents read from one manifest. */
export const MAX_MANIFEST_DOCUMENTS = 1000;

/**
 * The ConfigMap documents of `text`, or undefined when it holds none (it is then a plain config
 * file). `only`: the ConfigMap's name, required when several hold YAML keys. Throws ConfigError.
 */
export function configMapFiles(manifestPath: string, text: string, only?: string): ManifestFile[] | undefined {
  const docs = parseAllDocuments(text);
  if (!Array.isArray(docs)) return undefined;
  if (docs.length > MAX_MANIFEST_DOCUMENTS) throw new ConfigError(manifestPath, '', `more than ${MAX_MANIFEST_DOCUMENTS} YAML documents`);
  const maps = docs.filter((d) => d.errors.length === 0 && isMap(d.contents) && d.get('kind') === 'ConfigMap');
  if (maps.length === 0) return undefined;
  const lineOf = lineCounter(text);
  const byName = new Map<string, ManifestFile[]>();
  for (const doc of maps) {
    const name = String((doc.getIn(['metadata', 'name']) as unknown) ?? '(no name)');
    if (only !== undefined && name !== only) continue;
    const files = filesOf(doc, manifestPath, name, lineOf);
    if (files.length > 0) byName.set(name, [...(byName.get(name) ?? []), ...files]);
  }
  if (byName.size === 0) {
    const which = only === undefined ? 'no ConfigMap' : `no ConfigMap named ${only}`;
    throw new ConfigError(manifestPath, '', `${which} in the manifest has a data key ending in .yaml or .yml`);
  }
  if (byName.size > 1) {
    throw new ConfigError(
      manifestPath,
      '',
      `several ConfigMaps hold YAML keys (${[...byName.keys()].join(', ')}); choose one with --configmap NAME`,
    );
  }
  return [...byName.values()][0]!;
}

function filesOf(doc: Document, manifestPath: string, name: string, lineOf: (offset: number) => number): ManifestFile[] {
  const data = doc.get('data', true);
  if (!isMap(data)) return [];
  const out: ManifestFile[] = [];
  for (const pair of data.items) {
    const key = isScalar(pair.key) ? String(pair.key.value) : '';
    if (!CONFIG_KEY.test(key)) continue;
    const path = `${manifestPath}: ConfigMap ${name}, data.${key}`;
    if (!isScalar(pair.value) || typeof pair.value.value !== 'string') {
      throw new ConfigError(path, '', 'the value must be a string (the file\'s text, e.g. written as "key: |")');
    }
    const v = pair.value;
    // A literal block's text starts on the line after its header (`edge.yaml: |`).
    const literal = v.type === Scalar.BLOCK_LITERAL && v.range !== undefined && v.range !== null;
    out.push({ path, name: key, text: v.value as string, lineOffset: literal ? lineOf(v.range![0]) : undefined });
  }
  return out;
}

/** 1-based line of a character offset. */
function lineCounter(text: string): (offset: number) => number {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) starts.push(i + 1);
  return (offset) => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  };
}

/** A message about `file`, its file lines (`line N`) also given as manifest lines. */
export function withManifestLines(message: string, file: ManifestFile): string {
  const offset = file.lineOffset;
  if (offset === undefined || !message.startsWith(file.path)) return message;
  const m = (n: string): number => Number(n) + offset;
  return message
    .replace(/\(line (\d+)\)/g, (_s, n: string) => `(line ${n}, manifest line ${m(n)})`)
    .replace(/\b(at|on) line (\d+)/g, (_s, w: string, n: string) => `${w} line ${n} (manifest line ${m(n)})`);
}
