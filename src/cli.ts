import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type * as LuaAssembler from './backend/redis/lua-assembler.js';
import type { AssembledScript } from './backend/redis/lua-assembler.js';
import { COMMAND_USAGE, isHelp, isVersion, serviceArgs, USAGE, versionText } from './cli/usage.js';
import { SettingsError } from './errors.js';

// Each command loads its own modules when it runs (`ask` starts in a fraction of the time
// loading the config compiler, the settings and the Lua assembler would add).

/**
 * The `meshlimit` command line (help texts in ./cli/usage.ts). Exit codes: 0 ok, 1 invalid
 * config (or Lua that does not assemble, or a failed `ask` or `explain`), 2 usage error, 3 `ask` saw
 * OVER_LIMIT (or `explain` says the request would be).
 * `runCli` never calls `process.exit`, so it can be tested and embedded.
 */

export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

const defaultIo: CliIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
};

/** @param env the environment `check-config` reads MERGE_DOMAIN_CONFIG from `ask` GRPC_HOST/GRPC_PORT and `explain` HOST/PORT, as the service does. */
export async function runCli(
  argv: readonly string[],
  io: CliIo = defaultIo,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<number> {
  const [command, ...rest] = argv;
  if (isHelp(command) || command === 'help') {
    const topic = command === 'help' ? rest[0] : undefined;
    io.stdout(topic !== undefined && COMMAND_USAGE[topic] !== undefined ? COMMAND_USAGE[topic] : USAGE);
    return 0;
  }
  if (isVersion(command)) {
    io.stdout(versionText());
    return 0;
  }
  if (command === 'serve') {
    const service = serviceArgs(rest);
    if (service !== undefined) {
      if (service.stdout !== undefined) io.stdout(service.stdout);
      if (service.stderr !== undefined) io.stderr(service.stderr);
      return service.exit;
    }
    await import('./main.js');
    return 0;
  }
  if (command === 'check-config') return checkConfig(rest, io, env);
  if (command === 'ask') return (await import('./cli/ask.js')).ask(rest, io, env);
  if (command === 'explain') return (await import('./cli/explain.js')).explain(rest, io, env);
  if (command === 'print-lua') return printLua(rest, io, await import('./backend/redis/lua-assembler.js'));
  const what = command === undefined ? 'expected a command' : `unknown ${command.startsWith('-') ? 'option' : 'command'} '${command}'`;
  io.stderr(`meshlimit: ${what}\n\n${USAGE}`);
  return 2;
}

async function checkConfig(args: readonly string[], io: CliIo, env: Readonly<Record<string, string | undefined>>): Promise<number> {
  if (isHelp(args[0])) {
    io.stdout(COMMAND_USAGE['check-config']!);
    return 0;
  }
  const paths: string[] = [];
  let configMap: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--configmap' && args[i + 1] !== undefined) configMap = args[++i];
    else if (a === '' || a.startsWith('-')) {
      io.stderr(`meshlimit check-config: unknown option '${a}'\n\n${COMMAND_USAGE['check-config']!}`);
      return 2;
    } else paths.push(a);
  }
  if (paths.length === 0) {
    io.stderr(`meshlimit check-config: expected a directory, YAML file or ConfigMap manifest\n\n${COMMAND_USAGE['check-config']!}`);
    return 2;
  }
  const { configCompileOptions } = await import('./settings/index.js');
  const { checkConfigPaths } = await import('./config/check.js');
  let options;
  try {
    options = configCompileOptions(env);
  } catch (err) {
    if (!(err instanceof SettingsError)) throw err;
    io.stderr(`meshlimit check-config: ${err.message}\n`);
    return 2;
  }
  const result = await checkConfigPaths(paths, options, configMap);
  (result.ok ? io.stdout : io.stderr)(result.output);
  return result.ok ? 0 : 1;
}

/**
 * `meshlimit print-lua`: one assembled script, exactly as Redis runs it (stdout holds nothing
 * else, so `| sha1sum` gives the hash on stderr and `| redis-cli -x SCRIPT LOAD` loads it).
 */
function printLua(args: readonly string[], io: CliIo, lua: typeof LuaAssembler): number {
  const { SCRIPT_NAMES, assembleScriptNamed } = lua;
  const name = args.join(' ');
  if (!SCRIPT_NAMES.includes(name)) {
    const names = SCRIPT_NAMES.map((n) => `  ${n}\n`).join('');
    if (isHelp(args[0])) {
      io.stdout(COMMAND_USAGE['print-lua']!);
      return 0;
    }
    io.stderr(
      `meshlimit print-lua: ${args.length === 0 ? 'expected a script' : `unknown script '${name}'`}; the scripts:\n${names}\n${COMMAND_USAGE['print-lua']!}`,
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
