import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { assembleScriptNamed, SCRIPT_NAMES, type AssembledScript } from './backend/redis/lua-assembler.js';
import { checkConfigDir } from './config/check.js';
import { SettingsError } from './errors.js';
import { configCompileOptions } from './settings/index.js';
import { ALGORITHMS } from './limiter/types.js';

/**
 * The `meshlimit` command line. Exit codes: 0 ok, 1 invalid config (or Lua that does not
 * assemble), 2 usage error.
 * `runCli` never calls `process.exit`, so it can be tested and embedded.
 */

export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

const USAGE = `usage: meshlimit check-config DIR
       meshlimit ask [--addr HOST:PORT] [--hits N] DOMAIN KEY=VALUE[,KEY=VALUE...] ...
       meshlimit print-lua SCRIPT

commands:
  check-config DIR   load and validate every *.yaml / *.yml file in DIR exactly as the service
                     would; print each error, or a summary of domains and rules.
                     MERGE_DOMAIN_CONFIG=true lets several files define one domain, as in
                     the service. exit 0 when valid, 1 when invalid, 2 on a usage error.
  ask DOMAIN DESC..  send one ShouldRateLimit call over gRPC (default --addr 127.0.0.1:8081) and
                     print the response as JSON. Each DESC is one descriptor, its entries
                     separated by commas. exit 0 for OK, 3 for OVER_LIMIT, 1 on an error.
  print-lua SCRIPT   print the exact Lua source Redis runs for SCRIPT, assembled from lua/ as the
                     service does at start-up, on stdout, and its SHA1 (what EVALSHA sends) on
                     stderr. SCRIPT is evaluate, evaluate-batch, refund, or evaluate-one and an
                     algorithm (${ALGORITHMS.join(', ')}).
                     exit 0, 1 when lua/ does not assemble, 2 for another SCRIPT.
`;

const defaultIo: CliIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
};

/** @param env the environment `check-config` reads MERGE_DOMAIN_CONFIG from, as the service does. */
export async function runCli(
  argv: readonly string[],
  io: CliIo = defaultIo,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<number> {
  const [command, ...rest] = argv;
  if (command === '--help' || command === '-h' || command === 'help') {
    io.stdout(USAGE);
    return 0;
  }
  if (command === 'check-config') {
    if (rest.length !== 1 || rest[0] === '' || rest[0]!.startsWith('-')) {
      io.stderr(`meshlimit check-config: expected exactly one directory\n\n${USAGE}`);
      return 2;
    }
    let options;
    try {
      options = configCompileOptions(env);
    } catch (err) {
      if (!(err instanceof SettingsError)) throw err;
      io.stderr(`meshlimit check-config: ${err.message}\n`);
      return 2;
    }
    const result = await checkConfigDir(rest[0]!, options);
    (result.ok ? io.stdout : io.stderr)(result.output);
    return result.ok ? 0 : 1;
  }
  if (command === 'ask') return ask(rest, io);
  if (command === 'print-lua') return printLua(rest, io);
  io.stderr(command === undefined ? USAGE : `meshlimit: unknown command '${command}'\n\n${USAGE}`);
  return 2;
}

/**
 * `meshlimit print-lua`: one assembled script, exactly as Redis runs it (stdout holds nothing
 * else, so `| sha1sum` gives the hash on stderr and `| redis-cli -x SCRIPT LOAD` loads it).
 */
function printLua(args: readonly string[], io: CliIo): number {
  const name = args.join(' ');
  if (!SCRIPT_NAMES.includes(name)) {
    const names = SCRIPT_NAMES.map((n) => `  ${n}\n`).join('');
    io.stderr(
      `meshlimit print-lua: ${args.length === 0 ? 'expected a script' : `unknown script '${name}'`}; the scripts:\n${names}\n${USAGE}`,
    );
    return 2;
  }
  let script: AssembledScript;
  try {
    script = assembleScriptNamed(name)!;
  } catch (err) {
    io.stderr(`meshlimit print-lua: ${(err as Error).message}\n`);
    return 1;
  }
  io.stderr(`-- ${name}: sha1 ${script.sha1}, ${Buffer.byteLength(script.source)} bytes\n`);
  io.stdout(script.source);
  return 0;
}

/** `meshlimit ask`: one ShouldRateLimit call, for tours and debugging. */
async function ask(args: readonly string[], io: CliIo): Promise<number> {
  let addr = '127.0.0.1:8081';
  let hits: number | undefined;
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--addr') addr = args[++i] ?? '';
    else if (a === '--hits') hits = Number(args[++i]);
    else positional.push(a);
  }
  const [domain, ...descs] = positional;
  const entries = descs.map((d) => d.split(',').map((kv) => kv.split('=')));
  if (
    domain === undefined ||
    descs.length === 0 ||
    entries.some((e) => e.some((kv) => kv.length !== 2)) ||
    (hits !== undefined && !Number.isInteger(hits))
  ) {
    io.stderr(`meshlimit ask: expected DOMAIN and at least one KEY=VALUE descriptor\n\n${USAGE}`);
    return 2;
  }
  const { createRlsClient } = await import('./client/rls-client.js');
  const client = createRlsClient(addr, { defaultDeadlineMs: 3000 });
  try {
    const res = await client.shouldRateLimit({
      domain,
      hitsAddend: hits,
      descriptors: entries.map((e) => ({ entries: e.map(([key, value]) => ({ key: key!, value: value! })) })),
    });
    const statuses = res.statuses.map((s) => ({
      code: s.code,
      ...(s.currentLimit
        ? {
            limit: `${s.currentLimit.requestsPerUnit}/${s.currentLimit.unit}`,
            remaining: s.limitRemaining,
            resetSeconds: s.durationUntilReset?.seconds ?? 0,
          }
        : {}),
    }));
    io.stdout(`${JSON.stringify({ overallCode: res.overallCode, statuses })}\n`);
    return res.overallCode === 'OVER_LIMIT' ? 3 : 0;
  } catch (err) {
    const e = err as { code?: number; details?: string; message?: string };
    io.stderr(`meshlimit ask: ${e.details ?? e.message ?? String(err)} (gRPC status ${String(e.code)})\n`);
    return 1;
  } finally {
    client.close();
  }
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

// Run directly (`tsx src/cli.ts ...`, `node dist/cli.js ...`); bin/meshlimit.js calls runCli itself.
if (isEntryPoint()) {
  process.exitCode = await runCli(process.argv.slice(2));
}
