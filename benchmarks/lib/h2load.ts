/**
 * Runs h2load (nghttp2's HTTP/2 load generator) against a gRPC endpoint and parses its report.
 *
 * h2load knows HTTP, not gRPC: it posts the prebuilt gRPC frame in `dataFile` on every request
 * and counts HTTP statuses. A gRPC error is an HTTP 200 whose `grpc-status` trailer is not 0, so
 * h2load's "succeeded" is necessary but not sufficient: the harness checks the server's own
 * counters as well (see measure.ts, `Sample.errors`).
 *
 * Count mode only (`-n`): every run sends exactly `requests` requests and waits for all of them,
 * so server-side counters can be compared with h2load's numbers exactly (a `-D` duration run
 * stops with requests in flight). Latency percentiles come from `--log-file` (one row per
 * request: start time, HTTP status, microseconds to the end of the response).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { RLS_PATH } from './frames.js';
import { spawnTracked } from '../../test/support/child.js';
import { pinned, ROOT } from './procs.js';

export const H2LOAD_INSTALL_HINT =
  'h2load is not installed or not on PATH. It ships with nghttp2: `apt-get install -y nghttp2-client` (Debian/Ubuntu), ' +
  '`dnf install nghttp2` (Fedora), `brew install nghttp2` (macOS).';

/** The h2load version line, or throws with an install hint. */
export function h2loadVersion(): string {
  const r = spawnSync('h2load', ['--version'], { encoding: 'utf8' });
  if (r.error !== undefined || r.status !== 0) throw new Error(H2LOAD_INSTALL_HINT);
  return r.stdout.trim();
}

export interface H2loadOptions {
  readonly port: number;
  /** File holding one gRPC request frame (sent as the body of every request). */
  readonly dataFile: string;
  /** Connections (`-c`). */
  readonly clients: number;
  /** Max concurrent streams per connection (`-m`). */
  readonly streams: number;
  /** Total requests (`-n`); must be >= clients. */
  readonly requests: number;
  /** Write per-request latencies here and return their samples. */
  readonly logFile?: string | undefined;
  /** CPU list for `taskset -c` (e.g. "1"); undefined = not pinned. */
  readonly cpus?: string | undefined;
  /** TLS (h2 by ALPN; h2load does not verify the server's certificate). */
  readonly tls?: boolean | undefined;
}

export interface H2loadResult {
  /** The command line, for the report. */
  readonly command: string;
  readonly requests: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly errored: number;
  readonly timeout: number;
  readonly status2xx: number;
  readonly seconds: number;
  readonly rps: number;
  /** Microseconds per request (from --log-file), when asked. */
  readonly latenciesUs?: Float64Array | undefined;
}

/** h2load arguments (without taskset). */
export function h2loadArgs(o: H2loadOptions): string[] {
  const args = [
    '-n',
    String(o.requests),
    '-c',
    String(o.clients),
    '-m',
    String(o.streams),
    '-t',
    '1',
    '-d',
    o.dataFile,
    '-H',
    'content-type: application/grpc',
    '-H',
    'te: trailers',
  ];
  if (o.logFile !== undefined) args.push('--log-file', o.logFile);
  args.push(`${o.tls === true ? 'https' : 'http'}://127.0.0.1:${o.port}${RLS_PATH}`);
  return args;
}

function quote(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`;
}

/** Parses "1.23s", "850.12ms", "999us" into seconds. */
export function parseDuration(text: string): number {
  const m = /^([\d.]+)(s|ms|us|m|h)$/.exec(text.trim());
  if (!m) throw new Error(`cannot parse h2load duration ${JSON.stringify(text)}`);
  const v = Number(m[1]);
  const unit = m[2];
  return unit === 'us' ? v / 1e6 : unit === 'ms' ? v / 1e3 : unit === 'm' ? v * 60 : unit === 'h' ? v * 3600 : v;
}

/** Parses h2load's text report. Throws when a line it needs is missing. */
export function parseH2loadOutput(out: string): Omit<H2loadResult, 'command' | 'latenciesUs'> {
  const fin = /finished in ([\d.]+(?:s|ms|us|m|h)), ([\d.]+) req\/s/.exec(out);
  const req = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(out);
  const st = /status codes: (\d+) 2xx/.exec(out);
  if (!fin || !req || !st) throw new Error(`unexpected h2load output:\n${out.slice(-2000)}`);
  return {
    requests: Number(req[1]),
    succeeded: Number(req[4]),
    failed: Number(req[5]),
    errored: Number(req[6]),
    timeout: Number(req[7]),
    status2xx: Number(st[1]),
    seconds: parseDuration(fin[1] as string),
    rps: Number(fin[2]),
  };
}

/** Reads h2load's --log-file: third column, microseconds per request. */
export function readLatencyLog(file: string): Float64Array {
  const text = readFileSync(file, 'latin1');
  const out: number[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const cols = line.split('\t');
    out.push(Number(cols[2]));
  }
  return Float64Array.from(out);
}

/** Runs h2load once; rejects if it exits non-zero or prints no report. */
export async function runH2load(o: H2loadOptions): Promise<H2loadResult> {
  const [cmd, argv] = pinned(o.cpus, 'h2load', h2loadArgs(o));
  // Paths relative to the repository, so the command reads the same on any checkout.
  const command = [cmd, ...argv].map((a) => quote(a.startsWith(ROOT) ? a.slice(ROOT.length) : a)).join(' ');
  // spawnTracked's exit waits for the pipes to end, so the report's last lines are all read.
  const child = spawnTracked(cmd, argv, { name: 'h2load' });
  const code = await child.exited;
  const out = child.output();
  if (code === -1) throw new Error(H2LOAD_INSTALL_HINT);
  if (code !== 0) throw new Error(`${command} exited with ${code}:\n${out.slice(-2000)}`);
  const parsed = parseH2loadOutput(out);
  let latenciesUs: Float64Array | undefined;
  if (o.logFile !== undefined) {
    latenciesUs = readLatencyLog(o.logFile);
    rmSync(o.logFile, { force: true });
  }
  return { command, ...parsed, latenciesUs };
}
