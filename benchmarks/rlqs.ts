/**
 * RLQS against RLS: how many protocol messages one admitted request costs.
 *
 *   npx tsx benchmarks/rlqs.ts [--seconds 30] [--rate 5000] [--limit-rate 3000]
 *
 * Five simulated Envoys (test/support/rlqs-envoy.ts, the stand-in for Envoy's
 * rate_limit_quota filter: 1 s reporting interval, local token buckets) send `--rate` requests/s
 * in total, evenly, into one bucket whose rule allows `--limit-rate` requests/s (a fixed window
 * of 10 s), through one meshlimit process on a standalone redis-server. Counted: requests,
 * admitted requests, RLQS messages sent and received; the admitted total per full window against
 * the limit and the documented bound (overshootBound, src/quota/allocate.ts).
 *
 * RLS's figure is not measured here: with RLS every request, admitted or denied, is one
 * ShouldRateLimit round trip (2 messages) by construction, so per admitted request it is
 * requests / admitted round trips. Writes benchmarks/results/rlqs.md and rlqs.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { overshootBound, TTL_INTERVALS } from '../src/quota/index.js';
import { Fleet, REPORTING_INTERVAL_SEC, scenarioConfigDir, SCENARIO_ENV, sleep } from '../test/e2e/rlqs-scenario.js';
import { startRedis } from '../test/support/redis.js';
import { ROOT, spawnService } from '../test/support/service-process.js';

const ENVOYS = 5;
const WINDOW_SEC = 10;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : Number(process.argv[i + 1]);
}

async function main(): Promise<void> {
  const seconds = arg('seconds', 30);
  const rate = arg('rate', 5000);
  const limitRate = arg('limit-rate', 3000);
  const limit = limitRate * WINDOW_SEC;
  const redis = await startRedis();
  const svc = await spawnService({
    CONFIG_DIR: scenarioConfigDir(limit, WINDOW_SEC),
    BACKEND_TYPE: 'redis',
    REDIS_URL: redis.url,
    LOG_LEVEL: 'error',
    ...SCENARIO_ENV,
  });
  let fleet: Fleet | undefined;
  try {
    fleet = new Fleet(
      () => [svc.grpcAddress],
      Array.from({ length: ENVOYS }, () => rate / ENVOYS),
      'bench',
      WINDOW_SEC,
    );
    await sleep(seconds * 1000);
    fleet.stop();
    const sent = fleet.envoys.reduce((n, e) => n + e.messagesSent, 0);
    const received = fleet.envoys.reduce((n, e) => n + e.messagesReceived, 0);
    const admitted = fleet.totalAdmitted;
    const windows = fleet.fullWindows();
    const bound = overshootBound({
      requestsPerUnit: limit,
      windowSec: WINDOW_SEC,
      envoys: ENVOYS,
      reportingIntervalSec: REPORTING_INTERVAL_SEC,
      ttlSec: TTL_INTERVALS * REPORTING_INTERVAL_SEC,
    });
    const results = {
      date: new Date().toISOString(),
      seconds,
      envoys: ENVOYS,
      offeredPerSec: rate,
      requests: fleet.requests,
      admitted,
      limit: `${limit} per ${WINDOW_SEC} s`,
      rlqsMessages: { sent, received, total: sent + received },
      rlqsMessagesPerAdmitted: (sent + received) / admitted,
      rlsRoundTripsPerRequest: 1,
      rlsRoundTripsPerAdmitted: fleet.requests / admitted,
      windows: windows.map((w) => ({ start: new Date(w.start).toISOString(), admitted: w.admitted })),
      overshootBound: bound,
    };
    const md = [
      `# RLQS vs RLS: messages per admitted request (${results.date})`,
      '',
      `\`npx tsx benchmarks/rlqs.ts --seconds ${seconds} --rate ${rate} --limit-rate ${limitRate}\`: ${ENVOYS} simulated Envoys (test/support/rlqs-envoy.ts), ${rate} requests/s offered in total, one rule of ${limit} per ${WINDOW_SEC} s (fixed window), one meshlimit process on a standalone redis-server, reporting interval ${REPORTING_INTERVAL_SEC} s.`,
      '',
      '| protocol | per request | per admitted request |',
      '| --- | --- | --- |',
      `| RLS (ShouldRateLimit round trips; by construction) | 1 | ${results.rlsRoundTripsPerAdmitted.toFixed(3)} |`,
      `| RLQS (messages sent + received, measured) | ${((sent + received) / fleet.requests).toFixed(5)} | ${results.rlqsMessagesPerAdmitted.toFixed(5)} |`,
      '',
      `Requests ${fleet.requests}, admitted ${admitted}; RLQS messages: ${sent} reports sent, ${received} responses received.`,
      '',
      `Admitted per full ${WINDOW_SEC} s window (limit ${limit}, documented bound ${limit} + ${bound.toFixed(0)}): ${windows.map((w) => w.admitted).join(', ')}.`,
      '',
    ].join('\n');
    const dir = path.join(ROOT, 'benchmarks', 'results');
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'rlqs.json'), `${JSON.stringify(results, null, 2)}\n`);
    writeFileSync(path.join(dir, 'rlqs.md'), md);
    process.stdout.write(md);
  } finally {
    fleet?.stop();
    await svc.proc.stop();
    await redis.stop();
  }
}

void main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
