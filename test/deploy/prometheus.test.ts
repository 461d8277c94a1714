import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDocument, parse as parseYaml, stringify } from 'yaml';
import type { RlsDescriptorInput } from '../../src/client/rls-client.js';
import { METRIC_NAMES } from '../../src/telemetry/metrics.js';
import { startRedis, type RedisInstance } from '../support/redis.js';
import { reserveCheck, RESERVATION_CONFIG, rlsInput, settleCheck } from '../support/reservations.js';
import { envoyOn, type SimEnvoy } from '../support/rlqs-envoy.js';
import { bootService, eventually, type BootedService } from '../support/service.js';
import { ROOT, loadManifestFile } from './lib/manifests.js';
import { assertPrometheusInstalled, sampleValues, startPrometheus, type PrometheusInstance, type QueryData } from './lib/prometheus.js';

/**
 * The Grafana dashboard and the Prometheus rules against the real thing: a live meshlimit (in
 * process, Redis backend, the deployed edge config with JWT resolution) under a little load that
 * includes over-limit answers, a rejected config reload and a Redis outage, scraped every second
 * by a real Prometheus (Debian's package) that also evaluates the alert rules. Every panel query
 * must return data, and every rule must evaluate without error.
 */

const DASHBOARD = path.join(ROOT, 'deploy/grafana/meshlimit-dashboard.json');
const RULES = path.join(ROOT, 'deploy/grafana/meshlimit.rules.yaml');
const RULE_TESTS = path.join(ROOT, 'deploy/grafana/meshlimit.rules.test.yaml');

interface PanelTarget {
  readonly panel: string;
  readonly refId: string;
  readonly expr: string;
}

interface Panel {
  readonly title?: string;
  readonly type?: string;
  readonly targets?: { refId: string; expr: string }[];
  readonly panels?: Panel[];
}

function dashboardTargets(): PanelTarget[] {
  const d = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Panel[] };
  const out: PanelTarget[] = [];
  const visit = (ps: readonly Panel[]): void => {
    for (const p of ps) {
      for (const t of p.targets ?? []) out.push({ panel: p.title ?? '?', refId: t.refId, expr: t.expr });
      visit(p.panels ?? []);
    }
  };
  visit(d.panels);
  return out;
}

/** Grafana's variables as Grafana sends them with "All" selected, ranges long enough for the whole run. */
function grafanaToPromQL(expr: string): string {
  return expr
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$__interval', '1m')
    .replaceAll('$__range', '1m')
    .replace(/\$\{?(job|domain)\}?/g, '.*');
}

/** The edge config as deployed, with the JWKS read from a file instead of the user service. */
function edgeConfig(jwksFile: string): string {
  const docs = loadManifestFile(path.join(ROOT, 'deploy/kubernetes/meshlimit/configmap.yaml'));
  const text = (docs[0]!.object as { data: Record<string, string> }).data['edge.yaml']!;
  const doc = parseDocument(text);
  doc.deleteIn(['resolution', 'jwt', 'jwks_url']);
  doc.deleteIn(['resolution', 'jwt', 'jwks_timeout_ms']);
  doc.setIn(['resolution', 'jwt', 'jwks_file'], jwksFile);
  // A candidate limit on the per-address rule (the shipped config has none), for its panel.
  const descriptors = doc.toJS().descriptors as { key: string; value?: string; rate_limit?: unknown }[];
  const byAddress = descriptors.findIndex((d) => d.key === 'remote_address' && d.value === undefined && d.rate_limit !== undefined);
  expect(byAddress).toBeGreaterThanOrEqual(0);
  doc.setIn(
    ['descriptors', byAddress, 'candidate_rate_limits'],
    doc.createNode([{ name: 'tighter', unit: 'minute', requests_per_unit: 20 }]),
  );
  return doc.toString();
}

/**
 * A domain for the RLQS and reservation panels: the reservation example of the race tests (its
 * in-flight rule releases an unsettled reservation after 2 s) and a fixed-window rule an RLQS
 * bucket maps to.
 */
const AI_CONFIG = `${RESERVATION_CONFIG}  - key: api
    value: orders
    rate_limit: { unit: minute, requests_per_unit: 6000, algorithm: fixed_window }
`;

const BROKEN_CONFIG = 'domain: broken\ndescriptors:\n  - key: k\n    rate_limit: { unit: fortnight, requests_per_unit: 1 }\n';

describe('Grafana dashboard and Prometheus rules', () => {
  beforeAll(() => assertPrometheusInstalled());

  it('promtool accepts the rules and their unit tests pass', () => {
    const check = spawnSync('promtool', ['check', 'rules', RULES], { encoding: 'utf8' });
    expect(check.status, check.stdout + check.stderr).toBe(0);
    const tests = spawnSync('promtool', ['test', 'rules', RULE_TESTS], { encoding: 'utf8', cwd: path.dirname(RULE_TESTS) });
    expect(tests.status, tests.stdout + tests.stderr).toBe(0);
  });

  it('every panel and rule uses metric names meshlimit exports', () => {
    const known = new Set<string>(METRIC_NAMES);
    // Raw metric names only: recording rules (level:metric:operations) contain ':'.
    const used = (text: string): string[] =>
      [...text.matchAll(/(?<![\w:])meshlimit_[a-z_]+(?![\w:])/g)].map((m) => m[0].replace(/_(bucket|count|sum)$/, ''));
    for (const t of dashboardTargets()) {
      for (const name of used(t.expr))
        expect(known.has(name), `panel "${t.panel}" (${t.refId}) uses ${name}, which src/telemetry/metrics.ts does not declare`).toBe(true);
    }
    const rules = parseYaml(readFileSync(RULES, 'utf8')) as { groups: { rules: { expr: string; record?: string }[] }[] };
    for (const r of rules.groups.flatMap((g) => g.rules)) {
      for (const name of used(r.expr))
        expect(known.has(name), `rule expression ${r.expr} uses ${name}, which src/telemetry/metrics.ts does not declare`).toBe(true);
    }
  });

  describe('against a live meshlimit scraped by a live Prometheus', () => {
    let redis: RedisInstance;
    let svc: BootedService;
    let prom: PrometheusInstance;
    let dir: string;
    let load: { stop(): Promise<void> } | undefined;
    let envoy: SimEnvoy | undefined;

    beforeAll(async () => {
      dir = mkdtempSync(path.join(tmpdir(), 'meshlimit-dashboard-'));
      // Keys for the JWT resolution of the edge domain (verified and failing tokens).
      const { privateKey, publicKey } = await generateKeyPair('ES256');
      const jwksFile = path.join(dir, 'jwks.json');
      writeFileSync(jwksFile, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] }));
      const token = async (company: string): Promise<string> =>
        `Bearer ${await new SignJWT({ company_id: company })
          .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
          .setIssuer('meshlimit-sample-users')
          .setAudience('meshlimit-demo')
          .setSubject('u-1')
          .setIssuedAt()
          .setExpirationTime('10m')
          .sign(privateKey)}`;

      redis = await startRedis();
      svc = await bootService({
        files: { 'edge.yaml': edgeConfig(jwksFile), 'ai.yaml': AI_CONFIG },
        env: {
          BACKEND_TYPE: 'redis',
          REDIS_URL: `127.0.0.1:${redis.port}`,
          FAILURE_POLICY: 'local',
          // The outage below (a lost connection) opens the breaker at once; a short open period.
          BREAKER_OPEN_MS: '1000',
        },
        configPollMs: 200,
      });

      // The rule groups evaluated every second (the shipped recording group uses 30 s).
      const rules = parseYaml(readFileSync(RULES, 'utf8')) as { groups: { interval?: string }[] };
      for (const g of rules.groups) g.interval = '1s';
      const rulesFile = path.join(dir, 'meshlimit.rules.yaml');
      writeFileSync(rulesFile, stringify(rules));
      prom = await startPrometheus({ targets: [`127.0.0.1:${svc.handle.httpPort}`], scrapeInterval: '1s', ruleFiles: [rulesFile] });

      // Traffic as the gateway's EnvoyFilter sends it: per caller, per caller and path, per path.
      const [acme, trial] = [await token('acme'), await token('trial-7')];
      const callers: { auth?: string; ip: string; path: string }[] = [
        { ip: '198.51.100.1', path: '/api/v1/login' },
        { auth: acme, ip: '198.51.100.2', path: '/api/v1/exports/monthly' },
        { auth: trial, ip: '198.51.100.3', path: '/api/v1/users' },
        { auth: 'Bearer not-a-token', ip: '198.51.100.4', path: '/api/v1/users' },
        { ip: '203.0.113.7', path: '/api/v1/users' }, // blocked outright: over limit at once
        { ip: '198.51.100.5', path: '/healthz' },
      ];
      const descriptorsOf = (c: (typeof callers)[number]): RlsDescriptorInput[] => {
        const auth = c.auth === undefined ? [] : [{ key: 'authorization', value: c.auth }];
        const ip = { key: 'remote_address', value: c.ip };
        const p = { key: 'path', value: c.path };
        return [{ entries: [...auth, ip] }, { entries: [...auth, ip, p] }, { entries: [p] }];
      };
      // An Envoy on RLQS for one bucket, and in-flight reservations of which every fourth is never settled.
      envoy = envoyOn(svc.handle.grpcPort, 'ai', 1).start();
      let running = true;
      const loop = (async () => {
        for (let i = 0; running; i++) {
          const c = callers[i % callers.length]!;
          await svc.client.shouldRateLimit({ domain: 'edge', descriptors: descriptorsOf(c) }).catch(() => undefined);
          envoy!.request({ api: 'orders' });
          await svc.client.shouldRateLimit(rlsInput(reserveCheck('t1', `r-${i}`, 'inflight_tenant'))).catch(() => undefined);
          if (i % 4 !== 0)
            await svc.client.shouldRateLimit(rlsInput(settleCheck('t1', `r-${i}`, 0, 'inflight_tenant'))).catch(() => undefined);
          if (i % callers.length === callers.length - 1) {
            // Enforcement gaps: a typo'd domain, and a descriptor shape no rule of edge matches.
            await svc.client.shouldRateLimit({ domain: 'edg', descriptors: descriptorsOf(c) }).catch(() => undefined);
            const tenant = { entries: [{ key: 'tenant', value: `t${i % 7}` }] };
            await svc.client.shouldRateLimit({ domain: 'edge', descriptors: [tenant] }).catch(() => undefined);
            await new Promise((r) => setTimeout(r, 5));
          }
        }
      })();
      load = {
        async stop() {
          running = false;
          await loop;
        },
      };

      // A couple of scrapes of normal traffic (the anonymous callers exceed 60/min on the way).
      await eventually(
        async () => (await prom.api<QueryData>('query', { query: 'meshlimit_decisions_total{outcome="over_limit"}' })).result.length > 0,
        10_000,
        200,
      );
      await eventually(
        async () => (await prom.api<QueryData>('query', { query: 'count_over_time(meshlimit_config_rules[1m])' })).result.length > 0,
        10_000,
        200,
      );

      // A broken config edit: rejected, counted, the old config stays. Written elsewhere and
      // renamed in, so the watcher sees one complete file (as with a ConfigMap's symlink swap).
      writeFileSync(path.join(dir, 'broken.yaml'), BROKEN_CONFIG);
      renameSync(path.join(dir, 'broken.yaml'), path.join(svc.configDir, 'broken.yaml'));
      await eventually(
        async () => /meshlimit_config_reloads_total\{outcome="failure"\} [1-9]/.test(await svc.handle.metrics.render()),
        10_000,
        50,
      );

      // Unsettled reservations released by their TTL (seen rising by Prometheus: increase() needs
      // two samples of the series), and RLQS rounds answered from the store, before the outage.
      const scraped = (query: string) => async (): Promise<boolean> => (await prom.api<QueryData>('query', { query })).result.length > 0;
      await eventually(scraped('increase(meshlimit_reservations_total{outcome="expired"}[1m]) > 0'), 15_000, 200);
      await eventually(scraped('increase(meshlimit_rlqs_reassignment_duration_seconds_count{outcome="store"}[1m]) > 0'), 10_000, 200);

      // A Redis outage: failing calls open the breaker, answers come from the local fallback.
      await redis.kill();
      await eventually(
        async () => /meshlimit_breaker_transitions_total\{from="closed",to="open"\} [1-9]/.test(await svc.handle.metrics.render()),
        10_000,
        50,
      );

      // Scraped at least twice since (rate() and increase() need two samples of a new series),
      // and every rule evaluated after the outage began.
      await eventually(
        async () =>
          (await prom.api<QueryData>('query', { query: 'count_over_time(meshlimit_breaker_transitions_total{to="open"}[1m]) >= 2' })).result
            .length > 0,
        10_000,
        200,
      );
      await eventually(scraped('meshlimit_degraded_answers_total{outcome="local_fallback"} > 0'), 10_000, 200);
      await eventually(scraped('max_over_time(meshlimit_breaker_state{state="open"}[1m]) == 1'), 10_000, 200);
      await eventually(scraped('meshlimit_config_last_reload_success == 0'), 10_000, 200);
      await eventually(scraped('increase(meshlimit_unknown_domain_requests_total{domain="edg"}[1m]) > 0'), 10_000, 200);
      await eventually(scraped('increase(meshlimit_unmatched_descriptors_total{domain="edge",shape="tenant"}[1m]) > 0'), 10_000, 200);
      await eventually(scraped('increase(meshlimit_candidate_decisions_total{outcome="would_deny"}[1m]) > 0'), 10_000, 200);
      await eventually(scraped('increase(meshlimit_near_limit_hits_total[1m]) > 0'), 10_000, 200);
      await eventually(
        scraped('increase(meshlimit_rlqs_reassignment_duration_seconds_count{outcome="failure_policy"}[1m]) > 0'),
        10_000,
        200,
      );
      await eventually(scraped('increase(meshlimit_reservations_total{outcome="expired"}[1m]) > 0'), 10_000, 200);
      const since = Date.now();
      await eventually(
        async () => {
          const { groups } = await prom.api<{ groups: { rules: { lastEvaluation: string }[] }[] }>('rules');
          return groups.flatMap((g) => g.rules).every((r) => Date.parse(r.lastEvaluation) > since);
        },
        10_000,
        200,
      );
    }, 60_000);

    afterAll(async () => {
      await load?.stop();
      envoy?.close();
      await prom?.stop();
      await svc?.close();
      await redis?.stop();
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    });

    it('every dashboard panel query returns data', async () => {
      const targets = dashboardTargets();
      expect(targets.length).toBeGreaterThan(20);
      const empty: string[] = [];
      for (const t of targets) {
        const query = grafanaToPromQL(t.expr);
        const data = await prom.api<QueryData>('query', { query });
        const values = sampleValues(data);
        if (!values.some((v) => Number.isFinite(v)))
          empty.push(`panel "${t.panel}" (${t.refId}): ${query} -> ${JSON.stringify(data.result)}`);
      }
      expect(empty, `panels without data (Prometheus log:\n${prom.output()})`).toEqual([]);
    });

    it('the panels show what happened: over-limit answers, the failed reload, the open breaker, verified and failing tokens', async () => {
      const values = async (query: string): Promise<Record<string, number>> => {
        const data = await prom.api<QueryData>('query', { query });
        return Object.fromEntries(
          (data.result as { metric: Record<string, string>; value: [number, string] }[]).map((s) => [
            Object.values(s.metric).join(','),
            Number(s.value[1]),
          ]),
        );
      };
      expect((await values('sum by (outcome) (meshlimit_decisions_total{domain="edge"})'))['over_limit']).toBeGreaterThan(0);
      expect(await values('max(meshlimit_config_reloads_total{outcome="failure"})')).toEqual({ '': 1 });
      expect(await values('min(meshlimit_config_last_reload_success)')).toEqual({ '': 0 });
      expect((await values('sum by (to) (meshlimit_breaker_transitions_total)'))['open']).toBeGreaterThanOrEqual(1);
      const outcomes = await values('sum by (outcome) (meshlimit_resolutions_total{domain="edge"})');
      expect(outcomes['verified']).toBeGreaterThan(0);
      expect(outcomes['fallback_malformed']).toBeGreaterThan(0);
      expect(outcomes['fallback_missing']).toBeGreaterThan(0);
      // Enforcement gaps: the typo'd domain and the unmatched shape by name, never a value; every
      // configured rule has an idle gauge, and the ones traffic reaches are not idle for long.
      expect(Object.keys(await values('sum by (domain) (meshlimit_unknown_domain_requests_total)'))).toEqual(['edg']);
      const shapes = Object.keys(await values('sum by (domain, shape) (meshlimit_unmatched_descriptors_total)'));
      expect(shapes).toContain('edge,tenant');
      for (const s of shapes) expect(s).toMatch(/^edge,[a-z_]+(\.[a-z_]+)*$/);
      const idle = await values('max by (rule) (meshlimit_rule_idle_seconds)');
      expect(Object.keys(idle).length).toBe(svc.handle.store.current().ruleCount);
      expect(idle['edge.path_/healthz']).toBeLessThan(30);
    });

    it('every recording and alerting rule evaluates without error, and the alerts for what broke are pending', async () => {
      const { groups } = await prom.api<{
        groups: { name: string; rules: { name: string; type: string; health: string; lastError?: string; state?: string }[] }[];
      }>('rules');
      const all = groups.flatMap((g) => g.rules);
      const shipped = parseYaml(readFileSync(RULES, 'utf8')) as { groups: { rules: unknown[] }[] };
      expect(all.length).toBe(shipped.groups.flatMap((g) => g.rules).length);
      const unhealthy = all
        .filter((r) => r.health !== 'ok' || (r.lastError ?? '') !== '')
        .map((r) => `${r.name}: ${r.health} ${r.lastError ?? ''}`);
      expect(unhealthy).toEqual([]);
      const state = (name: string): string | undefined => all.find((r) => r.name === name)?.state;
      // Their `for:` is minutes long, so they are pending, which shows the expressions match the
      // labels meshlimit really exports.
      expect(['pending', 'firing']).toContain(state('MeshlimitConfigReloadFailing'));
      expect(['pending', 'firing']).toContain(state('MeshlimitCircuitBreakerOpen'));
      expect(['pending', 'firing']).toContain(state('MeshlimitDegradedAnswers'));
      expect(['pending', 'firing']).toContain(state('MeshlimitUnknownDomain'));
      expect(['pending', 'firing']).toContain(state('MeshlimitUnmatchedDescriptors'));
      expect(['pending', 'firing']).toContain(state('MeshlimitRlqsOnFailurePolicy'));
      expect(['pending', 'firing']).toContain(state('MeshlimitReservationsNotSettled'));
      expect(state('MeshlimitRuleIdle')).toBe('inactive');
      expect(state('MeshlimitDown')).toBe('inactive');
    });
  });
});
