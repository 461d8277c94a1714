/**
 * Wire to domain and back for the xDS client, in one place: the DiscoveryRequest meshlimit sends
 * (node, ACK/NACK fields), and the resources of a DiscoveryResponse unpacked from
 * `google.protobuf.Any` and decoded into the config layer's `XdsRateLimitConfig`
 * (src/config/xds-resources.ts). Objects are protobufjs plain objects with snake_case fields
 * (./protos.ts).
 */
import {
  XDS_UNIT_NAMES,
  type XdsRateLimitConfig,
  type XdsRateLimitDescriptor,
  type XdsRateLimitPolicy,
  type XdsUnitName,
} from '../config/index.js';
import { decodeMessage, RATE_LIMIT_CONFIG_TYPE_URL, xdsTypes } from './protos.js';
import { buildInfo } from '../util/build-info.js';

/** The DiscoveryResponse fields meshlimit reads. */
export interface DiscoveryResponse {
  readonly versionInfo: string;
  readonly typeUrl: string;
  readonly nonce: string;
  readonly resources: readonly { readonly typeUrl: string; readonly value: Uint8Array }[];
  /** `control_plane.identifier`; '' when absent. */
  readonly controlPlane: string;
}

/** A response that cannot be read as RateLimitConfig resources; the message names the resource. */
export class ResourceDecodeError extends Error {}

/** Identity meshlimit presents to the management server (`envoy.config.core.v3.Node`). */
export interface NodeIdentity {
  /** CONFIG_GRPC_XDS_NODE_ID: the management server keys its snapshots by it. */
  readonly id: string;
  /** CONFIG_GRPC_XDS_NODE_METADATA, as string values of `metadata`. */
  readonly metadata: Readonly<Record<string, string>>;
}

/** Largest error_detail message sent, in bytes (Envoy truncates its NACK messages the same way). */
export const MAX_ERROR_DETAIL_BYTES = 4096;

/** `google.rpc.Code.INTERNAL`: the code Envoy puts in the error_detail of its NACKs. */
const NACK_CODE = 13;

/** The `Node` of every request: id, metadata, and meshlimit as the user agent. */
export function nodeMessage(node: NodeIdentity): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node.metadata)) fields[k] = { stringValue: v };
  return { id: node.id, metadata: { fields }, user_agent_name: 'meshlimit', user_agent_version: buildInfo().version };
}

/**
 * A DiscoveryRequest for RateLimitConfig: the subscription (empty version and nonce), an ACK (the
 * applied version and its nonce) or a NACK (the version still applied, the rejected response's
 * nonce, and `errorDetail`).
 */
export function discoveryRequest(
  node: NodeIdentity,
  versionInfo: string,
  responseNonce: string,
  errorDetail?: string,
): Record<string, unknown> {
  // Empty strings are left out, as a proto3 encoder leaves out defaults.
  const request: Record<string, unknown> = { node: nodeMessage(node), resource_names: [], type_url: RATE_LIMIT_CONFIG_TYPE_URL };
  if (versionInfo !== '') request.version_info = versionInfo;
  if (responseNonce !== '') request.response_nonce = responseNonce;
  if (errorDetail !== undefined) request.error_detail = { code: NACK_CODE, message: truncateUtf8(errorDetail, MAX_ERROR_DETAIL_BYTES) };
  return request;
}

/** A decoded DiscoveryResponse (./protos.ts plain object) as the fields the client reads. */
export function toDiscoveryResponse(o: Record<string, unknown>): DiscoveryResponse {
  const resources = (o.resources as { type_url: string; value: Uint8Array }[]).map((r) => ({ typeUrl: r.type_url, value: r.value }));
  const cp = o.control_plane as { identifier: string } | null;
  return {
    versionInfo: o.version_info as string,
    typeUrl: o.type_url as string,
    nonce: o.nonce as string,
    resources,
    controlPlane: cp?.identifier ?? '',
  };
}

/**
 * Every resource of a response as a `RateLimitConfig`. Throws {@link ResourceDecodeError} for a
 * resource of another type or whose bytes do not decode.
 */
export function unpackResources(response: DiscoveryResponse): XdsRateLimitConfig[] {
  const type = xdsTypes().rateLimitConfig;
  return response.resources.map((any, i) => {
    if (any.typeUrl !== RATE_LIMIT_CONFIG_TYPE_URL) {
      throw new ResourceDecodeError(`xds:resources[${i}]: type_url '${any.typeUrl}' is not ${RATE_LIMIT_CONFIG_TYPE_URL}`);
    }
    let decoded: Record<string, unknown>;
    try {
      decoded = decodeMessage(type, any.value);
    } catch (err) {
      throw new ResourceDecodeError(`xds:resources[${i}]: cannot decode ${type.fullName.slice(1)}: ${(err as Error).message}`);
    }
    return toRateLimitConfig(decoded);
  });
}

/** A decoded `RateLimitConfig` plain object as the config layer's type. */
export function toRateLimitConfig(o: Record<string, unknown>): XdsRateLimitConfig {
  return {
    name: o.name as string,
    domain: o.domain as string,
    descriptors: (o.descriptors as Record<string, unknown>[]).map(toDescriptor),
  };
}

function toDescriptor(o: Record<string, unknown>): XdsRateLimitDescriptor {
  const policy = o.rate_limit as Record<string, unknown> | null;
  const metadata = o.metadata as { fields: Record<string, unknown> } | null;
  return {
    key: o.key as string,
    value: o.value as string,
    rateLimit: policy === null ? null : toPolicy(policy),
    descriptors: (o.descriptors as Record<string, unknown>[]).map(toDescriptor),
    shadowMode: o.shadow_mode as boolean,
    detailedMetric: o.detailed_metric as boolean,
    quotaMode: o.quota_mode as boolean,
    metadata: metadata === null ? null : structToJson(metadata),
  };
}

function toPolicy(o: Record<string, unknown>): XdsRateLimitPolicy {
  const unit = o.unit as string | number;
  return {
    unit: typeof unit === 'string' && (XDS_UNIT_NAMES as readonly string[]).includes(unit) ? (unit as XdsUnitName) : Number(unit),
    requestsPerUnit: o.requests_per_unit as number,
    unlimited: o.unlimited as boolean,
    name: o.name as string,
    replaces: (o.replaces as { name: string }[]).map((r) => ({ name: r.name })),
  };
}

/**
 * `google.protobuf.Struct` (decoded) as the JSON object it stands for. The well-known types are
 * protobufjs's bundled definitions, whose field names are camelCase whatever `keepCase` says.
 */
export function structToJson(s: { fields: Record<string, unknown> }): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s.fields)) out[k] = valueToJson(v as Record<string, unknown>);
  return out;
}

function valueToJson(v: Record<string, unknown>): unknown {
  if (v.structValue != null) return structToJson(v.structValue as { fields: Record<string, unknown> });
  if (v.listValue != null) return (v.listValue as { values: Record<string, unknown>[] }).values.map(valueToJson);
  if (v.stringValue != null) return v.stringValue;
  if (v.numberValue != null) return v.numberValue;
  if (v.boolValue != null) return v.boolValue;
  return null;
}

/** `text` cut to at most `max` UTF-8 bytes, never inside a character. */
export function truncateUtf8(text: string, max: number): string {
  if (Buffer.byteLength(text) <= max) return text;
  let end = max;
  const bytes = Buffer.from(text);
  // Back off continuation bytes (10xxxxxx) so the cut falls on a character boundary.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString('utf8');
}
