import { ALGORITHMS } from '../limiter/types.js';
import { buildInfo, describeBuild } from '../util/build-info.js';

/**
 * The help texts of `meshlimit` and of each command, and `--version`. The service itself has no
 * flags but these: every setting is an environment variable (README.md, "Settings").
 */

export const SETTINGS_POINTER =
  'Settings are environment variables (PORT, GRPC_PORT, CONFIG_DIR, BACKEND_TYPE, REDIS_URL, ...),\nevery one listed with its default in README.md, section "Settings".';

export const COMMAND_USAGE: Readonly<Record<string, string>> = {
  serve: `usage: meshlimit serve          (also: node dist/main.js, npm start)

Runs the rate-limit service: RLS v3 over gRPC on GRPC_HOST:GRPC_PORT (default 0.0.0.0:8081),
the HTTP admin port on HOST:PORT (default 0.0.0.0:8080: /healthcheck, /json, /rlconfig, /metrics,
/v1/explain),
the config from CONFIG_DIR (default ./config). Stops on SIGTERM or SIGINT.
It takes no flags but --help and --version.
${SETTINGS_POINTER}
`,
  'check-config': `usage: meshlimit check-config PATH...

Loads and validates config exactly as the service would, and prints every error (file, field,
line) or a summary of domains and rules with the config version, the one /rlconfig and the
meshlimit_config_info metric show for the same files. Each PATH is one of:
  a directory       every *.yaml / *.yml file in it, as CONFIG_DIR
  a YAML file       that file alone
  a manifest        a Kubernetes ConfigMap (kind: ConfigMap, several documents allowed): each
                    data key ending in .yaml/.yml is a file, named as it is once mounted
MERGE_DOMAIN_CONFIG=true lets several files define one domain, as in the service.
exit 0 when valid, 1 when invalid, 2 on a usage error.
`,
  ask: `usage: meshlimit ask [options] DOMAIN KEY=VALUE[,KEY=VALUE...] ...

Sends ShouldRateLimit calls over gRPC and prints one line per answer: for each descriptor its
code, what is left of its limit (the window and algorithm as the config says them, a token
bucket's burst) and when it resets. Each KEY=VALUE[,...] argument is one descriptor.
options:
  --addr HOST:PORT   the service's gRPC address (default GRPC_HOST:GRPC_PORT from the
                     environment, else 127.0.0.1:8081; 0.0.0.0 is asked as 127.0.0.1)
  --count N          send N calls, one after the other over one connection (default 1)
  --hits N           hits_addend of each call (default 1)
  --json             print each answer as JSON instead
exit 0 when every answer was OK, 3 when one was OVER_LIMIT, 1 on an error, 2 on a usage error.
`,
  explain: `usage: meshlimit explain [options] DOMAIN KEY=VALUE[,KEY=VALUE...] ...

Asks the running service which rule each descriptor would match (file, YAML path, line) or why
none does (an unknown domain, the first entry that matched nothing, a limit not at the last
entry), every limit that would apply with its real window, the counter as it stands and what
the request would be answered. Nothing is charged. The arguments are ask's.
options:
  --url URL          the admin port (default http://HOST:PORT from the environment, else
                     http://127.0.0.1:8080; 0.0.0.0 is asked as 127.0.0.1)
  --hits N           hits_addend the request would carry (default 1)
  --json             print the service's JSON (POST /v1/explain) as it is
exit 0 when the request would be OK, 3 when it would be OVER_LIMIT, 1 on an error, 2 on a usage error.
`,
  'print-lua': `usage: meshlimit print-lua SCRIPT

Prints the exact Lua source Redis runs for SCRIPT, assembled from lua/ as the service does at
start-up, on stdout, and its SHA1 (what EVALSHA sends) on stderr. SCRIPT is evaluate,
evaluate-batch, refund, or evaluate-one and an algorithm (${ALGORITHMS.join(', ')}).
exit 0, 1 when lua/ does not assemble, 2 for another SCRIPT.
`,
};

export const USAGE = `usage: meshlimit COMMAND [ARGS]     (meshlimit COMMAND --help for each)

commands:
  serve              run the service (the same as node dist/main.js)
  check-config PATH  validate a config directory, YAML file or ConfigMap manifest
  ask DOMAIN DESC..  ask the running service, e.g. meshlimit ask --count 12 edge company_id=trial-9
  explain DOMAIN DESC..  which rule would match and what would be answered, charging nothing
  print-lua SCRIPT   print a Lua script as Redis runs it
options:
  -h, --help         this text
  -V, --version      meshlimit's version, the git commit it was built from, and Node.js's

${SETTINGS_POINTER}
`;

export const isHelp = (a: string | undefined): boolean => a === '--help' || a === '-h';
export const isVersion = (a: string | undefined): boolean => a === '--version' || a === '-V';

/** `meshlimit 0.1.0 (v0.1.0-4-gabc1234, node v20.19.0)` and the full commit when known. */
export function versionText(): string {
  const info = buildInfo();
  return `meshlimit ${describeBuild(info)}\n${info.commit === undefined ? '' : `commit ${info.commit}\n`}`;
}

/**
 * What the service process does with its arguments (`node dist/main.js ARGS`, `meshlimit serve
 * ARGS`): `--help`/`--version` print and exit 0; anything else is a usage error (exit 2) rather
 * than silently ignored, since a mistyped flag would otherwise start a service configured
 * differently than its operator thinks.
 */
export function serviceArgs(argv: readonly string[]): { exit: number; stdout?: string; stderr?: string } | undefined {
  const args = argv[0] === 'serve' ? argv.slice(1) : argv;
  if (args.length === 0) return undefined;
  if (args.length === 1 && isHelp(args[0])) return { exit: 0, stdout: COMMAND_USAGE.serve! };
  if (args.length === 1 && isVersion(args[0])) return { exit: 0, stdout: versionText() };
  const what = args[0]!.startsWith('-') ? `unknown flag '${args[0]}'` : `unexpected argument '${args[0]}'`;
  return { exit: 2, stderr: `meshlimit: ${what}; the service takes no arguments but --help and --version.\n${SETTINGS_POINTER}\n` };
}

/**
 * `DOMAIN KEY=VALUE[,KEY=VALUE...] ...`, the request both `ask` and `explain` take: one descriptor
 * per argument after the domain, its entries comma-separated. A string is the usage error.
 */
export function parseRequestArgs(
  positional: readonly string[],
): { domain: string; descriptors: { key: string; value: string }[][] } | string {
  const [domain, ...descs] = positional;
  if (domain === undefined || descs.length === 0) return 'expected DOMAIN and at least one KEY=VALUE descriptor';
  const descriptors = [];
  for (const d of descs) {
    const entries = [];
    for (const kv of d.split(',')) {
      const eq = kv.indexOf('=');
      if (eq <= 0) return `'${kv}' in '${d}' is not KEY=VALUE`;
      entries.push({ key: kv.slice(0, eq), value: kv.slice(eq + 1) });
    }
    descriptors.push(entries);
  }
  return { domain, descriptors };
}
