import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ALGORITHMS, type Algorithm } from '../../limiter/types.js';
import { SCRIPT_CODE } from './script-format.js';

/**
 * The Lua assembler: reads `lua/*.lua` and assembles the scripts the Redis backends run
 * (evaluate for several ops, evaluate-one per algorithm for a single op, evaluate-batch for
 * several requests, and refund for the cluster backend). How the scripts are called (KEYS/ARGV,
 * replies) is in script-format.ts and batch-format.ts, how they are registered with ioredis in
 * script-commands.ts; the contracts of the scripts themselves are the headers of `lua/evaluate.lua`,
 * `lua/evaluate-one.lua`, `lua/evaluate-batch.lua` and `lua/refund.lua`.
 *
 * Why several scripts, and splicing: Redis CPU per decision is the cost that scales with traffic,
 * and a script pays on every call for every closure it creates, every Lua function it calls and
 * every argument it is sent. The common request (one descriptor, one limit) runs a script holding
 * only its algorithm's arithmetic, inline; the math still lives once, in the @decode, @step,
 * @encode and @refund sections of `lua/<algorithm>.lua` (see benchmarks/redis-cpu for the figures).
 * What several drivers share is written once in `lua/includes/` and included textually by an
 * `-- @include "includes/<name>.lua"` line ({@link expandIncludes}), for the same reason.
 * `npm run -s print-lua -- <script>` prints an assembled script exactly as Redis runs it.
 */

/**
 * Finds the `lua/` directory: walks up from this module (src/backend/redis under tsx and vitest,
 * dist/backend/redis after a build) to the first directory holding both `package.json` and
 * `lua/evaluate.lua`. A deployment must therefore ship `lua/` next to `package.json`.
 */
export function findLuaDir(from: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'lua', 'evaluate.lua'))) {
      return join(dir, 'lua');
    }
    const parent = dirname(dir);
    if (parent === dir) {
      throw new Error(`meshlimit: cannot find lua/evaluate.lua above ${from} (lua/ must ship next to package.json)`);
    }
    dir = parent;
  }
}

/** The file of each algorithm's math (its @decode, @step, @encode and @refund sections). */
const ALGORITHM_FILES: Readonly<Record<Algorithm, string>> = Object.freeze({
  fixed_window: 'fixed-window.lua',
  sliding_window: 'sliding-window.lua',
  token_bucket: 'token-bucket.lua',
});

export interface AssembledScript {
  readonly source: string;
  /** SHA1 of `source` (what EVALSHA uses); computed, never hard-coded. */
  readonly sha1: string;
}

/** Every evaluate script: one per algorithm for single-op requests, one for several ops. */
export interface EvaluateScripts {
  /** lua/evaluate.lua with the three @step sections: several ops, and every cluster call of a split request. */
  readonly multi: AssembledScript;
  /** lua/evaluate-one.lua with one @step section: a request of exactly one op. */
  readonly one: Readonly<Record<Algorithm, AssembledScript>>;
  /** lua/evaluate-batch.lua with the three decisions and the run loops: several requests in one call. */
  readonly batch: AssembledScript;
}

/** The sections of an algorithm file, in file order (see the contract in lua/fixed-window.lua). */
type Section = 'decode' | 'step' | 'encode' | 'refund';
const SECTIONS: readonly Section[] = ['decode', 'step', 'encode', 'refund'];

/**
 * The sections of an algorithm file: the lines after each of its `-- @decode`, `-- @step`,
 * `-- @encode` and `-- @refund` lines, which it must have once each, in that order (see the
 * contract in lua/fixed-window.lua). Each is returned alone; {@link splice} combines them.
 */
export function algorithmSections(source: string, file = 'algorithm file'): Readonly<Record<Section, string>> {
  const lines = source.split('\n');
  const at = SECTIONS.map((name) => {
    const marker = `-- @${name}`;
    return lines.indexOf(marker) === lines.lastIndexOf(marker) ? lines.indexOf(marker) : -1;
  });
  if (at.some((line, i) => line < 0 || (i > 0 && line < at[i - 1]!))) {
    throw new Error(
      `meshlimit: ${file} needs one each of the lines "-- @decode", "-- @step", "-- @encode" and "-- @refund", in that order`,
    );
  }
  const body = (i: number): string => lines.slice(at[i]! + 1, i + 1 < at.length ? at[i + 1] : lines.length).join('\n');
  return { decode: body(0), step: body(1), encode: body(2), refund: body(3) };
}

/**
 * Expands every `-- @each-algorithm` ... `-- @end-each-algorithm` block of `driver` into an
 * `if code == <code> then <block> elseif ...` chain with one branch per algorithm and an error for
 * an unknown code: the block's bare splice lines (`-- @step`, `-- @decode`, ...) name the branch's
 * algorithm. A driver thus writes code that runs per algorithm once, and the algorithm's math
 * still runs inline, without a Lua function call.
 */
function expandEachAlgorithm(driver: string, driverFile: string): string {
  const out = driver.replace(
    /^([ \t]*)-- @each-algorithm\n([\s\S]*?)^[ \t]*-- @end-each-algorithm$/gm,
    (_m, indent: string, block: string) => {
      const branches = (Object.keys(ALGORITHM_FILES) as Algorithm[]).map((algorithm, i) => {
        const base = ALGORITHM_FILES[algorithm].replace(/\.lua$/, '');
        const body = block.replace(/^([ \t]*-- @(?:step|decode|step-only|encode|refund))$/gm, `$1 ${base}`).replace(/\n$/, '');
        return `${indent}${i === 0 ? 'if' : 'elseif'} code == ${SCRIPT_CODE[algorithm]} then\n${body}`;
      });
      return `${branches.join('\n')}\n${indent}else\n${indent}  return error({ err = 'ERR meshlimit: unknown algorithm code ' .. tostring(code) })\n${indent}end`;
    },
  );
  if (/^[ \t]*-- @(end-)?each-algorithm$/m.test(out))
    throw new Error(`meshlimit: ${driverFile}: unmatched "-- @each-algorithm" or "-- @end-each-algorithm"`);
  return out;
}

/**
 * Replaces every splice line of `driver` by algorithm sections, indented like the line (after
 * expanding its `-- @each-algorithm` blocks). A line names the algorithm file (`-- @step
 * fixed-window`), or is bare, which means `algorithm`. The lines:
 *   - `-- @step <a>`: decode, step and (when the step changed the state) encode, in `do ... end`
 *     so its locals stay its own: one whole decision, reading `raw` and assigning `value`;
 *   - `-- @refund <a>`: decode, refund and encode alike;
 *   - `-- @decode <a>`, `-- @step-only <a>`, `-- @encode <a>`: one section each, as it stands, for
 *     a driver that keeps the decoded state in locals across several steps of one key.
 * Splicing instead of binding each module to a function: a script pays on every call for every
 * closure it creates and every Lua function it calls.
 */
function splice(driver: string, driverFile: string, read: (file: string) => string, algorithm?: Algorithm): string {
  const cache = new Map<string, Readonly<Record<Section, string>>>();
  let spliced = 0;
  const out = expandEachAlgorithm(driver, driverFile).replace(
    /^([ \t]*)-- @(step|refund|decode|step-only|encode)(?: ([a-z-]+))?$/gm,
    (_m, indent: string, marker: string, base: string | undefined) => {
      const file = base === undefined ? (algorithm === undefined ? undefined : ALGORITHM_FILES[algorithm]) : `${base}.lua`;
      if (file === undefined || !Object.values(ALGORITHM_FILES).includes(file)) {
        throw new Error(`meshlimit: ${driverFile}: cannot splice "-- @${marker}${base === undefined ? '' : ` ${base}`}"`);
      }
      let sections = cache.get(file);
      if (sections === undefined) cache.set(file, (sections = algorithmSections(read(file), file)));
      spliced++;
      if (marker === 'step' || marker === 'refund') {
        const body = [sections.decode, sections[marker], 'if changed then', indented(sections.encode, '  '), 'end'].join('\n');
        return `${indent}do -- lua/${file} @${marker}\n${indent}  local changed\n${indented(body, `${indent}  `)}\n${indent}end`;
      }
      const section: Section = marker === 'step-only' ? 'step' : (marker as Section);
      return `${indent}-- lua/${file} @${section}\n${indented(sections[section], indent)}`;
    },
  );
  if (spliced === 0) throw new Error(`meshlimit: ${driverFile} has no "-- @step" or "-- @refund" line`);
  return out;
}

/** `text` with `by` before every line that is not empty. */
function indented(text: string, by: string): string {
  return text
    .split('\n')
    .map((l) => (l === '' ? l : `${by}${l}`))
    .join('\n');
}

/** Reads a file by its path relative to lua/; undefined when there is no such file. */
export type LuaReader = (file: string) => string | undefined;

/**
 * Expands the include lines of `text`, the text of `file` (a path relative to lua/). An include
 * line is
 *
 *     -- @include "includes/<name>.lua"
 *
 * alone on its line after any indentation, its path relative to lua/ (letters, digits, `_`, `-`
 * and `/`, no `..`). It becomes a `-- lua/<path>` marker line and the named file's text without
 * its opening contract comment (`--[[ ... ]]`, which every included file must have), every line
 * indented like the include line. An included file may include others (expanded first, so their
 * lines carry both indentations); a file included again inside its own inclusion is a cycle.
 *
 * Inclusion is textual, as bullmq's `--- @include`: a fragment costs nothing at run time (no Lua
 * function call, no closure) and shares the scope of the lines around it, so its contract says
 * which locals it reads and which it assigns or declares. Includes are expanded before
 * `-- @each-algorithm` blocks and splice lines, which a fragment may therefore contain. A
 * missing file, a cycle, a malformed include line or a fragment without its contract is an error
 * naming the including file.
 */
export function expandIncludes(text: string, file: string, read: LuaReader, chain: readonly string[] = [file]): string {
  const out = text.replace(/^([ \t]*)-- @include "([^"\n]*)"$/gm, (_m, indent: string, path: string) => {
    if (!/^(?:[A-Za-z0-9_-]+\/)*[A-Za-z0-9_-]+\.lua$/.test(path)) {
      throw new Error(`meshlimit: ${file}: cannot include "${path}": expected a path relative to lua/ ending in .lua, without ".."`);
    }
    if (chain.includes(path)) throw new Error(`meshlimit: ${file}: cyclic include of "${path}" (${[...chain, path].join(' -> ')})`);
    const included = read(path);
    if (included === undefined) throw new Error(`meshlimit: ${file}: cannot include "${path}": there is no lua/${path}`);
    const header = /^--\[\[[\s\S]*?\]\]\n/.exec(included);
    if (header === null) throw new Error(`meshlimit: ${path} (included by ${file}) must open with its contract, a --[[ ... ]] comment`);
    const body = expandIncludes(included.slice(header[0].length).replace(/\n$/, ''), path, read, [...chain, path]);
    return indented(`-- lua/${path}\n${body}`, indent);
  });
  const malformed = /^[ \t]*-- @include\b.*$/m.exec(out);
  if (malformed !== null)
    throw new Error(`meshlimit: ${file}: malformed include line "${malformed[0].trim()}" (expected: -- @include "includes/<name>.lua")`);
  return out;
}

function assembled(parts: string[]): AssembledScript {
  const source = parts.join('\n');
  return { source, sha1: createHash('sha1').update(source).digest('hex') };
}

/** Reads the files of `luaDir`: the text of one, its include lines expanded ({@link expandIncludes}). */
function reader(luaDir: string): (file: string) => string {
  const raw: LuaReader = (file) => {
    try {
      return readFileSync(join(luaDir, file), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  };
  return (file) => {
    const text = raw(file);
    if (text === undefined) throw new Error(`meshlimit: there is no ${join(luaDir, file)}`);
    return expandIncludes(text, file, raw);
  };
}

function banner(what: string): string {
  return `-- meshlimit ${what} script, assembled at start-up from lua/*.lua by src/backend/redis/lua-assembler.ts`;
}

/** The several-ops evaluate script: lua/evaluate.lua with the three @step sections. Read once at start-up. */
export function assembleEvaluateScript(luaDir: string = findLuaDir()): AssembledScript {
  const read = reader(luaDir);
  return assembled([banner('evaluate'), splice(read('evaluate.lua'), 'evaluate.lua', read)]);
}

/** The batch evaluate script: lua/evaluate-batch.lua with the three @step sections. Read once at start-up. */
export function assembleEvaluateBatchScript(luaDir: string = findLuaDir()): AssembledScript {
  const read = reader(luaDir);
  return assembled([banner('evaluate-batch'), splice(read('evaluate-batch.lua'), 'evaluate-batch.lua', read)]);
}

/**
 * The one-op evaluate script of `algorithm`: its code bound to `CODE`, then lua/evaluate-one.lua
 * with that algorithm's @step section. The section is the same text the several-ops script
 * splices, so the math exists once.
 */
export function assembleEvaluateOneScript(algorithm: Algorithm, luaDir: string = findLuaDir()): AssembledScript {
  const read = reader(luaDir);
  return assembled([
    banner(`evaluate-one (${algorithm})`),
    `local CODE = ${SCRIPT_CODE[algorithm]}`,
    splice(read('evaluate-one.lua'), 'evaluate-one.lua', read, algorithm),
  ]);
}

/** Every evaluate script, read from `luaDir`. */
export function assembleEvaluateScripts(luaDir: string = findLuaDir()): EvaluateScripts {
  return {
    multi: assembleEvaluateScript(luaDir),
    one: {
      fixed_window: assembleEvaluateOneScript('fixed_window', luaDir),
      sliding_window: assembleEvaluateOneScript('sliding_window', luaDir),
      token_bucket: assembleEvaluateOneScript('token_bucket', luaDir),
    },
    batch: assembleEvaluateBatchScript(luaDir),
  };
}

/** The refund script (lua/refund.lua with the three @refund sections); only the cluster backend runs it. */
export function assembleRefundScript(luaDir: string = findLuaDir()): AssembledScript {
  const read = reader(luaDir);
  return assembled([banner('refund'), splice(read('refund.lua'), 'refund.lua', read)]);
}

/**
 * The RLQS report script (lua/quota-report.lua with fixed-window's @decode, @step-only and
 * @encode sections); the Redis quota store (src/quota/redis-store.ts) runs it.
 */
export function assembleQuotaReportScript(luaDir: string = findLuaDir()): AssembledScript {
  const read = reader(luaDir);
  return assembled([banner('quota-report'), splice(read('quota-report.lua'), 'quota-report.lua', read)]);
}

/**
 * Every script the backends run, by the name `meshlimit print-lua` takes: the driver's basename,
 * and for evaluate-one also the algorithm (`evaluate-one token_bucket`).
 */
export const SCRIPT_NAMES: readonly string[] = Object.freeze([
  'evaluate',
  ...ALGORITHMS.map((a) => `evaluate-one ${a}`),
  'evaluate-batch',
  'refund',
  'quota-report',
]);

/** The script called `name` in {@link SCRIPT_NAMES}, assembled from `luaDir`; undefined for another name. */
export function assembleScriptNamed(name: string, luaDir: string = findLuaDir()): AssembledScript | undefined {
  if (name === 'evaluate') return assembleEvaluateScript(luaDir);
  if (name === 'evaluate-batch') return assembleEvaluateBatchScript(luaDir);
  if (name === 'refund') return assembleRefundScript(luaDir);
  if (name === 'quota-report') return assembleQuotaReportScript(luaDir);
  const algorithm = ALGORITHMS.find((a) => name === `evaluate-one ${a}`);
  return algorithm === undefined ? undefined : assembleEvaluateOneScript(algorithm, luaDir);
}
