/* eslint-disable @typescript-eslint/no-explicit-any -- walks untyped Envoy and Istio YAML; every value it uses is checked by parseWith against a schema first */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { loadConfigDir, type CompiledSnapshot } from '../../../src/config/index.js';
import { analyseEntry, describeShape, resolutionHarness, type Outcome, type ResolutionHarness } from './descriptors.js';
import {
  durationMs,
  httpFilter,
  issuesOf,
  rateLimit,
  routeRateLimitsPatch,
  routerFilter,
  virtualHostRateLimitsPatch,
  type RateLimitEntry,
  type RateLimitFilterConfig,
} from './envoy-schema.js';
import { rel, where, type K8sObject, type ManifestDoc } from './manifests.js';

/**
 * The consistency check between the gateway's rate-limit setup and meshlimit's descriptor config
 * (and the Kubernetes objects both rely on). Everything returns messages; an empty list means
 * consistent. Every message names the file (and document or patch) it is about.
 *
 * The descriptor rule (see descriptors.ts for how it is decided): for every descriptor shape a
 * `rate_limits` entry can make Envoy send, at least one way meshlimit can resolve it must match a
 * rule of the config. A resolution outcome that matches nothing is allowed when another outcome
 * of the same shape matches: a company-scoped descriptor whose token fails verification falls
 * back to the client address, which may by design have no per-path rule. The full table is
 * returned for the tests to pin.
 */

/** A descriptor config as meshlimit would load it, with a label naming where it came from. */
export interface ConfigSource {
  readonly label: string;
  readonly snapshot: CompiledSnapshot;
}

/** Loads the ConfigMap `name`'s files as meshlimit loads its CONFIG_DIR. */
export async function configFromConfigMap(docs: readonly ManifestDoc[], name: string): Promise<ConfigSource> {
  const doc = docs.find((d) => kindOf(d) === 'ConfigMap' && nameOf(d) === name);
  if (doc === undefined) throw new Error(`no ConfigMap ${name} among the manifests`);
  const data = ((doc.object as { data?: Record<string, string> }).data ?? {}) as Record<string, string>;
  const dir = mkdtempSync(path.join(tmpdir(), 'meshlimit-deploy-config-'));
  const label = `${rel(doc.file)} (ConfigMap ${name})`;
  try {
    for (const [file, text] of Object.entries(data)) writeFileSync(path.join(dir, file), text);
    try {
      return { label, snapshot: await loadConfigDir(dir) };
    } catch (err) {
      throw new Error(`${label}: ${(err as Error).message.split(dir + path.sep).join('')}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function configFromDir(dir: string): Promise<ConfigSource> {
  return { label: rel(dir), snapshot: await loadConfigDir(dir) };
}

// ---------------------------------------------------------------------------------------------
// What the gateway is configured to do, from Istio EnvoyFilters or a static Envoy bootstrap.

export interface LuaFilter {
  readonly where: string;
  readonly code: string;
  /** Inserted first in the HTTP filter chain (before anything that could set headers). */
  readonly first: boolean;
}

export interface ActionsAt {
  readonly where: string;
  /** Envoy virtual host name the actions are attached to. */
  readonly vhost: string;
  /** Route name for route-level actions. */
  readonly route?: string | undefined;
  readonly rateLimits: readonly RateLimitEntry[];
}

/** One Envoy's rate-limit set-up: the filter, the filters before it, and the actions. */
export interface RateLimitSetup {
  /** `Istio gateway workload {istio=ingressgateway}` or the bootstrap file. */
  readonly label: string;
  /** Istio: the EnvoyFilters' workloadSelector labels; undefined for a static bootstrap. */
  readonly workload: Readonly<Record<string, string>> | undefined;
  filter?: { readonly where: string; readonly config: RateLimitFilterConfig } | undefined;
  readonly lua: LuaFilter[];
  readonly actions: ActionsAt[];
  /** Static bootstrap only: cluster name -> whether it speaks HTTP/2. */
  readonly staticClusters?: ReadonlyMap<string, boolean> | undefined;
}

export interface Extracted {
  readonly setups: RateLimitSetup[];
  readonly errors: string[];
}

const HCM = 'envoy.filters.network.http_connection_manager';

function kindOf(d: ManifestDoc): string | undefined {
  return (d.object as Partial<K8sObject>).kind;
}
function nameOf(d: ManifestDoc): string | undefined {
  return (d.object as Partial<K8sObject>).metadata?.name;
}
function labelsText(labels: Readonly<Record<string, string>>): string {
  return `{${Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ')}}`;
}

function parseWith<T>(schema: z.ZodType<T>, value: unknown, at: string, errors: string[]): T | undefined {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  errors.push(...issuesOf(r.error, at));
  return undefined;
}

/** The rate-limit set-ups the EnvoyFilters among `docs` create, one per workload selector. */
export function istioSetups(docs: readonly ManifestDoc[]): Extracted {
  const errors: string[] = [];
  const byWorkload = new Map<string, RateLimitSetup>();
  for (const doc of docs.filter((d) => kindOf(d) === 'EnvoyFilter')) {
    const spec = (doc.object as { spec?: Record<string, unknown> }).spec ?? {};
    const labels = (spec['workloadSelector'] as { labels?: Record<string, string> } | undefined)?.labels;
    if (labels === undefined || Object.keys(labels).length === 0) {
      errors.push(`${where(doc)}: spec.workloadSelector.labels missing: the patches would apply to every proxy of the namespace`);
      continue;
    }
    const key = JSON.stringify(Object.entries(labels).sort());
    let setup = byWorkload.get(key);
    if (setup === undefined) {
      setup = { label: `Istio workload ${labelsText(labels)}`, workload: labels, lua: [], actions: [] };
      byWorkload.set(key, setup);
    }
    const patches = (spec['configPatches'] ?? []) as Record<string, unknown>[];
    patches.forEach((p, i) => {
      const at = `${where(doc)}: spec.configPatches[${i}]`;
      const match = (p['match'] ?? {}) as Record<string, any>;
      const patch = (p['patch'] ?? {}) as { operation?: string; value?: unknown };
      switch (p['applyTo']) {
        case 'HTTP_FILTER': {
          const f = parseWith(httpFilter, patch.value, `${at}.patch.value`, errors);
          if (f === undefined) return;
          if (match['listener']?.filterChain?.filter?.name !== HCM) {
            errors.push(`${at}: match.listener.filterChain.filter.name must be ${HCM} (HTTP filters live in the HTTP connection manager)`);
          }
          if (f.typed_config['@type'].endsWith('.RateLimit')) {
            if (setup.filter !== undefined)
              errors.push(`${at}: a second envoy.filters.http.ratelimit for ${setup.label} (first at ${setup.filter.where})`);
            if (
              patch.operation !== 'INSERT_BEFORE' ||
              match['listener']?.filterChain?.filter?.subFilter?.name !== 'envoy.filters.http.router'
            ) {
              errors.push(
                `${at}: insert the rate-limit filter with operation INSERT_BEFORE and subFilter envoy.filters.http.router, so it runs after authentication filters and before routing`,
              );
            }
            setup.filter = { where: at, config: f.typed_config as RateLimitFilterConfig };
          } else {
            setup.lua.push({
              where: at,
              code: (f.typed_config as { default_source_code: { inline_string: string } }).default_source_code.inline_string,
              first: patch.operation === 'INSERT_FIRST',
            });
          }
          return;
        }
        case 'VIRTUAL_HOST':
        case 'HTTP_ROUTE': {
          const vhost = match['routeConfiguration']?.vhost?.name as string | undefined;
          if (typeof vhost !== 'string' || vhost === '') {
            errors.push(`${at}: match.routeConfiguration.vhost.name missing: the actions would apply to every virtual host of the gateway`);
            return;
          }
          if (patch.operation !== 'MERGE')
            errors.push(
              `${at}: patch.operation must be MERGE to add rate_limits to an existing ${p['applyTo'] === 'VIRTUAL_HOST' ? 'virtual host' : 'route'}`,
            );
          if (p['applyTo'] === 'VIRTUAL_HOST') {
            const v = parseWith(virtualHostRateLimitsPatch, patch.value, `${at}.patch.value`, errors);
            if (v !== undefined) setup.actions.push({ where: `${at}.patch.value.rate_limits`, vhost, rateLimits: v.rate_limits });
          } else {
            const route = match['routeConfiguration']?.vhost?.route?.name as string | undefined;
            if (typeof route !== 'string' || route === '') {
              errors.push(`${at}: match.routeConfiguration.vhost.route.name missing for an HTTP_ROUTE patch`);
              return;
            }
            const v = parseWith(routeRateLimitsPatch, patch.value, `${at}.patch.value`, errors);
            if (v !== undefined)
              setup.actions.push({ where: `${at}.patch.value.route.rate_limits`, vhost, route, rateLimits: v.route.rate_limits });
          }
          return;
        }
        default:
          errors.push(
            `${at}: applyTo ${String(p['applyTo'])} is not covered by the consistency check (HTTP_FILTER, VIRTUAL_HOST, HTTP_ROUTE)`,
          );
      }
    });
  }
  return { setups: [...byWorkload.values()], errors };
}

/** The rate-limit set-up of a static Envoy bootstrap (deploy/docker/envoy.yaml). */
export function bootstrapSetups(file: string): Extracted {
  const errors: string[] = [];
  const setups: RateLimitSetup[] = [];
  const boot = parseYaml(readFileSync(file, 'utf8')) as Record<string, any>;
  const at0 = rel(file);
  const clusters = new Map<string, boolean>();
  for (const c of (boot['static_resources']?.clusters ?? []) as Record<string, any>[]) {
    const opts = c['typed_extension_protocol_options']?.['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'];
    clusters.set(String(c['name']), opts?.explicit_http_config?.http2_protocol_options !== undefined);
  }
  ((boot['static_resources']?.listeners ?? []) as Record<string, any>[]).forEach((l, li) => {
    ((l['filter_chains'] ?? []) as Record<string, any>[]).forEach((fc, ci) => {
      ((fc['filters'] ?? []) as Record<string, any>[]).forEach((f, fi) => {
        if (f['name'] !== HCM) return;
        const base = `${at0}: static_resources.listeners[${li}].filter_chains[${ci}].filters[${fi}].typed_config`;
        const hcm = f['typed_config'] as Record<string, any>;
        const setup: RateLimitSetup = {
          label: `${at0} listener ${String(l['name'])}`,
          workload: undefined,
          lua: [],
          actions: [],
          staticClusters: clusters,
        };
        const filters = (hcm['http_filters'] ?? []) as unknown[];
        filters.forEach((hf, hi) => {
          const at = `${base}.http_filters[${hi}]`;
          if (hi === filters.length - 1) {
            parseWith(routerFilter, hf, at, errors);
            return;
          }
          const parsed = parseWith(httpFilter, hf, at, errors);
          if (parsed === undefined) return;
          if (parsed.typed_config['@type'].endsWith('.RateLimit')) {
            if (hi !== filters.length - 2) errors.push(`${at}: the rate-limit filter must come right before the router`);
            setup.filter = { where: at, config: parsed.typed_config as RateLimitFilterConfig };
          } else
            setup.lua.push({
              where: at,
              code: (parsed.typed_config as { default_source_code: { inline_string: string } }).default_source_code.inline_string,
              first: hi === 0,
            });
        });
        ((hcm['route_config']?.virtual_hosts ?? []) as Record<string, any>[]).forEach((vh, vi) => {
          const vat = `${base}.route_config.virtual_hosts[${vi}]`;
          if (vh['rate_limits'] !== undefined) {
            const list: RateLimitEntry[] = [];
            ((vh['rate_limits'] ?? []) as unknown[]).forEach((r, ri) => {
              const e = parseWith(rateLimit, r, `${vat}.rate_limits[${ri}]`, errors);
              if (e !== undefined) list.push(e);
            });
            setup.actions.push({ where: `${vat}.rate_limits`, vhost: String(vh['name']), rateLimits: list });
          }
          ((vh['routes'] ?? []) as Record<string, any>[]).forEach((r, ri) => {
            const rl = r['route']?.rate_limits as unknown[] | undefined;
            if (rl === undefined) return;
            const list: RateLimitEntry[] = [];
            rl.forEach((x, xi) => {
              const e = parseWith(rateLimit, x, `${vat}.routes[${ri}].route.rate_limits[${xi}]`, errors);
              if (e !== undefined) list.push(e);
            });
            setup.actions.push({
              where: `${vat}.routes[${ri}].route.rate_limits`,
              vhost: String(vh['name']),
              route: String(r['name'] ?? ri),
              rateLimits: list,
            });
          });
        });
        if (setup.filter !== undefined || setup.actions.length > 0) setups.push(setup);
      });
    });
  });
  return { setups, errors };
}

// ---------------------------------------------------------------------------------------------
// The checks.

/** One row of the descriptor table: what an entry sends and which rules it can reach. */
export interface DescriptorRow {
  readonly where: string;
  readonly vhost: string;
  readonly entry: number;
  readonly sent: string;
  readonly outcome: Outcome;
  readonly resolved: string;
  readonly rules: readonly string[];
}

export interface CheckContext {
  readonly config: ConfigSource;
  /** The Kubernetes/Istio objects (Services, Gateways, VirtualServices, the meshlimit Deployment). */
  readonly docs: readonly ManifestDoc[];
  /** meshlimit's REDIS_COMMAND_TIMEOUT_MS as deployed; the RLS timeout must exceed it. */
  readonly redisTimeoutMs: number;
}

export interface CheckResult {
  readonly errors: string[];
  readonly rows: DescriptorRow[];
}

/** Headers a Lua filter removes unconditionally (`:remove("name")`). */
export function strippedHeaders(lua: readonly LuaFilter[]): Set<string> {
  const out = new Set<string>();
  for (const f of lua) {
    if (!f.first) continue;
    for (const m of f.code.matchAll(/:remove\(\s*["']([^"']+)["']\s*\)/g)) out.add(m[1]!.toLowerCase());
  }
  return out;
}

const PSEUDO_OK = new Set([':authority', ':method', ':scheme']);
const CREDENTIAL_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'x-api-key']);

export async function checkSetups(setups: readonly RateLimitSetup[], ctx: CheckContext): Promise<CheckResult> {
  const errors: string[] = [];
  const rows: DescriptorRow[] = [];
  const { snapshot, label: configLabel } = ctx.config;
  const harness: ResolutionHarness = await resolutionHarness(snapshot);
  try {
    for (const setup of setups) {
      const f = setup.filter;
      if (f === undefined) {
        errors.push(
          `${setup.actions[0]?.where ?? setup.label}: rate_limits actions for ${setup.label} but no envoy.filters.http.ratelimit filter: Envoy would never call meshlimit`,
        );
        continue;
      }
      if (setup.actions.length === 0)
        errors.push(
          `${f.where}: ${setup.label} has a rate-limit filter but no rate_limits actions: it sends no descriptors and never calls meshlimit`,
        );
      errors.push(...checkFilter(setup, f, ctx));
      const domain = f.config.domain;
      if (!snapshot.domainNames.includes(domain)) {
        errors.push(
          `${f.where}: domain '${domain}' is not in ${configLabel} (domains: ${snapshot.domainNames.join(', ') || 'none'}): meshlimit answers OK without a limit for every request`,
        );
        continue;
      }
      errors.push(...checkVhosts(setup, ctx));
      const resolution = snapshot.domainOptions(domain)?.resolution;
      const stripped = strippedHeaders(setup.lua);
      const stage = f.config.stage ?? 0;
      for (const at of setup.actions) {
        for (let i = 0; i < at.rateLimits.length; i++) {
          const entry = at.rateLimits[i]!;
          const entryAt = `${at.where}[${i}]`;
          if ((entry.stage ?? 0) !== stage)
            errors.push(
              `${entryAt}: stage ${entry.stage ?? 0} differs from the rate-limit filter's stage ${stage}: Envoy ignores this entry`,
            );
          entry.actions.forEach((a, ai) => {
            if (!('request_headers' in a)) return;
            const h = a.request_headers.header_name.toLowerCase();
            const key = a.request_headers.descriptor_key;
            const aat = `${entryAt}.actions[${ai}]`;
            if (h === ':path') {
              errors.push(
                `${aat}: reads ':path', which carries the query string: '?anything' opens a fresh counter for the same path. Rate-limit on the path without its query (the gateway's Lua filter sets x-meshlimit-path)`,
              );
            } else if (PSEUDO_OK.has(h)) {
              // set by the HTTP codec from the request line, values bounded by routing
            } else if (resolution !== undefined && key === resolution.tokenEntry) {
              // verified by meshlimit (the domain's resolution block)
            } else if (CREDENTIAL_HEADERS.has(h)) {
              errors.push(
                `${aat}: sends request header '${h}' as descriptor key '${key}', which meshlimit does not verify (${resolution === undefined ? `domain '${domain}' has no resolution block` : `its resolution.token_entry is '${resolution.tokenEntry}'`}): the raw credential would become a counter key and anyone could make up a new one`,
              );
            } else if (!stripped.has(h)) {
              errors.push(
                `${aat}: reads request header '${h}' into descriptor key '${key}', but a client can send that header: the gateway does not remove it before the rate-limit filter (no headers:remove("${h}") in a Lua filter inserted first) and meshlimit does not verify it, so a caller picks the '${key}' it is counted as`,
              );
            }
          });
          const results = await analyseEntry(entry, domain, snapshot, harness);
          const byShape = new Map<string, typeof results>();
          for (const r of results) {
            const k = describeShape(r.shape);
            byShape.set(k, [...(byShape.get(k) ?? []), r]);
            rows.push({ where: entryAt, vhost: at.vhost, entry: i, sent: k, outcome: r.outcome, resolved: r.resolved, rules: r.rules });
          }
          for (const [shape, rs] of byShape) {
            if (rs[0]!.shape.length === 0) {
              errors.push(
                `${entryAt}: sends an empty descriptor when every optional header is absent; meshlimit rejects a descriptor without entries (INVALID_ARGUMENT)`,
              );
              continue;
            }
            if (rs.every((r) => r.rules.length === 0)) {
              const after = rs.map((r) => (r.outcome === 'as sent' ? '' : ` (${r.outcome}: ${r.resolved})`)).join('');
              errors.push(`${entryAt}: descriptor ${shape}${after} matches no rule of domain '${domain}' in ${configLabel}`);
            }
          }
        }
      }
    }
  } finally {
    harness.close();
  }
  return { errors, rows };
}

function checkFilter(setup: RateLimitSetup, f: NonNullable<RateLimitSetup['filter']>, ctx: CheckContext): string[] {
  const errors: string[] = [];
  const c = f.config;
  if (c.timeout === undefined) {
    errors.push(
      `${f.where}: timeout not set: Envoy's default RLS timeout is 20 ms; choose one explicitly (above REDIS_COMMAND_TIMEOUT_MS=${ctx.redisTimeoutMs} ms)`,
    );
  } else {
    const ms = durationMs(c.timeout);
    if (ms <= ctx.redisTimeoutMs)
      errors.push(
        `${f.where}: timeout ${c.timeout} is not above meshlimit's REDIS_COMMAND_TIMEOUT_MS (${ctx.redisTimeoutMs} ms): Envoy would give up before meshlimit's failure policy can answer a slow Redis`,
      );
    if (ms > 1000)
      errors.push(`${f.where}: timeout ${c.timeout} lets a sick rate limiter hold every request for over a second; keep it at most 1s`);
  }
  if (c.failure_mode_deny === undefined)
    errors.push(`${f.where}: failure_mode_deny not set: choose (and explain) what happens when meshlimit cannot answer`);
  const cluster = c.rate_limit_service.grpc_service.envoy_grpc.cluster_name;
  if (setup.staticClusters !== undefined) {
    const h2 = setup.staticClusters.get(cluster);
    if (h2 === undefined) errors.push(`${f.where}: cluster '${cluster}' is not defined in static_resources.clusters`);
    else if (!h2)
      errors.push(`${f.where}: cluster '${cluster}' does not enable HTTP/2 (explicit_http_config.http2_protocol_options): gRPC needs it`);
    return errors;
  }
  const m = /^outbound\|(\d+)\|[^|]*\|([^.]+)\.([^.]+)\.svc\.cluster\.local$/.exec(cluster);
  if (m === null) {
    errors.push(
      `${f.where}: cluster '${cluster}' is not Istio's outbound cluster of a Service (outbound|<port>||<service>.<namespace>.svc.cluster.local); a cluster added by hand does not get Istio's mTLS, which the STRICT PeerAuthentication requires`,
    );
    return errors;
  }
  const [, portText, svc, ns] = m;
  const authority = c.rate_limit_service.grpc_service.envoy_grpc.authority;
  if (authority !== undefined && authority !== `${svc}.${ns}.svc.cluster.local`)
    errors.push(`${f.where}: authority '${authority}' differs from the cluster's host ${svc}.${ns}.svc.cluster.local`);
  const service = ctx.docs.find(
    (d) => kindOf(d) === 'Service' && nameOf(d) === svc && ((d.object as Partial<K8sObject>).metadata?.namespace ?? 'default') === ns,
  );
  if (service === undefined) {
    errors.push(`${f.where}: cluster '${cluster}' names Service ${ns}/${svc}, which is not among the manifests`);
    return errors;
  }
  const spec =
    (
      service.object as {
        spec?: { ports?: { name?: string; port: number; targetPort?: string | number }[]; selector?: Record<string, string> };
      }
    ).spec ?? {};
  const port = (spec.ports ?? []).find((p) => p.port === Number(portText));
  if (port === undefined) {
    errors.push(`${f.where}: Service ${ns}/${svc} (${where(service)}) has no port ${portText}`);
    return errors;
  }
  if (!/^grpc(-|$)/.test(port.name ?? '')) {
    errors.push(
      `${where(service)}: port ${portText} is named '${port.name ?? ''}': Istio picks the protocol from the port name's prefix; without 'grpc-' the gateway does not speak HTTP/2 to meshlimit and every ShouldRateLimit call fails (${f.where})`,
    );
  }
  // The Service must reach a container port of the pods it selects.
  const pods = ctx.docs.filter((d) => (kindOf(d) === 'Deployment' || kindOf(d) === 'StatefulSet') && matches(spec.selector, podLabels(d)));
  const containerPorts = pods.flatMap((d) =>
    podContainers(d).flatMap((c2) => (c2.ports ?? []) as { name?: string; containerPort: number }[]),
  );
  const target = port.targetPort ?? port.port;
  if (!containerPorts.some((p) => p.name === target || p.containerPort === target)) {
    errors.push(`${where(service)}: port ${portText} targets '${String(target)}', which no container of the selected pods exposes`);
  }
  return errors;
}

/** Virtual host (and route) names the actions are attached to must exist. */
function checkVhosts(setup: RateLimitSetup, ctx: CheckContext): string[] {
  const errors: string[] = [];
  // Actions attached to several ports of one host must be identical: one host, one policy.
  const byHost = new Map<string, ActionsAt[]>();
  for (const a of setup.actions) {
    const host = a.vhost.replace(/:\d+$/, '');
    if (a.route === undefined) byHost.set(host, [...(byHost.get(host) ?? []), a]);
  }
  for (const list of byHost.values()) {
    const [first, ...rest] = list;
    for (const other of rest) {
      if (JSON.stringify(other.rateLimits) !== JSON.stringify(first!.rateLimits)) {
        errors.push(
          `${other.where}: the rate_limits for ${other.vhost} differ from those for ${first!.vhost} (${first!.where}); one host should get one policy on every port`,
        );
      }
    }
  }
  if (setup.workload === undefined) return errors; // a static bootstrap: the names are its own
  const gateways = ctx.docs.filter(
    (d) =>
      kindOf(d) === 'Gateway' && sameLabels((d.object as { spec?: { selector?: Record<string, string> } }).spec?.selector, setup.workload!),
  );
  const names = new Set<string>();
  for (const g of gateways) {
    for (const s of (g.object as { spec?: { servers?: { port: { number: number }; hosts: string[] }[] } }).spec?.servers ?? []) {
      for (const h of s.hosts) names.add(`${h.replace(/^[^/]*\//, '')}:${s.port.number}`);
    }
  }
  for (const a of setup.actions) {
    if (!names.has(a.vhost)) {
      errors.push(
        `${a.where}: virtual host '${a.vhost}' does not exist on ${setup.label}: Istio names a Gateway's virtual hosts <host>:<port> (${[...names].join(', ') || 'no Gateway selects this workload'}) and vhost.name must match exactly, so these actions would apply to nothing`,
      );
      continue;
    }
    if (a.route !== undefined) {
      const host = a.vhost.replace(/:\d+$/, '');
      const found = ctx.docs.some(
        (d) =>
          kindOf(d) === 'VirtualService' &&
          ((d.object as { spec?: { hosts?: string[] } }).spec?.hosts ?? []).includes(host) &&
          ((d.object as { spec?: { http?: { name?: string }[] } }).spec?.http ?? []).some((r) => r.name === a.route),
      );
      if (!found)
        errors.push(
          `${a.where}: no VirtualService for ${host} has an http route named '${a.route}' (EnvoyFilter route names are the VirtualService's http[].name)`,
        );
    }
  }
  return errors;
}

function sameLabels(a: Readonly<Record<string, string>> | undefined, b: Readonly<Record<string, string>>): boolean {
  if (a === undefined) return false;
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

function matches(selector: Readonly<Record<string, string>> | undefined, labels: Readonly<Record<string, string>>): boolean {
  return selector !== undefined && Object.entries(selector).every(([k, v]) => labels[k] === v);
}

function podLabels(d: ManifestDoc): Record<string, string> {
  return ((d.object as { spec?: { template?: { metadata?: { labels?: Record<string, string> } } } }).spec?.template?.metadata?.labels ??
    {}) as Record<string, string>;
}

interface ContainerLike {
  readonly name: string;
  readonly ports?: unknown[];
  readonly env?: { name: string; value?: string }[];
  readonly volumeMounts?: { name: string; mountPath: string; subPath?: string }[];
  readonly livenessProbe?: { httpGet?: { path?: string } };
}

export function podContainers(d: ManifestDoc): ContainerLike[] {
  return ((d.object as { spec?: { template?: { spec?: { containers?: ContainerLike[] } } } }).spec?.template?.spec?.containers ??
    []) as ContainerLike[];
}

export function envOf(c: ContainerLike, name: string): string | undefined {
  return c.env?.find((e) => e.name === name)?.value;
}

// ---------------------------------------------------------------------------------------------
// Checks of the Kubernetes objects that are not about Envoy.

/** The meshlimit Deployment and its container (by the `app: meshlimit` label). */
export function meshlimitDeployment(docs: readonly ManifestDoc[]): { doc: ManifestDoc; container: ContainerLike } {
  const doc = docs.find((d) => kindOf(d) === 'Deployment' && nameOf(d) === 'meshlimit');
  const container = doc === undefined ? undefined : podContainers(doc).find((c) => c.name === 'meshlimit');
  if (doc === undefined || container === undefined)
    throw new Error('no meshlimit Deployment with a meshlimit container among the manifests');
  return { doc, container };
}

/** Hot reload, probes vs failure policy, the ConfigMap the pods mount. */
export function checkMeshlimitDeployment(docs: readonly ManifestDoc[]): string[] {
  const errors: string[] = [];
  const { doc, container } = meshlimitDeployment(docs);
  const at = where(doc);
  const dir = envOf(container, 'CONFIG_DIR');
  const mount = container.volumeMounts?.find((m) => m.mountPath === dir);
  if (dir === undefined || mount === undefined) errors.push(`${at}: CONFIG_DIR must be set to the mountPath of the config volume`);
  else if (mount.subPath !== undefined)
    errors.push(
      `${at}: the config volume is mounted with subPath, which never receives ConfigMap updates: mount the directory so edits hot-reload`,
    );
  const policy = envOf(container, 'FAILURE_POLICY') ?? 'deny';
  if (container.livenessProbe?.httpGet?.path === '/healthcheck' && policy === 'deny') {
    errors.push(
      `${at}: livenessProbe on /healthcheck with FAILURE_POLICY=deny: /healthcheck answers 500 while the circuit breaker is open, so a Redis outage would restart every replica; probe liveness with tcpSocket, or use FAILURE_POLICY=local/allow`,
    );
  }
  return errors;
}

/** Secret names the manifests reference, with where. */
export function secretReferences(docs: readonly ManifestDoc[]): Map<string, string> {
  const out = new Map<string, string>();
  const visit = (v: unknown, doc: ManifestDoc): void => {
    if (v === null || typeof v !== 'object') return;
    if (Array.isArray(v)) {
      for (const x of v) visit(x, doc);
      return;
    }
    const o = v as Record<string, unknown>;
    const ref = (o['secretKeyRef'] ?? o['secretRef']) as { name?: string } | undefined;
    if (typeof ref?.name === 'string' && !out.has(ref.name)) out.set(ref.name, where(doc));
    const vol = o['secret'] as { secretName?: string } | undefined;
    if (typeof vol?.secretName === 'string' && !out.has(vol.secretName)) out.set(vol.secretName, where(doc));
    for (const x of Object.values(o)) visit(x, doc);
  };
  for (const d of docs) visit(d.object, d);
  return out;
}

/** Every file of a kustomization's `resources` exists, and every manifest of the tree is listed. */
export function checkKustomization(dir: string, manifests: readonly string[]): string[] {
  const file = path.join(dir, 'kustomization.yaml');
  const k = parseYaml(readFileSync(file, 'utf8')) as { resources?: string[] };
  const listed = new Set((k.resources ?? []).map((r) => path.resolve(dir, r)));
  const errors: string[] = [];
  for (const r of listed) if (!manifests.includes(r)) errors.push(`${rel(file)}: resources lists ${rel(r)}, which does not exist`);
  for (const m of manifests)
    if (!listed.has(m)) errors.push(`${rel(file)}: ${rel(m)} is not listed in resources, so kubectl apply -k never applies it`);
  return errors;
}
