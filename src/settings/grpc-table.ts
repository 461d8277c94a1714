import { goDuration, integer, setting } from './spec.js';

/**
 * The gRPC port's transport bounds (GRPC_*), rows of the settings table (./table.ts spreads them
 * in after GRPC_PORT). What each bound does and how it is enforced: src/server/grpc/transport-guard.ts
 * and the README's "Limits of the gRPC port".
 */
export const GRPC_TRANSPORT_DEFS = {
  GRPC_MAX_CONCURRENT_STREAMS: setting({
    group: 'grpc',
    default: '256',
    parse: integer(1, 2_147_483_647),
    description:
      'Streams (calls in flight) one gRPC connection may have open, advertised as HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS; the client must wait or open another connection (Envoy does). grpc-js would advertise 2^32-1.',
  }),
  GRPC_MAX_OPEN_STREAMS: setting({
    group: 'grpc',
    default: '10000',
    parse: integer(1, 100_000_000),
    description:
      'Streams open at once over all gRPC connections of the process; a stream beyond it is refused at once (RST_STREAM REFUSED_STREAM), so the memory clients can pin is bounded however many connections they open (about 7.5 KB per stream).',
  }),
  GRPC_MAX_CONNECTIONS: setting({
    group: 'grpc',
    default: '1000',
    parse: integer(1, 1_000_000),
    description:
      'gRPC connections open at once (per process with `WORKERS`); one beyond it is closed as soon as it is accepted. Each Envoy holds about one connection per worker thread: raise it for a mesh where many sidecars call meshlimit.',
  }),
  GRPC_MAX_CONNECTION_IDLE: setting({
    group: 'grpc',
    default: '5m',
    parse: goDuration(),
    description:
      "A gRPC connection without a call for this long is closed with GOAWAY (Envoy reconnects on its next call). Go duration syntax (`30s`, `5m`, `1h30m`); `0` never. Named after grpc-go's `MaxConnectionIdle`.",
  }),
  GRPC_MAX_CONNECTION_AGE: setting({
    group: 'grpc',
    default: '24h',
    parse: goDuration(),
    description:
      "A gRPC connection this old (+-10% jitter) is sent GOAWAY, so clients reconnect and spread over replicas. Go duration syntax as in envoyproxy/ratelimit, same default; `0` never. Durations of 24.8 days or more (a Node timer's limit) also mean never.",
  }),
  GRPC_MAX_CONNECTION_AGE_GRACE: setting({
    group: 'grpc',
    default: '1h',
    parse: goDuration(),
    description:
      "After that GOAWAY, how long the connection's calls may still run before it is closed. Go duration syntax as in envoyproxy/ratelimit, same default; `0` no limit.",
  }),
  GRPC_STREAM_TIMEOUT_MS: setting({
    group: 'grpc',
    default: '5000',
    parse: integer(1, 3_600_000),
    description:
      'Milliseconds a gRPC stream may take to deliver its whole request, and a unary call (`ShouldRateLimit`, health `Check`) to end; past it the stream is reset (RST_STREAM CANCEL), so clients that never finish a request cannot hold streams. A health `Watch` lives on once its request is complete; an RLQS stream (whose request never completes) is not reset by it, but must send its first report within it. Reset between 1 and 1.25 times this after the stream opened.',
  }),
  GRPC_KEEPALIVE_TIME: setting({
    group: 'grpc',
    default: '60s',
    parse: goDuration(),
    description: 'meshlimit PINGs each gRPC client this often, to drop connections to peers that vanished. Go duration syntax; `0` off.',
  }),
  GRPC_KEEPALIVE_TIMEOUT: setting({
    group: 'grpc',
    default: '20s',
    parse: goDuration(1),
    description: 'A client that has not answered that PING within this is disconnected. Go duration syntax.',
  }),
  GRPC_PERMIT_KEEPALIVE_TIME: setting({
    group: 'grpc',
    default: '10s',
    parse: goDuration(),
    description:
      "Keepalive enforcement: a client PING sooner than this after its previous one, with no new call in between, is a strike (grpc-go's `EnforcementPolicy.MinTime`, grpc-java's `permitKeepAliveTime`; grpc-go defaults to 5 minutes). Go duration syntax.",
  }),
  GRPC_MAX_PING_STRIKES: setting({
    group: 'grpc',
    default: '2',
    parse: integer(0, 1_000_000),
    description:
      'Strikes a gRPC connection may collect; the next one closes it with GOAWAY ENHANCE_YOUR_CALM `too_many_pings` (what grpc clients read to slow their keepalive down), as grpc-go does.',
  }),
  GRPC_MAX_RESET_STREAMS: setting({
    group: 'grpc',
    default: '200',
    parse: integer(1, 1_000_000),
    description:
      'HTTP/2 rapid-reset protection: streams a client may reset (cancel) on one connection beyond those it let end; each call that ends normally earns one back, up to this number. Past it the connection is closed with GOAWAY ENHANCE_YOUR_CALM `too_many_resets`. A client that cancels some calls at its timeout (Envoy) never gets there; a reset flood does after this many resets.',
  }),
} as const;
