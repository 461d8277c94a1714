import { z } from 'zod';

/**
 * Schemas for the parts of Envoy's v3 API that deploy/ writes by hand: the rate-limit and Lua
 * HTTP filters and the route/virtual-host `rate_limits` actions. Written from Envoy's API
 * (envoy/extensions/filters/http/ratelimit/v3/rate_limit.proto, envoy/config/route/v3/
 * route_components.proto `RateLimit`, envoy/extensions/filters/http/lua/v3/lua.proto), in proto3
 * JSON/YAML form (snake_case field names, Durations as "0.1s").
 *
 * Why: Istio's EnvoyFilter CRD schema types `patch.value` as free-form (preserve unknown fields),
 * so `@kubernetes-models/istio` accepts any Envoy config there, and istiod only reports a broken
 * patch in its logs after it is applied. These schemas are strict (an unknown or misspelt field
 * is an error) but cover a subset: a valid Envoy field outside the subset is reported as unknown,
 * to be added here deliberately.
 */

/** proto3 JSON google.protobuf.Duration: seconds with up to 9 fractional digits and an `s`. */
export const duration = z.string().regex(/^\d+(\.\d{1,9})?s$/, 'must be a Duration like "0.1s"');

/** Milliseconds of a proto3 JSON Duration. */
export function durationMs(d: string): number {
  return Number(d.slice(0, -1)) * 1000;
}

const headerName = z.string().regex(/^:?[a-z0-9!#$%&'*+\-.^_`|~]+$/, 'must be a lower-case HTTP header name');

const stringMatcher = z.union([
  z.strictObject({ exact: z.string(), ignore_case: z.boolean().optional() }),
  z.strictObject({ prefix: z.string().min(1), ignore_case: z.boolean().optional() }),
  z.strictObject({ suffix: z.string().min(1), ignore_case: z.boolean().optional() }),
  z.strictObject({ contains: z.string().min(1), ignore_case: z.boolean().optional() }),
  z.strictObject({ safe_regex: z.strictObject({ regex: z.string().min(1) }) }),
]);

/** config.route.v3.HeaderMatcher (the forms used with header_value_match). */
const headerMatcher = z.union([
  z.strictObject({ name: headerName, string_match: stringMatcher, invert_match: z.boolean().optional() }),
  z.strictObject({ name: headerName, present_match: z.boolean(), invert_match: z.boolean().optional() }),
]);

/** config.route.v3.RateLimit.Action: exactly one action per list item. */
export const rateLimitAction = z.union([
  z.strictObject({ source_cluster: z.strictObject({}) }),
  z.strictObject({ destination_cluster: z.strictObject({}) }),
  z.strictObject({
    request_headers: z.strictObject({
      header_name: headerName,
      descriptor_key: z.string().min(1),
      skip_if_absent: z.boolean().optional(),
    }),
  }),
  z.strictObject({ remote_address: z.strictObject({}) }),
  z.strictObject({
    masked_remote_address: z.strictObject({
      v4_prefix_mask_len: z.number().int().min(0).max(32).optional(),
      v6_prefix_mask_len: z.number().int().min(0).max(128).optional(),
    }),
  }),
  z.strictObject({
    generic_key: z.strictObject({ descriptor_value: z.string().min(1), descriptor_key: z.string().min(1).optional() }),
  }),
  z.strictObject({
    header_value_match: z.strictObject({
      descriptor_value: z.string().min(1),
      expect_match: z.boolean().optional(),
      headers: z.array(headerMatcher).min(1),
    }),
  }),
]);
export type RateLimitAction = z.infer<typeof rateLimitAction>;

/**
 * config.route.v3.RateLimit.HitsAddend: a number, or a format with exactly one substitution
 * command (Envoy rejects both, neither, or several; source/extensions/filters/common/
 * ratelimit_config/ratelimit_config.cc).
 */
const hitsAddend = z.union([
  z.strictObject({ number: z.number().int().min(0).max(1_000_000_000) }),
  z.strictObject({
    format: z.string().regex(/^%[A-Z_]+(\([^%]*\))?%$/, 'must be exactly one substitution command, e.g. %DYNAMIC_METADATA(ns:key)%'),
  }),
]);

/** config.route.v3.RateLimit (one entry of `rate_limits`). */
export const rateLimit = z.strictObject({
  stage: z.number().int().min(0).max(10).optional(),
  disable_key: z.string().optional(),
  actions: z.array(rateLimitAction).min(1),
  /** Sent once more when the stream ends, not on the request path (meshlimit reservations settle with it). */
  apply_on_stream_done: z.boolean().optional(),
  hits_addend: hitsAddend.optional(),
});
export type RateLimitEntry = z.infer<typeof rateLimit>;

/** The value of a VIRTUAL_HOST MERGE patch that adds rate limits. */
export const virtualHostRateLimitsPatch = z.strictObject({ rate_limits: z.array(rateLimit).min(1) });

/** The value of an HTTP_ROUTE MERGE patch that adds route-level rate limits (RouteAction.rate_limits). */
export const routeRateLimitsPatch = z.strictObject({ route: z.strictObject({ rate_limits: z.array(rateLimit).min(1) }) });

export const RATE_LIMIT_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit';
export const LUA_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua';

/** config.core.v3.GrpcService (envoy_grpc form). */
const grpcService = z.strictObject({
  envoy_grpc: z.strictObject({ cluster_name: z.string().min(1), authority: z.string().min(1).optional() }),
  timeout: duration.optional(),
});

/** config.core.v3.GrpcService, google_grpc form (Envoy's own gRPC client, no cluster needed). */
export const googleGrpcService = z.strictObject({
  google_grpc: z.strictObject({ target_uri: z.string().min(1), stat_prefix: z.string().min(1) }),
  timeout: duration.optional(),
});

/** extensions.filters.http.ratelimit.v3.RateLimit. */
export const rateLimitFilterConfig = z.strictObject({
  '@type': z.literal(RATE_LIMIT_TYPE),
  domain: z.string().min(1),
  stage: z.number().int().min(0).max(10).optional(),
  request_type: z.enum(['internal', 'external', 'both']).optional(),
  timeout: duration.optional(),
  failure_mode_deny: z.boolean().optional(),
  rate_limited_as_resource_exhausted: z.boolean().optional(),
  rate_limit_service: z.strictObject({
    grpc_service: grpcService,
    transport_api_version: z.literal('V3'),
  }),
  enable_x_ratelimit_headers: z.enum(['OFF', 'DRAFT_VERSION_03']).optional(),
  disable_x_envoy_ratelimited_header: z.boolean().optional(),
  rate_limited_status: z.strictObject({ code: z.number().int().min(400).max(599) }).optional(),
  status_on_error: z.strictObject({ code: z.number().int().min(100).max(599) }).optional(),
  stat_prefix: z.string().optional(),
});
export type RateLimitFilterConfig = z.infer<typeof rateLimitFilterConfig>;

/** extensions.filters.http.lua.v3.Lua with inline code. */
export const luaFilterConfig = z.strictObject({
  '@type': z.literal(LUA_TYPE),
  default_source_code: z.strictObject({ inline_string: z.string().min(1) }),
});
export type LuaFilterConfig = z.infer<typeof luaFilterConfig>;

/** An HTTP filter as inserted by an HTTP_FILTER patch (or listed in a static http_filters). */
export const httpFilter = z.union([
  z.strictObject({ name: z.literal('envoy.filters.http.ratelimit'), typed_config: rateLimitFilterConfig }),
  z.strictObject({ name: z.string().min(1), typed_config: luaFilterConfig }),
]);
export type HttpFilter = z.infer<typeof httpFilter>;

/** The router, last in a static filter chain. */
export const routerFilter = z.strictObject({
  name: z.literal('envoy.filters.http.router'),
  typed_config: z.strictObject({ '@type': z.literal('type.googleapis.com/envoy.extensions.filters.http.router.v3.Router') }),
});

type Issue = z.core.$ZodIssue;

/**
 * `zod` issues as `path: message` lines, `prefix` (a location) prepended to the path. For a
 * union (an action, a filter) only the alternative the value was evidently meant as is reported:
 * the one with no mismatch at the union's own level (it recognised the key), then the fewest
 * issues; otherwise a misspelt field would drown in "expected one of" noise.
 */
export function issuesOf(error: z.ZodError, prefix: string): string[] {
  return flatten(error.issues, []).map((i) => {
    const p = i.path.map((x) => (typeof x === 'number' ? `[${x}]` : `.${String(x)}`)).join('');
    return `${prefix}${p}: ${i.message}`;
  });
}

function flatten(issues: readonly Issue[], base: readonly PropertyKey[]): Issue[] {
  const out: Issue[] = [];
  for (const issue of issues) {
    const path = [...base, ...issue.path];
    if (issue.code !== 'invalid_union' || issue.errors.length === 0) {
      out.push({ ...issue, path } as Issue);
      continue;
    }
    const branches = issue.errors.map((b) => flatten(b, path));
    // A mismatch at the union's own level: a key this alternative does not know, or one it
    // requires that is missing. The alternative with none of those is the one meant.
    const topLevel = (i: Issue): boolean =>
      (i.code === 'unrecognized_keys' && i.path.length === path.length) ||
      (i.code === 'invalid_type' && i.path.length === path.length + 1 && /received undefined/.test(i.message)) ||
      (i.code === 'invalid_value' && i.path.length === path.length + 1);
    const score = (b: Issue[]): number => b.filter(topLevel).length * 1000 + b.length;
    const best = branches.reduce((a, b) => (score(b) < score(a) ? b : a));
    if (score(best) < 1000) {
      out.push(...best);
      continue;
    }
    // No alternative recognised the value: name what it carried instead of one guess.
    const unknown = [
      ...new Set(branches.flat().flatMap((i) => (i.code === 'unrecognized_keys' && i.path.length === path.length ? i.keys : []))),
    ];
    const what =
      unknown.length > 0 ? `unknown or unsupported field ${unknown.map((k) => `"${k}"`).join(', ')}` : 'matches none of the accepted forms';
    out.push({
      code: 'custom',
      path,
      message: `${what} (this check knows the forms listed in test/deploy/lib/envoy-schema.ts)`,
      input: undefined,
    } as Issue);
  }
  return out;
}
