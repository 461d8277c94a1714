/**
 * Cost of descriptor resolution per request, with and without the verified-token cache.
 *
 *   npx tsx benchmarks/jwt/bench.ts [iterations]
 *
 * What is measured: `DomainResolver.resolve()` on a request shaped like the gateway's
 * (`[(authorization, Bearer <jwt>), (remote_address, ip)]` and the same plus `(path, ...)`: two
 * descriptors carrying one token), sequentially, one call at a time, after a warm-up. "no cache"
 * is `cache_size: 0` (every call verifies the signature with jose/WebCrypto); "cache" is the
 * default (the first call verifies, the rest hit the cache: SHA-256 of the token + an LRU lookup).
 * Keys come from an in-memory JWKS (no network), so only verification is measured.
 */
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { compileConfig } from '../../src/config/compile.js';
import type { RateLimitCheck } from '../../src/limiter/types.js';
import { createKeySource } from '../../src/resolve/key-source.js';
import { DomainResolver } from '../../src/resolve/resolver.js';

const ITER = Number(process.argv[2] ?? 20_000);
const SECRET = 'benchmark-secret-0123456789abcdefghijklmnopqrstuvwxyz';

type Alg = 'RS256' | 'ES256' | 'HS256';

async function setup(alg: Alg, cacheSize: number): Promise<{ resolver: DomainResolver; check: RateLimitCheck }> {
  let signingKey: CryptoKey | Uint8Array;
  let jwk: JWK | undefined;
  if (alg === 'HS256') signingKey = new TextEncoder().encode(SECRET);
  else {
    const pair = await generateKeyPair(alg);
    signingKey = pair.privateKey;
    jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg, use: 'sig' };
  }
  const source = alg === 'HS256' ? 'hs256_secret_env: BENCH_SECRET' : 'jwks_url: http://jwks.invalid/jwks.json';
  const snap = compileConfig([
    {
      path: 'bench.yaml',
      text: `domain: edge\nresolution:\n  cache_size: ${cacheSize}\n  jwt:\n    issuer: bench\n    audience: bench\n    algorithms: [${alg}]\n    ${source}\ndescriptors: []\n`,
    },
  ]);
  const opts = snap.domainOptions('edge')!.resolution!;
  const body = JSON.stringify({ keys: jwk ? [jwk] : [] });
  const { source: keys } = await createKeySource(opts.jwt.keys, {
    now: Date.now,
    fetch: async () => new Response(body, { status: 200 }),
    env: { BENCH_SECRET: SECRET },
  });
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT({ company_id: 'acme' })
    .setProtectedHeader({ alg, kid: 'k1' })
    .setIssuer('bench')
    .setAudience('bench')
    .setIssuedAt(now)
    .setExpirationTime(now + 3600)
    .sign(signingKey);
  const auth = { key: 'authorization', value: `Bearer ${token}` };
  const ip = { key: 'remote_address', value: '198.51.100.7' };
  const check: RateLimitCheck = {
    domain: 'edge',
    hitsAddend: 0,
    descriptors: [{ entries: [auth, ip] }, { entries: [auth, ip, { key: 'path', value: '/api/v1/users' }] }],
  };
  return { resolver: new DomainResolver('edge', opts, keys, Date.now, undefined), check };
}

/** Median of `ROUNDS` timed rounds (the machine may be shared; the median resists one noisy round). */
const ROUNDS = 5;

async function measure(alg: Alg, cacheSize: number): Promise<{ usPerOp: number; opsPerSec: number }> {
  const { resolver, check } = await setup(alg, cacheSize);
  const n = cacheSize === 0 ? Math.max(200, Math.floor(ITER / 10)) : ITER;
  for (let i = 0; i < Math.min(n, 2000); i++) await resolver.resolve(check); // warm-up
  const perOp: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const r = resolver.resolve(check);
      if (r instanceof Promise) await r;
    }
    perOp.push(((performance.now() - t0) * 1000) / n);
  }
  const resolved = await resolver.resolve(check);
  if (resolved.descriptors[0]!.entries[0]!.value !== 'acme') throw new Error('benchmark token did not verify');
  const usPerOp = perOp.sort((a, b) => a - b)[Math.floor(ROUNDS / 2)]!;
  return { usPerOp, opsPerSec: Math.round(1_000_000 / usPerOp) };
}

const rows: string[] = [];
for (const alg of ['RS256', 'ES256', 'HS256'] as const) {
  const cold = await measure(alg, 0);
  const warm = await measure(alg, 10_000);
  rows.push(
    `| ${alg} | ${cold.usPerOp.toFixed(1)} us (${cold.opsPerSec.toLocaleString('en-US')}/s) | ${warm.usPerOp.toFixed(2)} us (${warm.opsPerSec.toLocaleString('en-US')}/s) | ${(cold.usPerOp / warm.usPerOp).toFixed(0)}x |`,
  );
}
process.stdout.write(
  `Node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'} x ${cpus().length}, median of ${ROUNDS} rounds of ${ITER} calls (no cache: ${Math.max(200, Math.floor(ITER / 10))} calls)\n\n`,
);
process.stdout.write('| algorithm | no cache (verify every request) | cache (hit) | speed-up |\n| --- | --- | --- | --- |\n');
process.stdout.write(`${rows.join('\n')}\n`);
