/**
 * Redis CPU per rate-limit decision, from Redis's own accounting: `INFO commandstats` gives, per
 * command, the calls and the microseconds Redis spent executing them (for EVALSHA: the whole
 * script, nested redis.call()s included; network and parsing of the request excluded). This is
 * the cost that grows with traffic on the Redis side, where one core serves every replica.
 *
 * What it runs, against its own throw-away redis-server on a free loopback port:
 * - baselines: `return 1` (the fixed price of any EVALSHA), INCR (a plain command, not a script),
 *   and bare scripts doing only the Redis calls a decision cannot avoid: TIME + GET + SET PX, and
 *   TIME + GET + SET KEEPTTL (what a window write costs when the key's TTL is already right);
 * - the production scripts (assembled from lua/ exactly as the service does, marshalled with the
 *   service's own marshalEvaluate), one descriptor per request: each algorithm on its admitted
 *   path (GET, decide, SET) and its denied path (GET, decide, no write), Redis's clock (TIME), keys
 *   spread over 1,000 descriptors; plus a two-op request for the several-ops script.
 *
 * Variants are interleaved within each round (so a burst of load elsewhere on the machine hits
 * them alike), every round starts from CONFIG RESETSTAT and an empty database, and the report
 * gives the median over rounds (and the min and max). By default redis-server runs under
 * SCHED_FIFO (`chrt -f 50`) when the machine allows it, so that other processes on a shared
 * machine do not preempt it mid-command and inflate its timings; `--no-rt` turns that off.
 *
 * With `--floors` it also measures single Redis calls inside a bare script (TIME, GET, INCRBY,
 * SET KEEPTTL, SET PX, TIME + GET, TIME + INCRBY): the cheapest script any decision could be.
 *
 * With `--before REV` (a git revision, e.g. HEAD) it also runs that revision's scripts, in the same
 * rounds: its lua/ files and its src/backend/redis modules (the assembler and the marshalling:
 * scripts.ts before they were split, lua-assembler.ts, script-format.ts and script-commands.ts
 * since) are read with `git show` into a temporary directory and loaded from there, so a
 * before/after comparison runs both versions exactly as each would have served.
 *
 *   npx tsx benchmarks/redis-cpu/bench.ts [--rounds 9] [--calls 20000] [--floors] [--before REV] [--no-rt] [--json] [--help]
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import type { CounterOp } from '../../src/limiter/types.js';
import * as assembler from '../../src/backend/redis/lua-assembler.js';
import * as commands from '../../src/backend/redis/script-commands.js';
import * as format from '../../src/backend/redis/script-format.js';
import type { Algorithm } from '../../src/limiter/types.js';

const USAGE = 'usage: bench.ts [--rounds N] [--calls N] [--floors] [--before REV] [--no-rt] [--json] [--help]';

interface Options {
  help: boolean;
  rounds: number;
  calls: number;
  realtime: boolean;
  json: boolean;
  floors: boolean;
  before?: string;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { help: false, rounds: 9, calls: 20_000, realtime: true, json: false, floors: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--rounds') o.rounds = Number(argv[++i]);
    else if (a === '--calls') o.calls = Number(argv[++i]);
    else if (a === '--no-rt') o.realtime = false;
    else if (a === '--json') o.json = true;
    else if (a === '--floors') o.floors = true;
    else if (a === '--before') o.before = argv[++i];
    else if (a === '--help' || a === '-h') o.help = true;
    else throw new Error(`unknown argument ${a}; ${USAGE}`);
  }
  if (!(o.rounds >= 1 && o.calls >= 100)) throw new Error('--rounds >= 1 and --calls >= 100');
  return o;
}

/** One measured variant: a script (EVALSHA) or a plain command, and the arguments of call i. */
interface Variant {
  readonly name: string;
  readonly group: 'floor' | 'baseline' | 'meshlimit';
  readonly lua?: string;
  readonly command?: string;
  readonly args: (i: number) => Array<string | Buffer | number>;
  /** Checks one reply (the first of each batch): the variant measures what it claims to. */
  readonly check?: (reply: unknown, i: number) => void;
}

const DESCRIPTORS = 1_000;
/** A key shaped like production's: prefix, 22-char {hash tag}, limit identity. */
const keyOf = (variant: string, i: number): string =>
  `ratelimit:{${variant.padEnd(12, '_')}${String(i % DESCRIPTORS).padStart(10, '0')}}:x:second:1`;

function op(algorithm: Algorithm, key: string, admitted: boolean): CounterOp {
  // Admitted: a limit no benchmark can exhaust. Denied: a limit of 0 (over at once, nothing written).
  const threshold = admitted ? 1_000_000_000 : 0;
  return {
    key,
    algorithm,
    windowMs: 60_000,
    threshold,
    burst: algorithm === 'token_bucket' && admitted ? 1_000_000 : threshold,
    hits: 1,
    enforce: true,
  };
}

/** A bare script on one key: what its Redis calls cost, with nothing else around them. */
function bare(name: string, body: string): Variant {
  const tag = name.replace(/[^A-Za-z]/g, '').slice(0, 10);
  return { name, group: 'floor', lua: `${body}\nreturn 1`, args: (i) => [1, keyOf(tag, i)] };
}

/**
 * `--floors`: the price of each Redis call a decision could be built from, inside a script on one
 * key, so that a target can be compared with the cheapest script that could possibly meet it.
 */
function floorVariants(): Variant[] {
  const value = "'1700000040000:5'";
  return [
    bare('return 1 (one key)', ''),
    bare('TIME', "redis.call('TIME')"),
    bare('GET', "redis.call('GET', KEYS[1])"),
    bare('INCRBY', "redis.call('INCRBY', KEYS[1], 1)"),
    bare('SET KEEPTTL', `redis.call('SET', KEYS[1], ${value}, 'KEEPTTL')`),
    bare('SET PX', `redis.call('SET', KEYS[1], ${value}, 'PX', '60000')`),
    bare('TIME + GET', "redis.call('TIME')\nredis.call('GET', KEYS[1])"),
    bare('TIME + INCRBY', "redis.call('TIME')\nredis.call('INCRBY', KEYS[1], 1)"),
  ];
}

/** This checkout's script modules, as one. */
const current = { ...assembler, ...commands, ...format };

/** What the meshlimit rows need from a version of the script modules of src/backend/redis. */
type ScriptsModule = Pick<
  typeof current,
  'assembleEvaluateScripts' | 'evaluateScriptFor' | 'marshalEvaluate' | 'parseEvaluateOneReply' | 'parseEvaluateReply'
>;

/**
 * Loads revision `rev`'s script modules: its lua/ (with subfolders) and the .ts files of its
 * src/backend/redis from git into a temporary directory. Imports within that folder stay in the
 * copy, so the revision's own modules load each other; imports out of it are pointed back at this
 * checkout (they only bring types, errors and the algorithm codes). The entry points are
 * scripts.ts in revisions before the split, its three parts since.
 */
async function scriptsAt(rev: string): Promise<{ mod: ScriptsModule; luaDir: string; cleanup: () => void }> {
  const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
  const git = (...args: string[]): string => execFileSync('git', args, { cwd: repo, encoding: 'utf8', maxBuffer: 1 << 26 });
  const dir = mkdtempSync(join(tmpdir(), 'meshlimit-redis-cpu-'));
  mkdirSync(join(dir, 'lua'));
  for (const file of git('ls-tree', '-r', '--name-only', `${rev}:lua`)
    .split('\n')
    .filter((f) => f.endsWith('.lua'))) {
    mkdirSync(dirname(join(dir, 'lua', file)), { recursive: true });
    writeFileSync(join(dir, 'lua', file), git('show', `${rev}:lua/${file}`));
  }
  const from = join(repo, 'src/backend/redis');
  const modules = git('ls-tree', '--name-only', `${rev}:src/backend/redis`)
    .split('\n')
    .filter((f) => f.endsWith('.ts'));
  for (const file of modules) {
    const source = git('show', `${rev}:src/backend/redis/${file}`).replace(
      /from '(\.\.\/[^']+)'/g,
      (_m, p: string) => `from '${pathToFileURL(resolve(from, p)).href}'`,
    );
    writeFileSync(join(dir, file), source);
  }
  const entries = modules.includes('scripts.ts') ? ['scripts.ts'] : ['lua-assembler.ts', 'script-format.ts', 'script-commands.ts'];
  const loaded = await Promise.all(entries.map(async (file) => (await import(pathToFileURL(join(dir, file)).href)) as object));
  const mod = Object.assign({}, ...loaded) as ScriptsModule;
  return { mod, luaDir: join(dir, 'lua'), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The production scripts of one version (`label` is appended to the row names, '' for this checkout). */
function meshlimitVariants(m: ScriptsModule, luaDir: string | undefined, label: string): Variant[] {
  const scripts = m.assembleEvaluateScripts(luaDir);
  const suffix = label === '' ? '' : ` [${label}]`;
  const prefix = label === '' ? '' : label.replace(/[^A-Za-z0-9]/g, '').slice(0, 4);
  const out: Variant[] = [];
  for (const algorithm of ['fixed_window', 'sliding_window', 'token_bucket'] as const) {
    for (const admitted of [true, false]) {
      const tag = `${prefix}${algorithm.slice(0, 2)}${admitted ? 'a' : 'd'}`;
      const template = op(algorithm, '', admitted);
      const { args } = m.marshalEvaluate([template], undefined, false);
      out.push({
        name: `${algorithm} (one op, ${admitted ? 'admitted' : 'denied'})${suffix}`,
        group: 'meshlimit',
        lua: m.evaluateScriptFor(scripts, [template]).source,
        args: (i) => [1, keyOf(tag, i), args],
        check: (reply, i) => {
          const r = m.parseEvaluateOneReply(reply, { ...template, key: keyOf(tag, i) });
          if (r.denied === admitted)
            throw new Error(`${algorithm}${suffix}: expected ${admitted ? 'admitted' : 'denied'}, got ${JSON.stringify(r)}`);
        },
      });
    }
  }
  const two = [op('fixed_window', '', true), op('token_bucket', '', true)];
  const { args: twoArgs } = m.marshalEvaluate(two, undefined, false);
  out.push({
    name: `fixed_window + token_bucket (two ops, admitted)${suffix}`,
    group: 'meshlimit',
    lua: scripts.multi.source,
    args: (i) => [2, keyOf(`${prefix}twof`, i), keyOf(`${prefix}twot`, i), twoArgs],
    check: (reply) => {
      if (m.parseEvaluateReply(reply, 2).result.denied) throw new Error(`two ops${suffix}: expected admitted`);
    },
  });
  return out;
}

function variants(floors: boolean, before?: { mod: ScriptsModule; luaDir: string; label: string }): Variant[] {
  const out: Variant[] = [
    ...(floors ? floorVariants() : []),
    { name: 'return 1 (no key)', group: 'baseline', lua: 'return 1', args: () => [0] },
    { name: 'INCR (plain command)', group: 'baseline', command: 'INCR', args: (i) => [keyOf('incr', i)] },
    {
      name: 'TIME + GET + SET PX',
      group: 'baseline',
      lua: "local t = redis.call('TIME')\nlocal v = redis.call('GET', KEYS[1])\nredis.call('SET', KEYS[1], '1700000040000:5', 'PX', '60000')\nreturn 1",
      args: (i) => [1, keyOf('tgsp', i)],
    },
    {
      name: 'TIME + GET + SET KEEPTTL',
      group: 'baseline',
      lua: "local t = redis.call('TIME')\nlocal v = redis.call('GET', KEYS[1])\nredis.call('SET', KEYS[1], '1700000040000:5', 'KEEPTTL')\nreturn 1",
      args: (i) => [1, keyOf('tgsk', i)],
    },
  ];
  const mine = meshlimitVariants(current, undefined, '');
  if (before === undefined) return [...out, ...mine];
  // Interleave each row with its `before` twin, so the two face the same moments of load.
  const theirs = meshlimitVariants(before.mod, before.luaDir, before.label);
  return [...out, ...mine.flatMap((v, i) => [theirs[i]!, v])];
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** True when `chrt -f` works here (root or CAP_SYS_NICE, and chrt installed). */
function canUseRealtime(): boolean {
  return spawnSync('chrt', ['-f', '50', 'true']).status === 0;
}

async function startRedis(realtime: boolean): Promise<{ client: Redis; stop: () => Promise<void>; realtime: boolean; version: string }> {
  const port = await freePort();
  const rt = realtime && canUseRealtime();
  const serverArgs = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  const child = rt
    ? spawn('chrt', ['-f', '50', 'redis-server', ...serverArgs], { stdio: 'ignore' })
    : spawn('redis-server', serverArgs, { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.once('exit', () => child.kill('SIGKILL'));
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined);
  for (let attempt = 0; ; attempt++) {
    try {
      await client.connect();
      await client.ping();
      break;
    } catch {
      if (attempt > 100) throw new Error(`redis-server did not start on port ${port}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const version = /redis_version:(\S+)/.exec(await client.info('server'))?.[1] ?? '?';
  return {
    client,
    realtime: rt,
    version,
    stop: async () => {
      client.disconnect();
      child.kill('SIGTERM');
      await exited;
    },
  };
}

async function usecPerCall(client: Redis, command: string): Promise<number> {
  const info = await client.info('commandstats');
  const m = new RegExp(`^cmdstat_${command}:calls=(\\d+),usec=(\\d+)`, 'm').exec(info);
  if (!m) throw new Error(`no commandstats for ${command}`);
  return Number(m[2]) / Number(m[1]);
}

async function measure(client: Redis, v: Variant, calls: number): Promise<number> {
  const sha = v.lua === undefined ? '' : createHash('sha1').update(v.lua).digest('hex');
  await client.flushall();
  await client.config('RESETSTAT');
  const batch = 200;
  for (let i = 0; i < calls;) {
    const p = client.pipeline();
    const first = i;
    for (let k = 0; k < batch && i < calls; k++, i++) {
      if (v.lua !== undefined) p.evalsha(sha, ...(v.args(i) as [number, ...string[]]));
      else p.call(v.command!, ...(v.args(i) as string[]));
    }
    const replies = (await p.exec())!;
    for (const [err] of replies) if (err) throw err;
    v.check?.(replies[0]![1], first);
  }
  return usecPerCall(client, v.lua === undefined ? v.command!.toLowerCase() : 'evalsha');
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  if (o.help) {
    console.log(`${USAGE}\n(what each option does: benchmarks/redis-cpu/README.md and this file's header)`);
    return;
  }
  const before = o.before === undefined ? undefined : await scriptsAt(o.before);
  const vs = variants(o.floors, before && { ...before, label: o.before! });
  before?.cleanup();
  const redis = await startRedis(o.realtime);
  const samples = new Map<string, number[]>(vs.map((v) => [v.name, []]));
  try {
    for (const v of vs) if (v.lua !== undefined) await redis.client.script('LOAD', v.lua);
    for (let r = 0; r < o.rounds; r++) {
      for (const v of vs) samples.get(v.name)!.push(await measure(redis.client, v, o.calls));
    }
  } finally {
    await redis.stop();
  }
  const rows = vs.map((v) => {
    const xs = samples.get(v.name)!;
    return { group: v.group, name: v.name, median: median(xs), min: Math.min(...xs), max: Math.max(...xs), samples: xs };
  });
  if (o.json) {
    console.log(JSON.stringify({ redis: redis.version, realtime: redis.realtime, rounds: o.rounds, calls: o.calls, rows }, null, 2));
    return;
  }
  console.log(
    `redis ${redis.version}, ${redis.realtime ? 'SCHED_FIFO' : 'normal scheduling'}, ${o.rounds} rounds x ${o.calls} calls per variant`,
  );
  console.log('| variant | median us/call | min | max |');
  console.log('| --- | --- | --- | --- |');
  for (const r of rows)
    console.log(
      `| ${r.group === 'meshlimit' ? '' : `(${r.group}) `}${r.name} | ${r.median.toFixed(2)} | ${r.min.toFixed(2)} | ${r.max.toFixed(2)} |`,
    );
}

await main();
