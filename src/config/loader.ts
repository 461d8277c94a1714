import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';
import type { CompiledSnapshot } from './compiled.js';
import { compileConfig, type CompileOptions } from './compile.js';
import type { ConfigFile } from './version.js';

/**
 * Reading a config directory: every `*.yaml` / `*.yml` entry directly in `dir`, following
 * symlinks, skipping names that start with `..` (Kubernetes' `..data`, `..2026_...` entries; the
 * visible files of a ConfigMap mount are symlinks through `..data`) and, unless
 * `ignoreDotFiles` is false (envoyproxy/ratelimit's RUNTIME_IGNOREDOTFILES), every other name
 * that starts with `.`. Not recursive. Files are returned sorted by name, with paths
 * `join(dir, name)`.
 */

/** How a directory is read and compiled: the compiler's options, and which names are read. */
export interface LoadOptions extends CompileOptions {
  /** Skip names starting with `.` (default true); names starting with `..` are skipped either way. */
  readonly ignoreDotFiles?: boolean;
}

export interface ReadDirResult {
  readonly files: readonly ConfigFile[];
  /** Entries skipped because their symlink target vanished (e.g. mid Kubernetes update). */
  readonly skipped: readonly string[];
}

const CONFIG_FILE = /\.ya?ml$/;

export async function readConfigDir(dir: string, options: LoadOptions = {}): Promise<ReadDirResult> {
  const hidden = options.ignoreDotFiles === false ? '..' : '.';
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => !n.startsWith(hidden) && CONFIG_FILE.test(n)).sort();
  } catch (err) {
    throw new ConfigError(dir, '', describeFsError(err, 'cannot read config directory'));
  }
  const files: ConfigFile[] = [];
  const skipped: string[] = [];
  for (const name of names) {
    const path = join(dir, name);
    try {
      files.push({ path, text: await readFile(path, 'utf8') });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // A dangling symlink (target removed) or an entry removed between readdir and read.
      if (code === 'ENOENT') skipped.push(path);
      // A directory named like a config file is not a config file.
      else if (code !== 'EISDIR') throw new ConfigError(path, '', describeFsError(err, 'cannot read file'));
    }
  }
  if (files.length === 0) {
    throw new ConfigError(dir, '', 'no *.yaml or *.yml files in the config directory');
  }
  return { files, skipped };
}

/** Reads and compiles a config directory. Throws `ConfigError` / `ConfigErrors`. */
export async function loadConfigDir(dir: string, options?: LoadOptions): Promise<CompiledSnapshot> {
  const { files } = await readConfigDir(dir, options);
  return compileConfig(files, options);
}

function describeFsError(err: unknown, what: string): string {
  const e = err as NodeJS.ErrnoException;
  switch (e.code) {
    case 'ENOENT':
      return `${what}: it does not exist`;
    case 'ENOTDIR':
      return `${what}: not a directory`;
    case 'EACCES':
    case 'EPERM':
      return `${what}: permission denied`;
    default:
      return `${what}: ${e.code ?? ''} ${e.message}`.replace(/\s+/g, ' ').trim();
  }
}
