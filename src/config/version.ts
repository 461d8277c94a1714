import { createHash } from 'node:crypto';
import { basename } from 'node:path';

/** One config file as read: its path (as it should appear in messages) and its text. */
export interface ConfigFile {
  readonly path: string;
  readonly text: string;
  /**
   * The file's name within its config directory, which the version hashes; defaults to the
   * path's last segment. A file taken from a ConfigMap manifest is named by its data key, the
   * name it has once the ConfigMap is mounted.
   */
  readonly name?: string | undefined;
}

/**
 * Content version of a set of files: sha256 (hex) over the (name, text) pairs sorted by name,
 * each field length-prefixed so no two different sets can hash the same input. Independent of
 * the order the files were listed in and of the directory they were read from: the same files
 * give the same version in `check-config` on a CI checkout, in a pod's `/rlconfig`, its reload
 * log lines and its `meshlimit_config_info` metric.
 */
export function contentVersion(files: readonly ConfigFile[]): string {
  const named = files.map((f) => ({ name: f.name ?? basename(f.path), text: f.text }));
  named.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const h = createHash('sha256');
  for (const f of named) {
    h.update(`${Buffer.byteLength(f.name)}:`);
    h.update(f.name);
    h.update(`${Buffer.byteLength(f.text)}:`);
    h.update(f.text);
  }
  return h.digest('hex');
}
