/**
 * `npm run demo`: meshlimit, the sample user service and the gateway stand-in on this machine,
 * then a one-minute tour of per-company limits and the IP fallback, then (unless `--once`) it
 * keeps running so you can try it with curl. Ctrl-C stops everything.
 *
 * Ports (environment): USER_SERVICE_PORT (3000), GATEWAY_PORT (8000), meshlimit PORT (8080) and
 * GRPC_PORT (8081); 0 picks free ones. BACKEND_TYPE=redis REDIS_URL=... uses Redis. With
 * `--once` the exit code says whether every answer of the tour was the expected one.
 */
import { DEMO_PASSWORD } from '../user-service/data.js';
import { startDemoStack, type DemoStack } from './stack.js';

const once = process.argv.includes('--once');
const env = process.env;
const port = (name: string, def: number): number => (env[name] === undefined || env[name] === '' ? def : Number(env[name]));

const out = (line = ''): void => {
  process.stdout.write(`${line}\n`);
};

let stack: DemoStack;
try {
  stack = await startDemoStack({
    userServicePort: port('USER_SERVICE_PORT', 3000),
    gatewayPort: port('GATEWAY_PORT', 8000),
    meshlimitEnv: {
      PORT: String(port('PORT', 8080)),
      GRPC_PORT: String(port('GRPC_PORT', 8081)),
      ...(env['BACKEND_TYPE'] ? { BACKEND_TYPE: env['BACKEND_TYPE'] } : {}),
      ...(env['REDIS_URL'] ? { REDIS_URL: env['REDIS_URL'] } : {}),
      LOG_LEVEL: env['LOG_LEVEL'] || 'warn',
    },
  });
} catch (err) {
  process.stderr.write(
    `demo: could not start: ${err instanceof Error ? err.message : String(err)}\n(are ports 3000, 8000, 8080, 8081 free? set USER_SERVICE_PORT, GATEWAY_PORT, PORT, GRPC_PORT)\n`,
  );
  process.exit(1);
}

const gw = stack.gatewayUrl;
out('meshlimit demo');
out(`  user service  ${stack.userService.url}   login, JWKS (${stack.userService.jwksUrl.replace(stack.userService.url, '')}), users API`);
out(`  gateway       ${gw}   stands in for Envoy: asks meshlimit, then proxies to the user service`);
out(`  meshlimit     gRPC ${stack.grpcAddress}, HTTP ${stack.meshlimitHttpUrl}   config: src/sample/demo/config/`);
out();

/** One HTTP call through the gateway, as the client at `ip` (the demo gateway trusts x-forwarded-for). */
async function call(
  method: string,
  path: string,
  ip: string,
  token?: string,
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const headers: Record<string, string> = { 'x-forwarded-for': ip };
  if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${gw}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    // not JSON
  }
  return { status: res.status, json };
}

let unexpected = 0;
async function step(label: string, times: number, expected: number[], one: () => Promise<{ status: number }>): Promise<void> {
  const seen: number[] = [];
  for (let i = 0; i < times; i++) seen.push((await one()).status);
  const ok = seen.join(' ') === expected.join(' ');
  if (!ok) unexpected++;
  out(`   ${label.padEnd(46)} ${seen.join(' ')}${ok ? '' : `   (expected ${expected.join(' ')})`}`);
}

async function login(username: string, ip: string): Promise<string> {
  const r = await call('POST', '/login', ip, undefined, { username, password: DEMO_PASSWORD });
  if (r.status !== 200) throw new Error(`login ${username}: HTTP ${r.status}`);
  return r.json['access_token'] as string;
}

try {
  out('1. Log in (POST /login): ES256 tokens carrying company_id, signed by the user service');
  const acme = await login('alice@acme.example', '198.51.100.1');
  const globex = await login('carol@globex.example', '198.51.100.2');
  out(`   alice@acme.example  -> company acme     token ${acme.slice(0, 16)}...`);
  out(`   carol@globex.example -> company globex  token ${globex.slice(0, 16)}...`);
  out();
  out('2. Per-company limits (edge: 5 per company, refilled at 5/minute), one address for everyone:');
  await step('acme   7 x GET /users', 7, [200, 200, 200, 200, 200, 429, 429], () => call('GET', '/users', '198.51.100.50', acme));
  await step('globex 2 x GET /users (its own quota)', 2, [200, 200], () => call('GET', '/users', '198.51.100.50', globex));
  out();
  out('3. The IP fallback (3 per client address, refilled at 3/minute):');
  const forged = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(
    JSON.stringify({
      company_id: 'globex',
      sub: 'u-3',
      iss: 'meshlimit-sample-users',
      aud: 'meshlimit-demo',
      exp: Math.floor(Date.now() / 1000) + 600,
    }),
  ).toString('base64url')}.`;
  await step('forged token (alg none) "globex", 203.0.113.9', 5, [401, 401, 401, 429, 429], () =>
    call('GET', '/users', '203.0.113.9', forged),
  );
  await step('no token, 192.0.2.77', 4, [401, 401, 401, 429], () => call('GET', '/users', '192.0.2.77'));
  out('   (401: meshlimit let it through, counted by IP, and the service rejected the token; 429: the IP is out)');
  out();
  out('4. App-level limit inside the user service (POST /reports: 2 per company, asked over gRPC');
  out('   by src/sample/rate-limit-guard.ts), globex, whose edge quota still has 3 left:');
  await step('globex 3 x POST /reports', 3, [202, 202, 429], () => call('POST', '/reports', '198.51.100.60', globex));
  out();
  out('5. What meshlimit counted (GET /metrics):');
  const metrics = await (await fetch(`${stack.meshlimitHttpUrl}/metrics`)).text();
  for (const line of metrics.split('\n')) {
    if (/^meshlimit_(resolutions_total|jwks_refreshes_total|resolution_cache_lookups_total)\{/.test(line) && !line.endsWith(' 0'))
      out(`   ${line}`);
  }
  out();
  out(
    unexpected === 0
      ? 'Every answer was the expected one.'
      : `${unexpected} step(s) answered differently than expected (a slow machine refills token buckets; see above).`,
  );
} catch (err) {
  unexpected++;
  out(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
}

if (once) {
  await stack.close();
  process.exit(unexpected === 0 ? 0 : 1);
}

out();
out('Try it yourself (Ctrl-C to stop):');
out(
  `   TOKEN=$(curl -s ${gw}/login -H 'content-type: application/json' -d '{"username":"bob@acme.example","password":"demo"}' | sed 's/.*"access_token":"\\([^"]*\\)".*/\\1/')`,
);
out(`   curl -i ${gw}/users -H "authorization: Bearer $TOKEN"`);
out(`   curl -i ${gw}/users -H 'x-forwarded-for: 198.51.100.99'`);
out(`   curl -s ${stack.meshlimitHttpUrl}/metrics | grep meshlimit_resolutions_total`);
out('   users: alice@acme.example bob@acme.example carol@globex.example dan@globex.example erin@trial.example (password: demo)');
const stop = (): void => {
  void stack.close().then(() => process.exit(0));
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
