import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { checkConfigDir } from './config/check.js';

/**
 * The `meshlimit` command line. Exit codes: 0 ok, 1 invalid config, 2 usage error.
 * `runCli` never calls `process.exit`, so it can be tested and embedded.
 */

export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

const USAGE = `usage: meshlimit check-config DIR

commands:
  check-config DIR   load and validate every *.yaml / *.yml file in DIR exactly as the service
                     would; print each error, or a summary of domains and rules.
                     exit 0 when valid, 1 when invalid, 2 on a usage error.
`;

const defaultIo: CliIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
};

export async function runCli(argv: readonly string[], io: CliIo = defaultIo): Promise<number> {
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
    const result = await checkConfigDir(rest[0]!);
    (result.ok ? io.stdout : io.stderr)(result.output);
    return result.ok ? 0 : 1;
  }
  io.stderr(command === undefined ? USAGE : `meshlimit: unknown command '${command}'\n\n${USAGE}`);
  return 2;
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
