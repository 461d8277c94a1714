import { createHash } from 'node:crypto';

/** One config file as read: its path (as it should appear in messages) and its text. */
export interface ConfigFile {
  readonly path: string;
  readonly text: string;
}

/**
 * Content version of a set of files: sha256 (hex) over the (path, text) pairs sorted by path,
 * each field length-prefixed so no two different sets can hash the same input. Independent of
 * the order the files were listed in.
 */
export function contentVersion(files: readonly ConfigFile[]): string {
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const h = createHash('sha256');
  for (const f of sorted) {
    h.update(`${Buffer.byteLength(f.path)}:`);
    h.update(f.path);
    h.update(`${Buffer.byteLength(f.text)}:`);
    h.update(f.text);
  }
  return h.digest('hex');
}
