/**
 * The xDS protocol files (proto/envoy/service/discovery/v3, proto/ratelimit/config/ratelimit/v3)
 * loaded with protobufjs, and the one gRPC method meshlimit calls as an xDS client.
 *
 * protobufjs directly rather than @grpc/proto-loader: a DiscoveryResponse carries its resources
 * as `google.protobuf.Any`, whose bytes must be decoded as `RateLimitConfig` one by one (so an
 * undecodable resource is NACKed, naming it, instead of failing the stream), and proto-loader
 * exposes no decoder for a message type. The same library proto-loader uses underneath, so the
 * wire format is the one the rest of meshlimit speaks. `google/protobuf/*` come bundled.
 */
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

/** `proto/` at the repository root (same relative place from `src/xds` and `dist/xds`). */
const PROTO_DIR = fileURLToPath(new URL('../../proto/', import.meta.url));

const FILES = ['envoy/service/discovery/v3/ads.proto', 'ratelimit/config/ratelimit/v3/rls_conf.proto'];

/** The resource type meshlimit subscribes to (upstream's `resource.RateLimitConfigType`). */
export const RATE_LIMIT_CONFIG_TYPE_URL = 'type.googleapis.com/ratelimit.config.ratelimit.v3.RateLimitConfig';

/** Path of ADS state of the world, the method envoyproxy/ratelimit's client calls. */
export const ADS_SOTW_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';

export interface XdsTypes {
  readonly discoveryRequest: protobuf.Type;
  readonly discoveryResponse: protobuf.Type;
  readonly rateLimitConfig: protobuf.Type;
}

let types: XdsTypes | undefined;

/** The message types, loaded once per process. Field names keep the proto's snake_case. */
export function xdsTypes(): XdsTypes {
  if (types !== undefined) return types;
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => PROTO_DIR + target;
  root.loadSync(FILES, { keepCase: true });
  root.resolveAll();
  types = Object.freeze({
    discoveryRequest: root.lookupType('envoy.service.discovery.v3.DiscoveryRequest'),
    discoveryResponse: root.lookupType('envoy.service.discovery.v3.DiscoveryResponse'),
    rateLimitConfig: root.lookupType('ratelimit.config.ratelimit.v3.RateLimitConfig'),
  });
  return types;
}

/**
 * Decode options: enums by name (an enum number this proto does not know stays a number), every
 * field present with its proto3 default, repeated fields always arrays, absent messages `null`.
 */
export const DECODE_OPTIONS: protobuf.IConversionOptions = Object.freeze({
  enums: String,
  longs: Number,
  defaults: true,
  arrays: true,
  objects: false,
  oneofs: false,
});

/** Decodes `bytes` as `type` into a plain object with {@link DECODE_OPTIONS}; throws on malformed input. */
export function decodeMessage(type: protobuf.Type, bytes: Uint8Array): Record<string, unknown> {
  return type.toObject(type.decode(bytes), DECODE_OPTIONS);
}

/** Encodes a plain object (snake_case fields, enums by name or number) as `type`. */
export function encodeMessage(type: protobuf.Type, value: Record<string, unknown>): Buffer {
  return Buffer.from(type.encode(type.fromObject(value)).finish());
}
