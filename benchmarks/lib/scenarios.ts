/**
 * The request shapes the harness measures. Each scenario is one or more RateLimitRequests; each
 * request becomes one gRPC frame file, driven by its own h2load process (h2load posts one body
 * per process), and the connections are split evenly between them.
 *
 * Keys and limits are in benchmarks/config/throughput/bench.yaml.
 */
import type { RlsRequestInput } from '../../src/client/rls-client.js';

export const BENCH_DOMAIN = 'bench';

export interface Scenario {
  readonly id: string;
  readonly title: string;
  /** What it measures, for the README and the JSON. */
  readonly about: string;
  /** Descriptors per request (Redis CPU is also reported per descriptor). */
  readonly descriptors: number;
  /** One request per h2load process. */
  readonly requests: readonly RlsRequestInput[];
}

const one = (key: string, value: string): RlsRequestInput => ({ domain: BENCH_DOMAIN, descriptors: [{ entries: [{ key, value }] }] });

export const SCENARIOS: readonly Scenario[] = [
  {
    id: 'one-tb',
    title: 'one descriptor, token bucket',
    about: 'One descriptor per request on one tenant counter (token bucket), always admitted: the cost of one charging decision.',
    descriptors: 1,
    requests: [one('tenant', 'acme')],
  },
  {
    id: 'one-fw',
    title: 'one descriptor, fixed window',
    about: "As one-tb with a fixed window (upstream's algorithm).",
    descriptors: 1,
    requests: [one('client', 'acme')],
  },
  {
    id: 'one-sw',
    title: 'one descriptor, sliding window',
    about: 'As one-tb with a sliding window (two counters per decision).',
    descriptors: 1,
    requests: [one('user', 'acme')],
  },
  {
    id: 'four',
    title: 'four descriptors',
    about:
      'What an Istio gateway sends for one call: client IP (sliding window), tenant (token bucket), tenant+path (fixed window, nested), path (fixed window); all admitted, one script call for all four.',
    descriptors: 4,
    requests: [
      {
        domain: BENCH_DOMAIN,
        descriptors: [
          { entries: [{ key: 'remote_address', value: '198.51.100.23' }] },
          { entries: [{ key: 'tenant', value: 'acme' }] },
          {
            entries: [
              { key: 'tenant', value: 'acme' },
              { key: 'path', value: '/api/v1/orders' },
            ],
          },
          { entries: [{ key: 'path', value: '/api/v1/orders' }] },
        ],
      },
    ],
  },
  {
    id: 'hot',
    title: 'one hot key over its limit',
    about: 'Every request on one client far over its limit (1000/s fixed window): almost every answer is OVER_LIMIT and charges nothing.',
    descriptors: 1,
    requests: [one('hot', 'abuser')],
  },
  {
    id: 'mixed',
    title: 'mixed allowed and denied',
    about:
      'Two h2load processes with half of the connections each: one on an admitted tenant (token bucket), one on a blocked client (fixed window, always over). The split is reported as measured.',
    descriptors: 1,
    requests: [one('tenant', 'acme'), one('blocked', 'scraper')],
  },
];

/** High cardinality: one descriptor per request, a different client IP every request. */
export const HIGH_CARDINALITY = {
  id: 'highcard',
  title: 'high cardinality (distinct client IPs)',
  about:
    'One descriptor [(remote_address, IP)] per request, a new IP on every request (sliding window, one hour): every decision creates a counter. Driven by benchmarks/vary-load.ts, not h2load (h2load cannot vary the body).',
  descriptors: 1,
} as const;

/** The fixed-width IP (always 14 characters) for index i: 10.ccc.bbb.aaa with each part in 100..255. */
export function ipFor(i: number): string {
  const a = 100 + (i % 156);
  const b = 100 + (Math.floor(i / 156) % 156);
  const c = 100 + (Math.floor(i / (156 * 156)) % 156);
  return `10.${c}.${b}.${a}`;
}

/** Distinct IPs {@link ipFor} can produce before it repeats. */
export const IP_SPACE = 156 ** 3;
