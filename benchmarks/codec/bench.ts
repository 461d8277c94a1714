/**
 * Nanoseconds per ShouldRateLimit request decode and response encode: the hand-written codec
 * (src/server/grpc/codec.ts) against @grpc/proto-loader's requestDeserialize /
 * responseSerialize with SERVER_LOADER_OPTIONS (what the server used before, and what a bare
 * grpc-js server uses).
 *
 *   npx tsx benchmarks/codec/bench.ts [calls per round] [rounds]
 *
 * Messages are shaped like the gateway's: one descriptor (`remote_address`), and four
 * (company, company + path, address, address + method), answered by decisionToResponse with
 * the rate-limit headers on. Each round runs every (case, codec) pair once, in an order that
 * alternates between rounds, so machine noise falls on both codecs alike; the figure quoted is
 * the median over rounds.
 */
import { performance } from 'node:perf_hooks';
import type { Decision, DescriptorStatus } from '../../src/limiter/types.js';
import { decodeRateLimitRequest } from '../../src/server/grpc/codec-decode.js';
import { encodeRateLimitResponse } from '../../src/server/grpc/codec-encode.js';
import { decisionToResponse, type WireRateLimitResponse } from '../../src/server/grpc/mapping.js';
import { loadServerPackage, RLS_SERVICE, serviceDefinition } from '../../src/server/grpc/protos.js';

const CALLS = Number(process.argv[2] ?? 20_000);
const ROUNDS = Number(process.argv[3] ?? 15);

const method = serviceDefinition(loadServerPackage(), RLS_SERVICE)['ShouldRateLimit']!;

const e = (key: string, value: string): { key: string; value: string } => ({ key, value });
const oneDescriptor = { domain: 'edge', descriptors: [{ entries: [e('remote_address', '198.51.100.7')] }] };
const fourDescriptors = {
  domain: 'edge',
  descriptors: [
    { entries: [e('company_id', 'acme-corp')] },
    { entries: [e('company_id', 'acme-corp'), e('path', '/v1/orders')] },
    { entries: [e('remote_address', '198.51.100.7')] },
    { entries: [e('remote_address', '198.51.100.7'), e('method', 'POST')] },
  ],
};

function status(remaining: number, unit: 'second' | 'minute' | 'hour'): DescriptorStatus {
  return {
    code: 'OK',
    limit: { requestsPerUnit: 100, unit, unitMultiplier: 1, name: undefined },
    remaining,
    resetMs: 41_250,
    shadowed: false,
    unlimited: false,
  };
}
const headers = { limit: 'RateLimit-Limit', remaining: 'RateLimit-Remaining', reset: 'RateLimit-Reset' };
const oneStatus: Decision = { code: 'OK', statuses: [status(57, 'minute')] };
const fourStatuses: Decision = {
  code: 'OK',
  statuses: [
    status(912, 'hour'),
    status(57, 'minute'),
    status(4, 'second'),
    { code: 'OK', remaining: 0, resetMs: 0, shadowed: false, unlimited: false },
  ],
};

interface Case {
  readonly name: string;
  readonly ours: () => number;
  readonly theirs: () => number;
}

function decodeCase(name: string, req: object): Case {
  const buf = method.requestSerialize(req);
  return {
    name: `decode ${name} (${buf.length} B)`,
    ours: () => decodeRateLimitRequest(buf).descriptors.length,
    theirs: () => (method.requestDeserialize(buf) as { descriptors: unknown[] }).descriptors.length,
  };
}

function encodeCase(name: string, decision: Decision): Case {
  const res: WireRateLimitResponse = decisionToResponse(decision, headers);
  const size = method.responseSerialize(res).length;
  if (!encodeRateLimitResponse(res).equals(method.responseSerialize(res))) throw new Error(`${name}: encoders disagree`);
  return {
    name: `encode ${name} (${size} B)`,
    ours: () => encodeRateLimitResponse(res).length,
    theirs: () => method.responseSerialize(res).length,
  };
}

const cases: Case[] = [
  decodeCase('1 descriptor', oneDescriptor),
  decodeCase('4 descriptors', fourDescriptors),
  encodeCase('1 status', oneStatus),
  encodeCase('4 statuses', fourStatuses),
];

let sink = 0;
function time(fn: () => number): number {
  const start = performance.now();
  for (let i = 0; i < CALLS; i++) sink += fn();
  return ((performance.now() - start) * 1e6) / CALLS;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

// Warm-up: both codecs optimised before anything is timed.
for (let i = 0; i < 3; i++) {
  for (const c of cases) {
    time(c.ours);
    time(c.theirs);
  }
}

const samples = cases.map(() => ({ ours: [] as number[], theirs: [] as number[] }));
for (let r = 0; r < ROUNDS; r++) {
  cases.forEach((c, i) => {
    const s = samples[i]!;
    if (r % 2 === 0) {
      s.ours.push(time(c.ours));
      s.theirs.push(time(c.theirs));
    } else {
      s.theirs.push(time(c.theirs));
      s.ours.push(time(c.ours));
    }
  });
}

console.log(`Node ${process.version}, ${CALLS} calls per round, ${ROUNDS} rounds, medians (sink ${sink % 7})\n`);
console.log('| case | proto-loader ns | codec ns | speed-up |');
console.log('| --- | ---: | ---: | ---: |');
cases.forEach((c, i) => {
  const theirs = median(samples[i]!.theirs);
  const ours = median(samples[i]!.ours);
  console.log(`| ${c.name} | ${theirs.toFixed(0)} | ${ours.toFixed(0)} | ${(theirs / ours).toFixed(1)}x |`);
});
