/**
 * What a reservation costs next to a plain decision (issue 20): for a plain fixed-window decision,
 * a reserve and a settle,
 * - Redis CPU per call: INFO commandstats' usec_per_call of EVALSHA (the whole script, nested
 *   redis.call()s included), each kind in a phase of its own after CONFIG RESETSTAT;
 * - service CPU per request: the meshlimit process's user + system CPU (/proc/<pid>/stat) over a
 *   phase, divided by its requests (gRPC decode, limiter, ioredis, encode; the driver is this
 *   process, on the other core when taskset is there).
 * A real meshlimit process (src/main.ts under tsx, test/support/service-process.ts) on a real
 * redis-server (test/support/redis.ts), one Redis call per request (no batching effects: requests
 * are sent `--concurrency` at a time, default 1). Phases are interleaved over `--rounds` rounds
 * and the median is reported. Reserves spread over 1,000 tenants (a few outstanding each), and
 * each round settles exactly the reservations it took.
 *
 *   npx tsx benchmarks/reservations.ts [--rounds 5] [--calls 2000] [--concurrency 1] [--out FILE]
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createRlsClient, type RlsClient, type RlsRequestInput } from '../src/client/rls-client.js';
import type { Redis } from 'ioredis';
import { defaultEvaluateScripts } from '../src/backend/redis/backend.js';
import { registerReservationScript, runReservation } from '../src/backend/redis/reservation-script.js';
import { EVALUATE_ONE_COMMAND, registerEvaluateScripts, runEvaluateCommand } from '../src/backend/redis/script-commands.js';
import { marshalEvaluate } from '../src/backend/redis/script-format.js';
import type { CounterOp } from '../src/limiter/types.js';
import { startRedis } from '../test/support/redis.js';
import { spawnService } from '../test/support/service-process.js';

interface Options {
  rounds: number;
  calls: number;
  concurrency: number;
  out?: string;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { rounds: 5, calls: 2000, concurrency: 1 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--rounds') o.rounds = Number(argv[++i]);
    else if (a === '--calls') o.calls = Number(argv[++i]);
    else if (a === '--concurrency') o.concurrency = Number(argv[++i]);
    else if (a === '--out') o.out = argv[++i];
    else throw new Error(`unknown argument ${a}; usage: reservations.ts [--rounds N] [--calls N] [--concurrency N] [--out FILE]`);
  }
  if (!(o.rounds >= 1 && o.calls >= 100 && o.concurrency >= 1)) throw new Error('--rounds >= 1, --calls >= 100, --concurrency >= 1');
  return o;
}

const KINDS = ['plain', 'reserve', 'settle'] as const;
type Kind = (typeof KINDS)[number];

function request(kind: Kind, round: number, i: number): RlsRequestInput {
  if (kind === 'plain') return { domain: 'bench', descriptors: [{ entries: [{ key: 'client', value: `c${i % 1000}` }] }] };
  const entries = [
    { key: 'tenant', value: `t${i % 1000}` },
    { key: 'phase', value: kind === 'reserve' ? 'reserve' : 'settle' },
    { key: 'request_id', value: `r${round}-${i}` },
  ];
  return { domain: 'bench', descriptors: [{ entries, hitsAddend: kind === 'settle' ? 700 : undefined }] };
}

/** user + system CPU of `pid` in microseconds (/proc/<pid>/stat, clock ticks of 10 ms). */
function cpuMicros(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

async function drive(client: RlsClient, kind: Kind, round: number, o: Options): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < o.calls) {
      const i = next++;
      const r = await client.shouldRateLimit(request(kind, round, i), { deadlineMs: 10_000 });
      if (r.overallCode !== 'OK') throw new Error(`${kind} #${i} answered ${r.overallCode}`);
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
}

/**
 * The scripts alone, back to back (`calls` in flight at once from one client, as
 * benchmarks/redis-cpu sends them): Redis CPU per call with warm caches, comparable with
 * benchmarks/redis-cpu's figures. Through the service, one call at a time, Redis wakes for each
 * call and pays cold caches, which is what a lightly loaded Redis pays.
 */
async function hot(admin: Redis, kind: Kind, round: number, calls: number): Promise<number> {
  const op = (i: number): CounterOp => ({
    key: `hot:{t${i % 1000}}:${kind === 'plain' ? 'fw' : 'rsv'}`,
    algorithm: 'fixed_window',
    windowMs: 3_600_000,
    threshold: 1_000_000_000,
    burst: 1_000_000_000,
    hits: 1,
    enforce: true,
  });
  await admin.config('RESETSTAT');
  await Promise.all(
    Array.from({ length: calls }, (_, i) => {
      if (kind === 'plain') {
        const { keys, args } = marshalEvaluate([op(i)], undefined, false);
        return runEvaluateCommand(admin, EVALUATE_ONE_COMMAND.fixed_window, keys, args);
      }
      const call = {
        phase: kind,
        id: `h${round}-${i}`,
        amount: kind === 'reserve' ? 1000 : 700,
        ttlMs: 600_000,
        expiryCharge: false,
        maxOutstanding: 10_000,
      } as const;
      return runReservation(admin, op(i), call, undefined);
    }),
  );
  const m = /cmdstat_evalsha:calls=(\d+),usec=(\d+)/.exec(String(await admin.info('commandstats')));
  if (m === null) throw new Error('no EVALSHA in INFO commandstats');
  return Number(m[2]) / Number(m[1]);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const loadBefore = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const redis = await startRedis();
  const admin = redis.client();
  // As benchmarks/redis-cpu: redis-server under SCHED_FIFO when the machine allows it, so that
  // other processes on a shared machine do not preempt it mid-script and inflate its timings.
  const redisPid = /process_id:(\d+)/.exec(String(await admin.info('server')))?.[1];
  const realtime = redisPid !== undefined && spawnSync('chrt', ['-f', '-p', '50', redisPid]).status === 0;
  const svc = await spawnService({
    CONFIG_DIR: path.join(import.meta.dirname, 'config/reservations'),
    BACKEND_TYPE: 'redis',
    REDIS_URL: `127.0.0.1:${redis.port}`,
    LOG_LEVEL: 'error',
  });
  const client = createRlsClient(svc.grpcAddress);
  const redisUs: Record<Kind, number[]> = { plain: [], reserve: [], settle: [] };
  const hotUs: Record<Kind, number[]> = { plain: [], reserve: [], settle: [] };
  const scripts = redis.client();
  registerEvaluateScripts(scripts, defaultEvaluateScripts());
  registerReservationScript(scripts);
  const serviceUs: Record<Kind, number[]> = { plain: [], reserve: [], settle: [] };
  try {
    // Warm-up: JIT, connections, script loading.
    for (const kind of KINDS) await drive(client, kind, -1, { ...o, calls: Math.min(o.calls, 500) });
    for (let round = 0; round < o.rounds; round++) {
      for (const kind of KINDS) {
        await admin.config('RESETSTAT');
        const before = cpuMicros(svc.proc.pid);
        await drive(client, kind, round, o);
        const after = cpuMicros(svc.proc.pid);
        const stats = String(await admin.info('commandstats'));
        const m = /cmdstat_evalsha:calls=(\d+),usec=(\d+)/.exec(stats);
        if (m === null) throw new Error(`no EVALSHA in INFO commandstats:\n${stats}`);
        redisUs[kind].push(Number(m[2]) / Number(m[1]));
        serviceUs[kind].push((after - before) / o.calls);
      }
      for (const kind of KINDS) hotUs[kind].push(await hot(scripts, kind, round, o.calls));
    }
  } finally {
    client.close();
    await svc.proc.stop();
    await redis.stop();
  }
  const rows = KINDS.map((k) => ({
    kind: k,
    redisUsPerCall: Number(median(redisUs[k]).toFixed(2)),
    redisMin: Number(Math.min(...redisUs[k]).toFixed(2)),
    redisMax: Number(Math.max(...redisUs[k]).toFixed(2)),
    hotRedisUsPerCall: Number(median(hotUs[k]).toFixed(2)),
    hotMin: Number(Math.min(...hotUs[k]).toFixed(2)),
    hotMax: Number(Math.max(...hotUs[k]).toFixed(2)),
    serviceUsPerRequest: Math.round(median(serviceUs[k])),
    serviceMin: Math.round(Math.min(...serviceUs[k])),
    serviceMax: Math.round(Math.max(...serviceUs[k])),
  }));
  const when = new Date().toISOString();
  const lines = [
    `# Reservations: cost per call (${when})`,
    '',
    `\`npx tsx benchmarks/reservations.ts --rounds ${o.rounds} --calls ${o.calls} --concurrency ${o.concurrency}\`: medians over ${o.rounds} rounds (min..max); redis-server ${realtime ? 'under SCHED_FIFO' : 'at normal priority (chrt not permitted)'}; load average before the run ${loadBefore}.`,
    '',
    '| call | Redis CPU per call, through the service one at a time (EVALSHA usec_per_call) | Redis CPU per call, scripts back to back | service CPU per request (us) |',
    '| --- | --- | --- | --- |',
    ...rows.map(
      (r) =>
        `| ${r.kind} | ${r.redisUsPerCall} (${r.redisMin}..${r.redisMax}) | ${r.hotRedisUsPerCall} (${r.hotMin}..${r.hotMax}) | ${r.serviceUsPerRequest} (${r.serviceMin}..${r.serviceMax}) |`,
    ),
    '',
    'plain = a one-descriptor fixed-window decision (lua/evaluate-one.lua); reserve and settle = lua/reservation.lua. ' +
      'Service CPU: the meshlimit process (gRPC, limiter, ioredis) per request at the given concurrency, from /proc ticks of 10 ms.',
    '',
  ];
  process.stdout.write(lines.join('\n'));
  if (o.out !== undefined) {
    writeFileSync(o.out, lines.join('\n'));
    writeFileSync(o.out.replace(/\.md$/, '.json'), JSON.stringify({ when, options: o, realtime, loadBefore, rows }, null, 2) + '\n');
  }
}

await main();
