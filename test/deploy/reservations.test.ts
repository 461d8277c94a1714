import path from 'node:path';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { loadConfigDir } from '../../src/config/index.js';
import type { DescriptorEntry } from '../../src/limiter/types.js';
import { istioSetups } from './lib/consistency.js';
import { googleGrpcService, httpFilter, issuesOf, rateLimit, rateLimitFilterConfig, type RateLimitEntry } from './lib/envoy-schema.js';
import { ROOT, loadManifestFile, validateManifest } from './lib/manifests.js';

/**
 * The reservation examples under deploy/reservations/ (plain Envoy, Istio EnvoyFilter, Envoy
 * Gateway EnvoyPatchPolicy) are valid (Istio's schema for the EnvoyFilter; Envoy's API, as
 * lib/envoy-schema.ts writes it, for every filter and rate_limits entry) and agree with
 * config/ai.yaml: each rate_limits entry's descriptor reaches a reservation rule, and the entries
 * with apply_on_stream_done are exactly those whose phase is settle.
 */
const DIR = path.join(ROOT, 'deploy/reservations');

function check<T>(schema: z.ZodType<T>, value: unknown, at: string): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new Error(issuesOf(r.error, at).join('\n'));
  return r.data;
}

/** A descriptor as the actions would send it, with sample values for the headers. */
function descriptorOf(entry: RateLimitEntry): DescriptorEntry[] {
  return entry.actions.map((a) => {
    if ('request_headers' in a) return { key: a.request_headers.descriptor_key, value: `<${a.request_headers.header_name}>` };
    if ('generic_key' in a) return { key: a.generic_key.descriptor_key ?? 'generic_key', value: a.generic_key.descriptor_value };
    throw new Error(`an action this check does not model: ${JSON.stringify(a)}`);
  });
}

async function agreeWithConfig(entries: readonly RateLimitEntry[]): Promise<string[]> {
  const snapshot = await loadConfigDir(path.join(ROOT, 'config'));
  return entries.map((e) => {
    const d = descriptorOf(e);
    const rule = snapshot.findRule('ai', d);
    const spec = rule?.reservation;
    const phase = d.find((x) => x.key === spec?.phaseKey)?.value;
    const id = d.find((x) => x.key === spec?.idKey)?.value;
    return `${rule?.ruleKey ?? 'no rule'} ${spec?.mode ?? '-'} ${phase ?? '-'} id=${id ?? '-'} stream_done=${e.apply_on_stream_done === true}`;
  });
}

const EXPECTED = [
  'ai.tenant.phase.request_id tokens reserve id=<x-request-id> stream_done=false',
  'ai.tenant.phase.request_id tokens settle id=<x-request-id> stream_done=true',
  'ai.inflight_tenant.phase.request_id in_flight reserve id=<x-request-id> stream_done=false',
  'ai.inflight_tenant.phase.request_id in_flight settle id=<x-request-id> stream_done=true',
];

describe('deploy/reservations', () => {
  it('envoy.yaml: the rate-limit filter and every route rate_limits entry follow Envoy’s API and reach config/ai.yaml’s rules', async () => {
    type Hcm = {
      http_filters: { typed_config: unknown }[];
      route_config: { virtual_hosts: { routes: { route: { rate_limits: unknown[] } }[] }[] };
    };
    type Boot = { static_resources: { listeners: { filter_chains: { filters: { typed_config: Hcm }[] }[] }[] } };
    const boot = parse(readFileSync(path.join(DIR, 'envoy.yaml'), 'utf8')) as Boot;
    const hcm = boot.static_resources.listeners[0]!.filter_chains[0]!.filters[0]!.typed_config;
    check(rateLimitFilterConfig, hcm.http_filters[0]!.typed_config, 'envoy.yaml http_filters[0]');
    const limits = hcm.route_config.virtual_hosts[0]!.routes[0]!.route.rate_limits;
    const entries = limits.map((l, i) => check(rateLimit, l, `envoy.yaml rate_limits[${i}]`));
    expect(await agreeWithConfig(entries)).toEqual(EXPECTED);
  });

  it('istio-envoyfilter.yaml: valid for Istio’s schema, its patches for Envoy’s API, and reaching config/ai.yaml’s rules', async () => {
    const docs = loadManifestFile(path.join(DIR, 'istio-envoyfilter.yaml'));
    expect(docs.flatMap(validateManifest)).toEqual([]);
    const { setups, errors } = istioSetups(docs);
    expect(errors).toEqual([]);
    expect(setups).toHaveLength(1);
    expect(setups[0]!.filter?.config.domain).toBe('ai');
    expect(await agreeWithConfig(setups[0]!.actions.flatMap((a) => a.rateLimits))).toEqual(EXPECTED);
  });

  it('envoy-gateway.yaml: an EnvoyPatchPolicy whose patch values follow Envoy’s API and reach config/ai.yaml’s rules', async () => {
    const docs = loadManifestFile(path.join(DIR, 'envoy-gateway.yaml'));
    expect(docs).toHaveLength(1);
    const policy = check(envoyPatchPolicy, docs[0]!.object, 'envoy-gateway.yaml');
    const [listener, route] = policy.spec.jsonPatches;
    const filter = check(
      httpFilter.options[0].extend({
        typed_config: rateLimitFilterConfig.extend({
          rate_limit_service: z.strictObject({ grpc_service: googleGrpcService, transport_api_version: z.literal('V3') }),
        }),
      }),
      listener!.operation.value,
      'jsonPatches[0].operation.value',
    );
    expect(filter.typed_config.domain).toBe('ai');
    const entries = check(z.array(rateLimit).min(1), route!.operation.value, 'jsonPatches[1].operation.value');
    expect(await agreeWithConfig(entries)).toEqual(EXPECTED);
  });
});

/** gateway.envoyproxy.io/v1alpha1 EnvoyPatchPolicy, the fields this example uses (JSONPatch type). */
const envoyPatchPolicy = z.strictObject({
  apiVersion: z.literal('gateway.envoyproxy.io/v1alpha1'),
  kind: z.literal('EnvoyPatchPolicy'),
  metadata: z.strictObject({ name: z.string().min(1), namespace: z.string().min(1) }),
  spec: z.strictObject({
    targetRef: z.strictObject({ group: z.literal('gateway.networking.k8s.io'), kind: z.literal('Gateway'), name: z.string().min(1) }),
    type: z.literal('JSONPatch'),
    jsonPatches: z
      .array(
        z.strictObject({
          type: z.enum([
            'type.googleapis.com/envoy.config.listener.v3.Listener',
            'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
          ]),
          name: z.string().regex(/^[^/]+\/[^/]+\/[^/]+$/, 'must be <namespace>/<gateway>/<listener>'),
          operation: z.strictObject({ op: z.literal('add'), path: z.string().startsWith('/'), value: z.unknown() }),
        }),
      )
      .length(2),
  }),
});
