import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfigDir } from '../../src/config/index.js';
import {
  bootstrapSetups,
  checkMeshlimitDeployment,
  checkSetups,
  configFromConfigMap,
  configFromDir,
  envOf,
  istioSetups,
  meshlimitDeployment,
  secretReferences,
  type CheckResult,
  type DescriptorRow,
} from './lib/consistency.js';
import { ROOT, loadManifestFile, manifestFiles, where, type K8sObject, type ManifestDoc } from './lib/manifests.js';

/**
 * The gateway and meshlimit agree: every descriptor the gateway's rate-limit actions can send
 * reaches a rule of the descriptor config meshlimit is deployed with (after meshlimit's JWT
 * resolution), and the Istio traps are avoided (grpc- port name, exact virtual host names, an
 * explicit RLS timeout above meshlimit's Redis timeout, no client-controlled header deciding who
 * a caller is counted as). Fixtures under test/deploy/fixtures/ break one thing each, and the
 * check must name the file and what is wrong.
 */

const FIXTURES = path.join(ROOT, 'test/deploy/fixtures');
const CONFIG_LABEL = 'deploy/kubernetes/meshlimit/configmap.yaml (ConfigMap meshlimit-config)';

function deployDocs(): ManifestDoc[] {
  return ['deploy/kubernetes', 'deploy/istio'].flatMap((d) => manifestFiles(path.join(ROOT, d))).flatMap(loadManifestFile);
}

/** Where a shipped object is, as messages name it (file, document, line, kind/name). */
function whereShipped(kind: string, name: string): string {
  return where(deployDocs().find((d) => identity(d).startsWith(`${kind}/`) && identity(d).endsWith(`/${name}`))!);
}

function identity(d: ManifestDoc): string {
  const o = d.object as unknown as K8sObject;
  return `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
}

/** The shipped manifests with the fixture's objects in place of those of the same kind and name. */
function withFixture(name: string): ManifestDoc[] {
  const fixture = manifestFiles(path.join(FIXTURES, name)).flatMap(loadManifestFile);
  const replaced = new Set(fixture.map(identity));
  return [...deployDocs().filter((d) => !replaced.has(identity(d))), ...fixture];
}

async function checkIstio(docs: ManifestDoc[]): Promise<CheckResult> {
  const extracted = istioSetups(docs);
  const config = await configFromConfigMap(docs, 'meshlimit-config');
  const redisTimeoutMs = Number(envOf(meshlimitDeployment(docs).container, 'REDIS_COMMAND_TIMEOUT_MS') ?? '50');
  const r = await checkSetups(extracted.setups, { config, docs, redisTimeoutMs });
  return { errors: [...extracted.errors, ...r.errors], rows: r.rows };
}

/** The descriptor table without locations: what is sent, how meshlimit resolves it, which rules it reaches. */
function table(rows: readonly DescriptorRow[]): string[] {
  return rows.map((r) => `${r.entry} ${r.sent} | ${r.outcome} -> ${r.resolved} | ${r.rules.join(' ') || 'no rule'}`);
}

/** The edge contract: the same for the Istio gateway (both virtual hosts) and the local Envoy. */
const EDGE_TABLE = [
  '0 [(authorization, <header authorization>), (remote_address, <client address>)] | token verified -> [(company_id, *)] | edge.company_id edge.company_id_trial-*',
  '0 [(authorization, <header authorization>), (remote_address, <client address>)] | token fails -> [(remote_address, *)] | edge.remote_address edge.remote_address_203.0.113.7',
  '0 [(remote_address, <client address>)] | as sent -> [(remote_address, *)] | edge.remote_address edge.remote_address_203.0.113.7',
  '1 [(authorization, <header authorization>), (remote_address, <client address>), (path, <header x-meshlimit-path>)] | token verified -> [(company_id, *), (path, *)] | edge.company_id.path_/api/v1/bulk/* edge.company_id.path_/api/v1/exports/*',
  '1 [(authorization, <header authorization>), (remote_address, <client address>), (path, <header x-meshlimit-path>)] | token fails -> [(remote_address, *), (path, *)] | edge.remote_address.path_/api/v1/login',
  '1 [(remote_address, <client address>), (path, <header x-meshlimit-path>)] | as sent -> [(remote_address, *), (path, *)] | edge.remote_address.path_/api/v1/login',
  '2 [(path, <header x-meshlimit-path>)] | as sent -> [(path, *)] | edge.path_/healthz',
];

describe('the Istio gateway and the deployed descriptor config agree', () => {
  it('every descriptor the EnvoyFilters can send matches a rule, on both virtual hosts', async () => {
    const r = await checkIstio(deployDocs());
    expect(r.errors).toEqual([]);
    expect(table(r.rows.filter((x) => x.vhost === 'users.example.com:80'))).toEqual(EDGE_TABLE);
    expect(table(r.rows.filter((x) => x.vhost === 'users.example.com:443'))).toEqual(EDGE_TABLE);
  });

  it('the deployed edge rules are the repository example (config/gateway.yaml); only the resolution block is added', async () => {
    const example = await loadConfigDir(path.join(ROOT, 'config'));
    const rulesOf = (s: typeof example): unknown => s.dump().domains.find((d) => d.domain === 'edge')?.descriptors;
    const deployed = await configFromConfigMap(deployDocs(), 'meshlimit-config');
    const local = await configFromDir(path.join(ROOT, 'deploy/docker/config'));
    expect(
      rulesOf(deployed.snapshot),
      `${CONFIG_LABEL}: the edge rules differ from config/gateway.yaml; copy its descriptors over`,
    ).toEqual(rulesOf(example));
    expect(
      rulesOf(local.snapshot),
      'deploy/docker/config/edge.yaml: the edge rules differ from config/gateway.yaml; copy its descriptors over',
    ).toEqual(rulesOf(example));
    // The two deployments differ only in where the user service's keys are fetched from.
    const jwt = (s: typeof example): unknown => {
      const r = s.domainOptions('edge')?.resolution;
      return r === undefined
        ? undefined
        : { ...r, file: undefined, line: undefined, jwt: { ...r.jwt, keys: { ...r.jwt.keys, url: undefined } } };
    };
    expect(jwt(local.snapshot)).toEqual(jwt(deployed.snapshot));
    expect(deployed.snapshot.domainOptions('edge')?.resolution?.jwt.keys).toMatchObject({
      kind: 'jwks_url',
      url: 'http://user-service.meshlimit.svc.cluster.local:3000/.well-known/jwks.json',
    });
  });

  it('the local Envoy (deploy/docker/envoy.yaml) sends the same descriptors to the same rules', async () => {
    const extracted = bootstrapSetups(path.join(ROOT, 'deploy/docker/envoy.yaml'));
    expect(extracted.errors).toEqual([]);
    const r = await checkSetups(extracted.setups, {
      config: await configFromDir(path.join(ROOT, 'deploy/docker/config')),
      docs: [],
      redisTimeoutMs: 50,
    });
    expect(r.errors).toEqual([]);
    expect(table(r.rows)).toEqual(EDGE_TABLE);
  });

  it("the user service's app-level descriptor (POST /reports) reaches a rule of the domain it asks, in both deployments", async () => {
    // src/sample/user-service/app.ts sends [(company_id, <verified company>), (operation, report)].
    const app = readFileSync(path.join(ROOT, 'src/sample/user-service/app.ts'), 'utf8');
    expect(app).toContain("['operation', 'report']");
    const docs = deployDocs();
    const env = (name: string): string | undefined =>
      docs
        .filter(
          (d) =>
            (d.object as unknown as K8sObject).kind === 'Deployment' && (d.object as unknown as K8sObject).metadata.name === 'user-service',
        )
        .flatMap(
          (d) =>
            (d.object as { spec: { template: { spec: { containers: { env?: { name: string; value?: string }[] }[] } } } }).spec.template
              .spec.containers[0]!.env ?? [],
        )
        .find((e) => e.name === name)?.value;
    expect(env('MESHLIMIT_GRPC')).toBe('meshlimit.meshlimit.svc.cluster.local:8081');
    const domain = env('USER_SERVICE_LIMIT_DOMAIN')!;
    for (const config of [
      await configFromConfigMap(docs, 'meshlimit-config'),
      await configFromDir(path.join(ROOT, 'deploy/docker/config')),
    ]) {
      const rule = config.snapshot.findRule(domain, [
        { key: 'company_id', value: 'acme' },
        { key: 'operation', value: 'report' },
      ]);
      expect(
        rule?.ruleKey,
        `${config.label}: no rule for the user service's [(company_id, *), (operation, report)] in domain ${domain}`,
      ).toBe('users-app.company_id.operation_report');
    }
  });

  it('the meshlimit Deployment hot-reloads its ConfigMap and its liveness probe survives a Redis outage', () => {
    expect(checkMeshlimitDeployment(deployDocs())).toEqual([]);
  });

  it('the user service and meshlimit agree on the token issuer, audience and JWKS (RequestAuthentication, edge resolution)', async () => {
    const docs = deployDocs();
    const ra = docs.find((d) => (d.object as unknown as K8sObject).kind === 'RequestAuthentication')!.object as {
      spec: { jwtRules: { issuer: string; audiences: string[]; jwksUri: string }[] };
    };
    const resolution = (await configFromConfigMap(docs, 'meshlimit-config')).snapshot.domainOptions('edge')!.resolution!;
    const rule = ra.spec.jwtRules[0]!;
    expect([rule.issuer, rule.audiences, rule.jwksUri]).toEqual([
      resolution.jwt.issuer,
      [...resolution.jwt.audience],
      (resolution.jwt.keys as { url: string }).url,
    ]);
    // The sample's own constants (src/sample/user-service/data.ts) are what it signs with.
    const data = readFileSync(path.join(ROOT, 'src/sample/user-service/data.ts'), 'utf8');
    expect(data).toContain(`DEMO_ISSUER = '${resolution.jwt.issuer}'`);
    expect(data).toContain(`DEMO_AUDIENCE = '${resolution.jwt.audience[0]}'`);
  });

  it('every Secret the manifests reference is created by create-secrets.sh (and none is committed)', () => {
    const docs = deployDocs();
    const script = readFileSync(path.join(ROOT, 'deploy/kubernetes/create-secrets.sh'), 'utf8');
    const created = new Set([...script.matchAll(/create secret generic ([a-z0-9-]+)/g)].map((m) => m[1]));
    const refs = secretReferences(docs);
    expect(refs.size).toBeGreaterThan(0);
    for (const [name, at] of refs)
      expect(created.has(name), `${at} references Secret ${name}, which deploy/kubernetes/create-secrets.sh does not create`).toBe(true);
    expect(docs.filter((d) => (d.object as unknown as K8sObject).kind === 'Secret').map((d) => d.file)).toEqual([]);
  });
});

describe('a broken gateway set-up is reported with the file and what is wrong', () => {
  const at = (fixture: string, file: string, kind: string, name: string, line: number): string =>
    `test/deploy/fixtures/${fixture}/${file} (document 1 at line ${line}, ${kind}/${name})`;

  it('a descriptor no rule matches', async () => {
    const r = await checkIstio(withFixture('unmatched-descriptor'));
    expect(r.errors).toEqual([
      `${at('unmatched-descriptor', 'envoyfilter-actions.yaml', 'EnvoyFilter', 'meshlimit-ratelimit-actions', 3)}: spec.configPatches[0].patch.value.rate_limits[1]: descriptor [(remote_address, <client address>), (route, <header x-meshlimit-path>)] matches no rule of domain 'edge' in ${CONFIG_LABEL}`,
    ]);
  });

  it('a descriptor value taken from a header the client controls', async () => {
    const r = await checkIstio(withFixture('spoofable-header'));
    expect(r.errors).toEqual([
      `${at('spoofable-header', 'envoyfilter-actions.yaml', 'EnvoyFilter', 'meshlimit-ratelimit-actions', 3)}: spec.configPatches[0].patch.value.rate_limits[0].actions[0]: reads request header 'x-tenant-id' into descriptor key 'company_id', but a client can send that header: the gateway does not remove it before the rate-limit filter (no headers:remove("x-tenant-id") in a Lua filter inserted first) and meshlimit does not verify it, so a caller picks the 'company_id' it is counted as`,
    ]);
  });

  it('the path with its query string', async () => {
    const r = await checkIstio(withFixture('query-in-path'));
    expect(r.errors).toEqual([
      `${at('query-in-path', 'envoyfilter-actions.yaml', 'EnvoyFilter', 'meshlimit-ratelimit-actions', 2)}: spec.configPatches[0].patch.value.rate_limits[0].actions[1]: reads ':path', which carries the query string: '?anything' opens a fresh counter for the same path. Rate-limit on the path without its query (the gateway's Lua filter sets x-meshlimit-path)`,
    ]);
  });

  it('a virtual host name the Gateway does not create', async () => {
    const r = await checkIstio(withFixture('wrong-vhost'));
    expect(r.errors).toEqual([
      `${at('wrong-vhost', 'envoyfilter-actions.yaml', 'EnvoyFilter', 'meshlimit-ratelimit-actions', 3)}: spec.configPatches[0].patch.value.rate_limits: virtual host '*:80' does not exist on Istio workload {istio=ingressgateway}: Istio names a Gateway's virtual hosts <host>:<port> (users.example.com:80, users.example.com:443) and vhost.name must match exactly, so these actions would apply to nothing`,
    ]);
  });

  it('a Service port that is not named grpc-', async () => {
    const r = await checkIstio(withFixture('port-not-grpc'));
    expect(r.errors).toEqual([
      `${at('port-not-grpc', 'service.yaml', 'Service', 'meshlimit', 3)}: port 8081 is named 'http-rls': Istio picks the protocol from the port name's prefix; without 'grpc-' the gateway does not speak HTTP/2 to meshlimit and every ShouldRateLimit call fails (${whereShipped('EnvoyFilter', 'meshlimit-ratelimit')}: spec.configPatches[1])`,
    ]);
  });

  it('a rate-limit filter left on Envoy defaults (20 ms timeout, implicit failure mode)', async () => {
    const r = await checkIstio(withFixture('filter-defaults'));
    const f = `${at('filter-defaults', 'envoyfilter.yaml', 'EnvoyFilter', 'meshlimit-ratelimit', 2)}: spec.configPatches[1]`;
    expect(r.errors).toEqual([
      `${f}: timeout not set: Envoy's default RLS timeout is 20 ms; choose one explicitly (above REDIS_COMMAND_TIMEOUT_MS=50 ms)`,
      `${f}: failure_mode_deny not set: choose (and explain) what happens when meshlimit cannot answer`,
    ]);
  });

  it('a misspelt Envoy field inside an EnvoyFilter patch', async () => {
    const r = await checkIstio(withFixture('envoy-typo'));
    expect(r.errors).toEqual([
      `${at('envoy-typo', 'envoyfilter.yaml', 'EnvoyFilter', 'meshlimit-ratelimit', 3)}: spec.configPatches[1].patch.value.typed_config: Unrecognized key: "failure_mode_denied"`,
      `${whereShipped('EnvoyFilter', 'meshlimit-ratelimit-actions')}: spec.configPatches[0].patch.value.rate_limits: rate_limits actions for Istio workload {istio=ingressgateway} but no envoy.filters.http.ratelimit filter: Envoy would never call meshlimit`,
    ]);
  });
});
