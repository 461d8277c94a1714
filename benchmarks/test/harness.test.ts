/**
 * Tests of the harness itself (not of meshlimit): parsers, statistics, the exact sliding log
 * the sliding window is compared with, the request frames, and the raw HTTP/2 client against a
 * real grpc-js server. Run: npx vitest run -c benchmarks/vitest.config.ts
 */
import { describe, expect, it } from 'vitest';
import { exactSlidingLog, maxInWindow } from '../lib/accuracy.js';
import { decodeResponseFrame, encodeRequest, grpcFrame, requestFrame } from '../lib/frames.js';
import { h2loadArgs, parseDuration, parseH2loadOutput } from '../lib/h2load.js';
import { ipFor, IP_SPACE } from '../lib/scenarios.js';
import { median, medianInterval, percentile, summarizeUs } from '../lib/stats.js';
import { acceptance, statusText, type Report } from '../lib/report.js';
import { parseRequestCounts, parseScriptStats } from '../lib/targets.js';

// h2load 1.52.0's report, verbatim from a run of this harness.
const H2LOAD_OUTPUT = `starting benchmark...
spawning thread #0: 16 total client(s). 60000 total requests
Application protocol: h2c
progress: 10% done
finished in 3.50s, 17137.55 req/s, 1.06MB/s
requests: 60000 total, 60000 started, 60000 done, 60000 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 60000 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 3.72MB (3903232) total, 328.13KB (336000) headers (space savings 96.38%), 1.98MB (2070000) data
                     min         max         mean         sd        +/- sd
time for request:     4.23ms    140.43ms     29.07ms     12.04ms    84.88%
`;

describe('h2load', () => {
  it('parses the report', () => {
    expect(parseH2loadOutput(H2LOAD_OUTPUT)).toEqual({
      requests: 60000,
      succeeded: 60000,
      failed: 0,
      errored: 0,
      timeout: 0,
      status2xx: 60000,
      seconds: 3.5,
      rps: 17137.55,
    });
  });

  it('rejects a report without the summary lines', () => {
    expect(() => parseH2loadOutput('connect to 127.0.0.1:1 failed')).toThrow(/unexpected h2load output/);
  });

  it('parses durations in every unit h2load prints', () => {
    expect(parseDuration('3.50s')).toBe(3.5);
    expect(parseDuration('850ms')).toBe(0.85);
    expect(parseDuration('250us')).toBe(0.00025);
    expect(parseDuration('2m')).toBe(120);
  });

  it('builds a gRPC POST in count mode', () => {
    expect(h2loadArgs({ port: 9, dataFile: '/f.bin', clients: 2, streams: 4, requests: 100, logFile: '/l.tsv' })).toEqual([
      '-n',
      '100',
      '-c',
      '2',
      '-m',
      '4',
      '-t',
      '1',
      '-d',
      '/f.bin',
      '-H',
      'content-type: application/grpc',
      '-H',
      'te: trailers',
      '--log-file',
      '/l.tsv',
      'http://127.0.0.1:9/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit',
    ]);
    expect(h2loadArgs({ port: 9, dataFile: '/f.bin', clients: 1, streams: 1, requests: 1, tls: true }).at(-1)).toBe(
      'https://127.0.0.1:9/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit',
    );
  });
});

describe('statistics', () => {
  it('takes nearest-rank percentiles', () => {
    const v = Float64Array.from({ length: 1000 }, (_, i) => i + 1);
    expect(percentile(v, 50)).toBe(500);
    expect(percentile(v, 99)).toBe(990);
    expect(percentile(v, 99.9)).toBe(999);
    expect(percentile(v, 100)).toBe(1000);
    expect(percentile(Float64Array.of(7), 99.9)).toBe(7);
  });

  it('summarizes microseconds as milliseconds', () => {
    const s = summarizeUs([300, 100, 200, 400]);
    expect(s).toEqual({ samples: 4, p50: 0.2, p90: 0.4, p99: 0.4, p999: 0.4, max: 0.4 });
  });

  it('gives a distribution-free interval for the median from order statistics', () => {
    // 5 values: even the whole range covers only 1 - 2/32 = 93.75% < 95%.
    expect(medianInterval([1, 2, 3, 4, 5])).toBeUndefined();
    expect(medianInterval([1, 2, 3, 4, 5], 0.9)).toEqual({ low: 1, high: 5, coverage: 1 - 2 / 32 });
    // 7 values: the range (98.4%); [x(2), x(6)] would cover only 1 - 2 * 8/128 = 87.5%.
    expect(medianInterval([7, 1, 6, 2, 5, 3, 4])).toEqual({ low: 1, high: 7, coverage: 1 - 2 / 128 });
    // 9 values: [x(2), x(8)] covers 1 - 2 * 10/512 = 96.1%; [x(3), x(7)] only 82%.
    expect(medianInterval([9, 8, 7, 6, 5, 4, 3, 2, 1])).toEqual({ low: 2, high: 8, coverage: 1 - 20 / 512 });
    // Non-finite values (a failed run) are left out, as median() does.
    expect(medianInterval([1, 2, 3, 4, 5, 6, Number.NaN])?.coverage).toBeCloseTo(1 - 2 / 64, 12);
    // A large sample narrows it around the middle: 101 values 0..100, 95% -> ranks 41..61.
    const i = medianInterval(Array.from({ length: 101 }, (_, k) => k));
    expect(i?.low).toBe(40);
    expect(i?.high).toBe(60);
    expect(i?.coverage).toBeGreaterThanOrEqual(0.95);
  });

  it('takes medians of odd and even counts', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });
});

describe('server counters', () => {
  it('reads meshlimit_requests_total by code', () => {
    const text = [
      '# HELP meshlimit_requests_total Requests by outcome.',
      'meshlimit_requests_total{code="ok"} 120',
      'meshlimit_requests_total{code="over_limit"} 30',
      'meshlimit_requests_total{code="unavailable"} 2',
      'meshlimit_requests_total{code="internal"} 1',
      'meshlimit_decisions_total{domain="bench",rule="bench.tenant",result="ok"} 120',
    ].join('\n');
    expect(parseRequestCounts(text)).toEqual({ ok: 120, overLimit: 30, errors: 3, errorsByCode: { unavailable: 2, internal: 1 } });
  });

  it('sums EVALSHA and EVAL from INFO commandstats', () => {
    const info = [
      '# Commandstats',
      'cmdstat_evalsha:calls=1000,usec=9000,usec_per_call=9.00,rejected_calls=0,failed_calls=0',
      'cmdstat_eval:calls=2,usec=40,usec_per_call=20.00,rejected_calls=0,failed_calls=0',
      'cmdstat_get:calls=1000,usec=100,usec_per_call=0.10,rejected_calls=0,failed_calls=0',
    ].join('\r\n');
    expect(parseScriptStats(info)).toEqual({ calls: 1002, usec: 9040 });
  });
});

describe('exact sliding log', () => {
  it('admits at most the limit in any window and frees a slot exactly one window later', () => {
    // limit 2 per 1000 ms; arrivals at 0, 1, 2 (third denied), 1000 (first has left), 1001, 1002
    expect(exactSlidingLog([0, 1, 2, 1000, 1001, 1002], 2, 1000)).toBe(4);
  });

  it('counts the densest window-long span', () => {
    expect(maxInWindow([0, 10, 999, 1000, 1500], 1000)).toBe(3);
    expect(maxInWindow([], 1000)).toBe(0);
  });
});

describe('request frames', () => {
  it('prefixes the protobuf with the 5-byte gRPC header', () => {
    const req = { domain: 'bench', descriptors: [{ entries: [{ key: 'tenant', value: 'acme' }] }] };
    const pb = encodeRequest(req);
    const frame = requestFrame(req);
    expect(frame.subarray(0, 5)).toEqual(Buffer.from([0, 0, 0, 0, pb.length]));
    expect(frame.subarray(5)).toEqual(pb);
    // domain (field 1) first; no hits_addend field, as Envoy sends it
    expect(pb.subarray(0, 7)).toEqual(Buffer.from([0x0a, 5, ...Buffer.from('bench')]));
    expect(pb.includes(Buffer.from([0x18, 0x00]))).toBe(false);
  });

  it('rejects a response frame whose length does not match', () => {
    expect(() => decodeResponseFrame(Buffer.concat([grpcFrame(Buffer.from([0x08, 0x01])), Buffer.from([0])]))).toThrow(/does not match/);
  });
});

describe('high-cardinality IPs', () => {
  it('are 14 characters and distinct', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200_000; i++) {
      const ip = ipFor(i);
      expect(ip.length).toBe(14);
      seen.add(ip);
    }
    expect(seen.size).toBe(200_000);
    expect(ipFor(0)).toBe('10.100.100.100');
    expect(ipFor(IP_SPACE - 1)).toBe('10.255.255.255');
  });
});

describe('acceptance', () => {
  const base = {
    throughput: [
      { scenario: 'one-tb', target: 'redis', ratioToEcho: 0.8, redisUsPerDescriptor: 4.5, errors: 0 },
      { scenario: 'one-fw', target: 'redis', ratioToEcho: 0.8, redisUsPerDescriptor: 2.8, errors: 0 },
    ],
    latency: [
      { scenario: 'one-tb', target: 'echo', p50: 0.2, p99: 0.5, errors: 0 },
      { scenario: 'one-tb', target: 'redis', p50: 0.31, p99: 0.7, errors: 0 },
    ],
    sweep: [],
    warmupErrors: 0,
    highCardinality: [],
    workers: { supported: false, note: 'skipped' },
    accuracy: { bursts: [], sliding: [] },
    calibration: { minimalScriptUs: 4, returnOneUs: 1.48, calls: 100_000, roundTrip: { p50: 0.09, p99: 0.2, samples: 5000 } },
  } as unknown as Report;

  it('judges Redis CPU on the figure measured here and shows the reference-scaled one beside it', () => {
    const rows = acceptance(base);
    const tb = rows.find((r) => r.id === 'redis-cpu-tb')!;
    const fw = rows.find((r) => r.id === 'redis-cpu-fw')!;
    // 4.5 us here is 2.25 us scaled (0.74 / 1.48 = 0.5): still judged on 4.5
    expect(tb).toMatchObject({ status: 'FAIL', measured: "4.5 us (x 0.5 on the issue's reference machine: 2.25 us)" });
    expect(fw.status).toBe('FAIL');
  });

  it('marks a speed row below its line as one short sample in a quick run, a failure in a full run; correctness fails in both', () => {
    const rows = acceptance(base);
    const tb = rows.find((r) => r.id === 'redis-cpu-tb')!;
    expect(statusText(tb, 'full')).toBe('**FAIL**');
    expect(statusText(tb, 'quick')).toBe('below the line (one short sample)');
    const errors = { id: 'errors', check: 'errors in every run: 0', measured: '3', status: 'FAIL' as const };
    const accuracy = { id: 'accuracy-token_bucket', check: 'accuracy', measured: '1001 of 1000', status: 'FAIL' as const };
    for (const mode of ['quick', 'full'] as const) {
      expect(statusText(errors, mode)).toBe('**FAIL**');
      expect(statusText(accuracy, mode)).toBe('**FAIL**');
      expect(statusText({ ...tb, status: 'pass' }, mode)).toBe('pass');
    }
  });

  it("shows a ratio's 95% interval and says when the line lies inside it", () => {
    const runs = [0.8, 0.85, 0.88, 0.92, 0.95, 1.0, 1.05];
    const report = {
      ...base,
      throughput: [
        { scenario: 'one-tb', target: 'memory', ratioToEcho: 0.92, ratioRuns: runs, ratioInterval: medianInterval(runs), errors: 0 },
        { scenario: 'one-tb', target: 'redis', ratioToEcho: 0.92, ratioRuns: runs, ratioInterval: medianInterval(runs), errors: 0 },
      ],
    } as unknown as Report;
    const rows = acceptance(report);
    expect(rows.find((r) => r.id === 'ratio-memory')).toMatchObject({
      status: 'pass',
      measured: "0.92x (95% interval of the median 0.8-1.05, which spans the 0.9 line: within this run's noise)",
    });
    // 0.75 lies below the interval: the pass is clear, and no caveat is added.
    expect(rows.find((r) => r.id === 'ratio-redis')).toMatchObject({
      status: 'pass',
      measured: '0.92x (95% interval of the median 0.8-1.05)',
    });
  });

  it('puts the latency floor (echo + one Redis round trip) next to the latency figures', () => {
    const p50 = acceptance(base).find((r) => r.id === 'latency-p50')!;
    expect(p50).toMatchObject({ status: 'FAIL', measured: '0.31 ms (floor here: echo 0.2 + Redis round trip 0.09 = 0.29 ms)' });
  });
});
