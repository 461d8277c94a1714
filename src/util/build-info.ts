import { readFileSync } from 'node:fs';

/**
 * What this meshlimit is: the package version (package.json, read at run time so it is never
 * stale), the git description and commit of the tree it was built from when `npm run build` could
 * ask git (`dist/build-info.json`, written by scripts/build-info.mjs; nothing generated is
 * committed, and an image built without `.git` simply has no commit), and the Node.js running it.
 * Shown by `meshlimit --version`, the start-up log line and the `meshlimit_build_info` metric.
 */
export interface BuildInfo {
  readonly version: string;
  /** `git describe --tags --always --dirty` at build time; undefined when unknown. */
  readonly gitDescribe: string | undefined;
  /** Full commit hash at build time; undefined when unknown. */
  readonly commit: string | undefined;
  readonly nodeVersion: string;
}

let cached: BuildInfo | undefined;

export function buildInfo(): BuildInfo {
  cached ??= Object.freeze({
    version: readJson<{ version?: unknown }>(new URL('../../package.json', import.meta.url))?.version as string,
    ...gitInfo(readJson<{ gitDescribe?: unknown; commit?: unknown }>(new URL('../build-info.json', import.meta.url))),
    nodeVersion: process.version,
  });
  return cached;
}

/** `0.1.0 (v0.1.0-3-gabc1234, node v20.19.0)`: one line for humans. */
export function describeBuild(info: BuildInfo = buildInfo()): string {
  const parts = [info.gitDescribe ?? info.commit?.slice(0, 12), `node ${info.nodeVersion}`].filter((p) => p !== undefined);
  return `${info.version} (${parts.join(', ')})`;
}

function gitInfo(raw: { gitDescribe?: unknown; commit?: unknown } | undefined): Pick<BuildInfo, 'gitDescribe' | 'commit'> {
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
  return { gitDescribe: str(raw?.gitDescribe), commit: str(raw?.commit) };
}

function readJson<T>(url: URL): T | undefined {
  try {
    return JSON.parse(readFileSync(url, 'utf8')) as T;
  } catch {
    return undefined;
  }
}
