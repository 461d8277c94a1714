import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ConfigMap, Namespace, Service, ServiceAccount } from 'kubernetes-models/v1';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { Job } from 'kubernetes-models/batch/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { DestinationRule, Gateway, VirtualService } from '@kubernetes-models/istio/networking.istio.io/v1beta1';
import { EnvoyFilter } from '@kubernetes-models/istio/networking.istio.io/v1alpha3';
import { PeerAuthentication } from '@kubernetes-models/istio/security.istio.io/v1beta1';
import { AuthorizationPolicy, RequestAuthentication } from '@kubernetes-models/istio/security.istio.io/v1';

/**
 * Loading and schema validation of the Kubernetes and Istio manifests under deploy/.
 *
 * Schemas: Kubernetes kinds from `kubernetes-models` 4.5 (generated from the API server's
 * OpenAPI; it knows `preStop.sleep` and `trafficDistribution`, so Kubernetes >= 1.30). Istio
 * kinds: only the API versions deploy/README.md's Istio >= 1.22 serves and the manifests use, one
 * per group (`networking.istio.io/v1`, `security.istio.io/v1`; EnvoyFilter has only
 * `networking.istio.io/v1alpha3`); a v1beta1 object is refused as unknown. Their schemas come from
 * `@kubernetes-models/istio` 2.3, generated from Istio 1.18's CRDs: Istio serves one schema for
 * every version of a kind, so a `networking.istio.io/v1` Gateway, VirtualService or
 * DestinationRule and a `security.istio.io/v1` PeerAuthentication are checked with that kind's
 * v1beta1 model (2.3 has no v1 model for them). A field Istio added after 1.18 would be reported
 * as unknown. @kubernetes-models/istio 3 (Istio 1.29's CRDs) requires Node >= 22: it would bring
 * back an engine warning on Node 20, which package.json's `engines` still covers. Both check types, formats, enums
 * and required fields, but their schemas allow unknown fields (the API server prunes them
 * silently, or rejects them under `kubectl apply --validate=strict`), so a misspelt
 * `livenesProbe` would pass. {@link validateManifest} therefore also reports every field the
 * schema never looked at: the validators read each property they know by name, so a property
 * that was never read is one the schema does not define. Free-form fields (labels, the
 * EnvoyFilter `patch.value`, ...) are not descended into by the schema and are not reported; the
 * Envoy config inside EnvoyFilters is checked separately (envoy-schema.ts).
 */

export const ROOT = path.resolve(import.meta.dirname, '../../..');

/** A path relative to the repository root, for messages. */
export function rel(file: string): string {
  return path.relative(ROOT, file) || file;
}

/** One YAML document of a manifest file. */
export interface ManifestDoc {
  /** Absolute path of the file. */
  readonly file: string;
  /** Index of the document in the file (0-based). */
  readonly index: number;
  /** 1-based line where the document starts, for messages. */
  readonly line: number;
  readonly object: Record<string, unknown>;
}

export interface K8sObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly labels?: Record<string, string> };
  readonly [k: string]: unknown;
}

/** `file (document n, Kind/name)` for messages. */
export function where(doc: ManifestDoc): string {
  const o = doc.object as Partial<K8sObject>;
  const id = o.kind !== undefined ? `, ${o.kind}/${o.metadata?.name ?? '?'}` : '';
  return `${rel(doc.file)} (document ${doc.index + 1} at line ${doc.line}${id})`;
}

/** Parses every YAML document of a file; YAML errors are thrown with the file and line. */
export function loadManifestFile(file: string): ManifestDoc[] {
  const text = readFileSync(file, 'utf8');
  const lineOf = (offset: number): number => text.slice(0, offset).split('\n').length;
  const docs = parseAllDocuments(text, { prettyErrors: true });
  const out: ManifestDoc[] = [];
  docs.forEach((d, index) => {
    if (d.errors.length > 0) throw new Error(`${rel(file)}: YAML error: ${d.errors.map((e) => e.message).join('; ')}`);
    const object = d.toJS({ maxAliasCount: 100 }) as unknown;
    if (object === null || object === undefined) return; // an empty document (e.g. after a trailing ---)
    if (typeof object !== 'object' || Array.isArray(object)) throw new Error(`${rel(file)}: document ${index + 1} is not a mapping`);
    out.push({ file, index, line: lineOf(d.contents?.range?.[0] ?? 0), object: object as Record<string, unknown> });
  });
  return out;
}

/** Every `*.yaml` manifest under `dir` (recursively), kustomization files excluded, sorted. */
export function manifestFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...manifestFiles(p));
    else if (/\.ya?ml$/.test(name) && name !== 'kustomization.yaml') out.push(p);
  }
  return out;
}

type ModelCtor = new (data: Record<string, unknown>) => { validate(): void };

/**
 * Kinds validated with the model of another served version of the same kind (Istio's CRDs give
 * every version one schema): the object is validated with this `apiVersion`, the rest as written.
 */
const SAME_SCHEMA_AS: Readonly<Record<string, string>> = {
  'networking.istio.io/v1/Gateway': 'networking.istio.io/v1beta1',
  'networking.istio.io/v1/VirtualService': 'networking.istio.io/v1beta1',
  'networking.istio.io/v1/DestinationRule': 'networking.istio.io/v1beta1',
  'security.istio.io/v1/PeerAuthentication': 'security.istio.io/v1beta1',
};

/** apiVersion/kind -> model. A kind not listed here is an error: add its schema deliberately. */
const MODELS: Readonly<Record<string, ModelCtor>> = {
  'v1/Namespace': Namespace as unknown as ModelCtor,
  'v1/ServiceAccount': ServiceAccount as unknown as ModelCtor,
  'v1/ConfigMap': ConfigMap as unknown as ModelCtor,
  'v1/Service': Service as unknown as ModelCtor,
  'apps/v1/Deployment': Deployment as unknown as ModelCtor,
  'apps/v1/StatefulSet': StatefulSet as unknown as ModelCtor,
  'batch/v1/Job': Job as unknown as ModelCtor,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler as unknown as ModelCtor,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget as unknown as ModelCtor,
  'networking.istio.io/v1/Gateway': Gateway as unknown as ModelCtor,
  'networking.istio.io/v1/VirtualService': VirtualService as unknown as ModelCtor,
  'networking.istio.io/v1/DestinationRule': DestinationRule as unknown as ModelCtor,
  'networking.istio.io/v1alpha3/EnvoyFilter': EnvoyFilter as unknown as ModelCtor,
  'security.istio.io/v1/PeerAuthentication': PeerAuthentication as unknown as ModelCtor,
  'security.istio.io/v1/RequestAuthentication': RequestAuthentication as unknown as ModelCtor,
  'security.istio.io/v1/AuthorizationPolicy': AuthorizationPolicy as unknown as ModelCtor,
};

export const KNOWN_KINDS: readonly string[] = Object.keys(MODELS);

/**
 * Validates one document against its kind's schema. Returns problems as
 * `file (document, Kind/name): /json/pointer: message`; empty when valid.
 */
export function validateManifest(doc: ManifestDoc): string[] {
  const o = doc.object as Partial<K8sObject>;
  const at = where(doc);
  if (typeof o.apiVersion !== 'string' || typeof o.kind !== 'string') return [`${at}: missing apiVersion or kind`];
  const Model = MODELS[`${o.apiVersion}/${o.kind}`];
  if (Model === undefined)
    return [`${at}: no schema for ${o.apiVersion} ${o.kind}; test/deploy/lib/manifests.ts validates ${KNOWN_KINDS.join(', ')}`];
  if (typeof o.metadata?.name !== 'string' || o.metadata.name === '') return [`${at}: metadata.name is required`];

  const as = SAME_SCHEMA_AS[`${o.apiVersion}/${o.kind}`];
  const model = new Model({ ...structuredClone(doc.object), ...(as === undefined ? {} : { apiVersion: as }) });
  const problems: string[] = [];
  const read = new WeakMap<object, Set<string>>();
  const proxies = new WeakMap<object, object>();
  // Wraps an object so every property the validator reads is recorded.
  const track = (target: object): object => {
    const known = proxies.get(target);
    if (known !== undefined) return known;
    const proxy = new Proxy(target, {
      get(t, key, receiver) {
        const value: unknown = Reflect.get(t, key, receiver);
        if (typeof key !== 'string') return value;
        let keys = read.get(t);
        if (keys === undefined) read.set(t, (keys = new Set()));
        keys.add(key);
        return value !== null && typeof value === 'object' && Object.prototype.hasOwnProperty.call(t, key) ? track(value) : value;
      },
    });
    proxies.set(target, proxy);
    return proxy;
  };
  try {
    model.validate.call(track(model));
  } catch (err) {
    const e = err as { errors?: { instancePath?: string; message?: string }[]; message: string };
    if (Array.isArray(e.errors) && e.errors.length > 0) {
      for (const x of e.errors) problems.push(`${at}: ${x.instancePath || '/'}: ${x.message ?? 'invalid'}`);
    } else problems.push(`${at}: ${e.message}`);
  }
  // Fields the schema never read: unknown to it. Objects it never looked into are free-form.
  const walk = (value: unknown, pointer: string): void => {
    if (value === null || typeof value !== 'object') return;
    if (Array.isArray(value)) {
      value.forEach((v, i) => walk(v, `${pointer}/${i}`));
      return;
    }
    const keys = read.get(value);
    for (const [k, v] of Object.entries(value)) {
      if (keys !== undefined && keys.size > 0 && !keys.has(k))
        problems.push(`${at}: ${pointer}/${k}: unknown field (not in the ${o.kind} schema)`);
      walk(v, `${pointer}/${k}`);
    }
  };
  walk(model, '');
  return [...new Set(problems)];
}
