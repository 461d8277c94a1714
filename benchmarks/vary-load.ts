/**
 * Child-process entry of the high-cardinality load: sends `requests` ShouldRateLimit calls, the
 * i-th with client IP ipFor(start + i), over the minimal HTTP/2 client in lib/h2-raw.ts, and
 * prints one JSON line with the result. Run pinned to the load CPU, like h2load.
 *
 *   node --import tsx benchmarks/vary-load.ts '{"port":..,"connections":16,"streams":32,"requests":..,"start":0}'
 */
import { requestFrame, RLS_PATH } from './lib/frames.js';
import { runRaw } from './lib/h2-raw.js';
import { BENCH_DOMAIN, ipFor, IP_SPACE } from './lib/scenarios.js';
import { summarizeUs } from './lib/stats.js';

interface Args {
  port: number;
  connections: number;
  streams: number;
  requests: number;
  start: number;
}

const args = JSON.parse(process.argv[2] ?? '{}') as Args;
if (args.start + args.requests > IP_SPACE) throw new Error(`at most ${IP_SPACE} distinct IPs`);

const PLACEHOLDER = ipFor(0);
const template = requestFrame({ domain: BENCH_DOMAIN, descriptors: [{ entries: [{ key: 'remote_address', value: PLACEHOLDER }] }] });
const at = template.indexOf(PLACEHOLDER, 0, 'latin1');
if (at < 0 || template.indexOf(PLACEHOLDER, at + 1, 'latin1') >= 0) throw new Error('IP placeholder must occur once in the frame');

// Every IP has the same length, so the frame's lengths never change: copy and patch 14 bytes.
const body = (i: number): Buffer => {
  const b = Buffer.from(template);
  b.write(ipFor(args.start + i), at, 'latin1');
  return b;
};

const r = await runRaw({
  host: '127.0.0.1',
  port: args.port,
  path: RLS_PATH,
  connections: args.connections,
  streams: args.streams,
  requests: args.requests,
  body,
});
process.stdout.write(
  `${JSON.stringify({ requests: r.requests, completed: r.completed, failed: r.failed, seconds: r.seconds, rps: r.completed / r.seconds, latency: summarizeUs(r.latenciesUs) })}\n`,
);
