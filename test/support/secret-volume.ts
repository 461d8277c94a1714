import { copyFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * A directory laid out as the kubelet lays out a mounted Secret (what cert-manager rotates and
 * Envoy Gateway mounts at /certs): each key a symlink `<key> -> ..data/<key>`, `..data` a symlink
 * to a timestamped directory holding the files. An update writes a new timestamped directory and
 * renames a new `..data` link over the old one (one atomic swap of every file), then deletes the
 * old directory, as the kubelet's AtomicWriter does.
 */
export interface SecretVolume {
  readonly dir: string;
  /** The path a setting names: `<dir>/<key>`. */
  path(key: string): string;
  /** Replaces the whole Secret: key -> the file whose bytes it gets. */
  update(files: Readonly<Record<string, string>>): void;
  remove(): void;
}

export function secretVolume(files: Readonly<Record<string, string>>): SecretVolume {
  const dir = mkdtempSync(path.join(tmpdir(), 'meshlimit-secret-'));
  let generation = 0;
  let current: string | undefined;
  const update = (next: Readonly<Record<string, string>>): void => {
    const name = `..2026_12_06_${String(++generation).padStart(4, '0')}`;
    mkdirSync(path.join(dir, name));
    for (const [key, from] of Object.entries(next)) copyFileSync(from, path.join(dir, name, key));
    symlinkSync(name, path.join(dir, '..data_tmp'));
    renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
    for (const key of Object.keys(next)) {
      try {
        symlinkSync(path.join('..data', key), path.join(dir, key));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
    if (current !== undefined) rmSync(path.join(dir, current), { recursive: true, force: true });
    current = name;
  };
  update(files);
  return { dir, path: (key) => path.join(dir, key), update, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
