/**
 * Loads the RLS v3, RLQS v3 and grpc.health.v1 protocol files from `proto/` (repository root) with
 * @grpc/proto-loader. One module so the server, the client and the tests decode with the same
 * files; each option set is loaded once per process.
 *
 * `google/protobuf/*.proto` imports are served by protobufjs's bundled well-known types, so
 * `proto/` holds only the Envoy and gRPC files.
 */
import { fileURLToPath } from 'node:url';
import * as protoLoader from '@grpc/proto-loader';

/** Absolute path of the `proto/` directory (same relative place from `src/` and `dist/`). */
export const PROTO_DIR = fileURLToPath(new URL('../../../proto/', import.meta.url));

export const RLS_PROTO_FILE = 'envoy/service/ratelimit/v3/rls.proto';
export const HEALTH_PROTO_FILE = 'grpc/health/v1/health.proto';
export const RLQS_PROTO_FILE = 'envoy/service/rate_limit_quota/v3/rlqs.proto';

/** Fully-qualified service names (also the names grpc.health.v1 reports on). */
export const RLS_SERVICE = 'envoy.service.ratelimit.v3.RateLimitService';
export const HEALTH_SERVICE = 'grpc.health.v1.Health';
export const RLQS_SERVICE = 'envoy.service.rate_limit_quota.v3.RateLimitQuotaService';

/**
 * Server-side decode options; `mapping.ts` relies on them:
 * - `keepCase: false`: camelCase field names, the same names proto3 JSON uses;
 * - `longs: String`: the only 64-bit request field is the per-descriptor `hits_addend`
 *   (UInt64Value); a string keeps it exact so values above 2^53 are rejected, not rounded;
 * - enums stay numbers (no name lookup on the hot path);
 * - `defaults: true`: absent scalars decode to their proto3 default ('' / 0) and absent
 *   messages to `null`, so a present-but-zero UInt64Value (`{ value: '0' }`) stays
 *   distinguishable from an absent one (`null`);
 * - `arrays: true`: repeated fields are always arrays.
 */
export const SERVER_LOADER_OPTIONS: Readonly<protoLoader.Options> = Object.freeze({
  keepCase: false,
  longs: String,
  defaults: true,
  arrays: true,
  objects: false,
  oneofs: false,
  includeDirs: [PROTO_DIR],
});

/**
 * Client-side decode options: like the server's, but enum values decode to their names
 * ('OK', 'MINUTE', ...) and 64-bit integers to numbers (only Duration seconds, always small),
 * which reads better in callers and tests.
 */
export const CLIENT_LOADER_OPTIONS: Readonly<protoLoader.Options> = Object.freeze({
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  arrays: true,
  objects: false,
  oneofs: false,
  includeDirs: [PROTO_DIR],
});

let serverPackage: protoLoader.PackageDefinition | undefined;
let clientPackage: protoLoader.PackageDefinition | undefined;

/** RLS + health + RLQS definitions decoded with {@link SERVER_LOADER_OPTIONS}. Loaded once. */
export function loadServerPackage(): protoLoader.PackageDefinition {
  serverPackage ??= protoLoader.loadSync([RLS_PROTO_FILE, HEALTH_PROTO_FILE, RLQS_PROTO_FILE], { ...SERVER_LOADER_OPTIONS });
  return serverPackage;
}

/** RLS + health + RLQS definitions decoded with {@link CLIENT_LOADER_OPTIONS}. Loaded once. */
export function loadClientPackage(): protoLoader.PackageDefinition {
  clientPackage ??= protoLoader.loadSync([RLS_PROTO_FILE, HEALTH_PROTO_FILE, RLQS_PROTO_FILE], { ...CLIENT_LOADER_OPTIONS });
  return clientPackage;
}

/** The service definition named `name` in `pkg`; throws if the proto files do not define it. */
export function serviceDefinition(pkg: protoLoader.PackageDefinition, name: string): protoLoader.ServiceDefinition {
  const def = pkg[name];
  if (def === undefined || !isServiceDefinition(def)) {
    throw new Error(`${name} is not a service in ${PROTO_DIR}`);
  }
  return def;
}

function isServiceDefinition(def: protoLoader.AnyDefinition): def is protoLoader.ServiceDefinition {
  return !('format' in def);
}
