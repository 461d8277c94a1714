/**
 * Bounds on what gRPC clients can make this process hold or do: connections, streams, pings and
 * resets on the HTTP/2 server that grpc-js runs for the gRPC port.
 *
 * Why: grpc-js advertises 2^32-1 concurrent streams and never times out a stream whose request
 * does not finish, so one connection could hold 50,000 streams (about 7.5 KB each, 465 MB RSS);
 * nothing bounded the connections; pings were answered however fast they came; and only nghttp2's
 * own rapid-reset rate limit (a GOAWAY after about 1,100 resets) stopped a reset flood.
 *
 * What grpc-js offers is used as it is ({@link transportServerOptions}): `grpc.max_concurrent_streams`
 * (SETTINGS_MAX_CONCURRENT_STREAMS: nghttp2 refuses streams beyond it with REFUSED_STREAM, and a
 * client that keeps opening them after acknowledging the setting gets a PROTOCOL_ERROR GOAWAY),
 * `grpc.max_connection_age_ms` and `_grace_ms` (GOAWAY, then a forced close), and
 * `grpc.keepalive_time_ms`/`_timeout_ms` (our own pings drop vanished peers). Not its
 * `grpc.max_connection_idle_ms`: that adds a `once('close')` listener to every stream (145 ns a
 * stream, measured as below), while the guard sees every stream anyway and closes idle
 * connections from its sweep for nothing more per stream than a counter.
 * Node's own HTTP/2 bounds stay at their defaults, which grpc-js does not change and which fit:
 * 128 header pairs and 64 KiB of headers per request, 100 refused streams in a row and 1,000
 * invalid frames before a session is closed. grpc-js does turn off Node's per-session memory cap
 * (`maxSessionMemory`, which it found to degrade badly when reached); it is left off, because
 * the stream bounds here already bound what a session holds.
 *
 * What grpc-js does not offer is built by {@link TransportGuard} on grpc-js's HTTP/2 servers:
 * - a maximum number of connections (Node's `net.Server.maxConnections`: a connection beyond it
 *   is closed as soon as it is accepted);
 * - a maximum number of streams open at once over every connection, so that the memory clients
 *   can pin is bounded however many connections they open (more are refused with REFUSED_STREAM,
 *   which tells a client the stream was not processed);
 * - a stream timeout: a stream whose request has not completed, or whose unary call has not
 *   ended, after `streamTimeoutMs` is reset (RST_STREAM CANCEL). A grpc-js deadline cannot do it:
 *   its DEADLINE_EXCEEDED status ends only our half of a stream the client keeps open;
 * - an idle timeout: a connection without streams for `maxConnectionIdleMs` is closed with
 *   GOAWAY (as grpc-js's own would, see above);
 * - keepalive enforcement as grpc-go's (EnforcementPolicy MinTime, max ping strikes): a PING
 *   sooner than `permitKeepaliveTimeMs` after the previous one, with no new stream in between, is
 *   a strike; one more than `maxPingStrikes` ends the connection with GOAWAY ENHANCE_YOUR_CALM
 *   `too_many_pings` (the debug data grpc clients read to slow their keepalive down);
 * - rapid-reset protection: each connection has `maxResetStreams` credits; a stream the client
 *   resets before it ended costs one, a stream that ended normally earns one back (up to the
 *   maximum); below zero the connection ends with GOAWAY ENHANCE_YOUR_CALM `too_many_resets`. A
 *   client that cancels some calls (Envoy, at its timeout) never runs out; a reset flood does,
 *   after `maxResetStreams` resets, whatever its rate (the same idea as Envoy's own premature-reset
 *   check: a connection whose streams are mostly reset is closed).
 *
 * How it reaches the streams: grpc-js has no hook on its HTTP/2 sessions or streams. Its public
 * `createConnectionInjector` would give us the listening socket (and so `maxConnections`), but not
 * the sessions it creates. So {@link TransportGuard.attach} reads grpc-js's private
 * `Server.http2Servers` map (present since grpc-js 1.10) after each bind and listens to those
 * `http2.Http2Server`s' `session` events, with a per-session `stream` listener. If grpc-js ever
 * renames or reshapes that map, `attach` throws and the service does not start, rather than
 * serving without these bounds (test/integration/grpc/transport-guard.test.ts runs each bound).
 *
 * Cost per stream: one Map entry, one `close` listener and a few field updates, no allocation and
 * no clock read: 224 ns a stream (the fastest of 15 interleaved runs of 500,000 streams on
 * stand-in EventEmitters: 334 ns against 110 ns with grpc-js's own `close` listener only), about
 * 0.5% of the 44 us of CPU the service spends per request (benchmarks/README.md). Time is counted in
 * sweeps: one interval timer, a quarter of the shorter of the stream and idle timeouts, ticks a
 * counter and visits every session's oldest streams; a stream is reset, and an idle connection
 * closed, between 1 and 1.25 timeouts (a blocked event loop only makes it later).
 */
import * as http2 from 'node:http2';
import { Server as NetServer } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type * as grpc from '@grpc/grpc-js';
import type { TransportAction } from '../../telemetry/metrics.js';

/** The GRPC_* settings this module enforces. Durations in ms; 0 turns a connection timer off. */
export interface TransportLimits {
  /** GRPC_MAX_CONCURRENT_STREAMS: SETTINGS_MAX_CONCURRENT_STREAMS of every connection. */
  readonly maxConcurrentStreams: number;
  /** GRPC_MAX_OPEN_STREAMS: streams open at once over all connections; more are refused. */
  readonly maxOpenStreams: number;
  /** GRPC_MAX_CONNECTIONS: connections open at once; more are closed when accepted. */
  readonly maxConnections: number;
  /** GRPC_MAX_CONNECTION_IDLE: a connection without streams for this long is closed (GOAWAY). */
  readonly maxConnectionIdleMs: number;
  /** GRPC_MAX_CONNECTION_AGE: a connection this old is sent GOAWAY (grpc-js adds +-10% jitter). */
  readonly maxConnectionAgeMs: number;
  /** GRPC_MAX_CONNECTION_AGE_GRACE: then its streams have this long to finish before it is closed. */
  readonly maxConnectionAgeGraceMs: number;
  /** GRPC_STREAM_TIMEOUT_MS: bound on an unfinished request, and on a unary call as a whole. */
  readonly streamTimeoutMs: number;
  /** GRPC_KEEPALIVE_TIME: our PING to each client this often. */
  readonly keepaliveTimeMs: number;
  /** GRPC_KEEPALIVE_TIMEOUT: a client that does not answer our PING within this is dropped. */
  readonly keepaliveTimeoutMs: number;
  /** GRPC_PERMIT_KEEPALIVE_TIME: the shortest interval between a client's PINGs that is not a strike. */
  readonly permitKeepaliveTimeMs: number;
  /** GRPC_MAX_PING_STRIKES: strikes tolerated before GOAWAY `too_many_pings`. */
  readonly maxPingStrikes: number;
  /** GRPC_MAX_RESET_STREAMS: a connection's reset credits (see the module comment). */
  readonly maxResetStreams: number;
}

/**
 * The defaults (the settings table declares the same values; a unit test keeps them equal), for
 * an RLS behind Envoy: a few long-lived connections per Envoy (one per worker thread), each with
 * at most a few hundred calls in flight, every call small and answered in milliseconds. What
 * clients can pin in the worst case: about 20 KB per connection and 7.5 KB per stream, so
 * 1,000 x 20 KB + 10,000 x 7.5 KB, about 100 MB. The stream timeout is far above any real call
 * (Redis answers or times out within REDIS_COMMAND_TIMEOUT_MS, a JWKS fetch within its timeout).
 * Connection age and grace are envoyproxy/ratelimit's (24h, 1h).
 */
export const DEFAULT_TRANSPORT_LIMITS: TransportLimits = Object.freeze({
  maxConcurrentStreams: 256,
  maxOpenStreams: 10_000,
  maxConnections: 1000,
  maxConnectionIdleMs: 5 * 60_000,
  maxConnectionAgeMs: 24 * 3_600_000,
  maxConnectionAgeGraceMs: 3_600_000,
  streamTimeoutMs: 5000,
  keepaliveTimeMs: 60_000,
  keepaliveTimeoutMs: 20_000,
  permitKeepaliveTimeMs: 10_000,
  maxPingStrikes: 2,
  maxResetStreams: 200,
});

/** grpc-js's "never" for its connection timers (a Node timer cannot be longer). */
const NEVER_MS = 2_147_483_647;
const timerMs = (ms: number): number => (ms <= 0 || ms >= NEVER_MS ? NEVER_MS : ms);

/** The grpc-js server options for `limits` (the rest is {@link TransportGuard}'s). */
export function transportServerOptions(limits: TransportLimits): grpc.ServerOptions {
  return {
    'grpc.max_concurrent_streams': limits.maxConcurrentStreams,
    'grpc.max_connection_age_ms': timerMs(limits.maxConnectionAgeMs),
    'grpc.max_connection_age_grace_ms': timerMs(limits.maxConnectionAgeGraceMs),
    'grpc.keepalive_time_ms': timerMs(limits.keepaliveTimeMs),
    'grpc.keepalive_timeout_ms': timerMs(limits.keepaliveTimeoutMs),
  };
}

type GrpcHttp2Server = NetServer & Pick<http2.Http2Server, 'on'>;

/** grpc-js's private map of its HTTP/2 servers; see the module comment for why it is read. */
function http2ServersOf(server: grpc.Server): Map<GrpcHttp2Server, { sessions: Set<http2.ServerHttp2Session> }> {
  const map = (server as unknown as { http2Servers?: unknown }).http2Servers;
  const fail = (what: string): Error =>
    new Error(
      `@grpc/grpc-js internals changed (${what}): the gRPC transport limits (src/server/grpc/transport-guard.ts) cannot be applied`,
    );
  if (!(map instanceof Map)) throw fail('Server.http2Servers is not a Map');
  for (const [h2, info] of map as Map<unknown, unknown>) {
    if (!(h2 instanceof NetServer)) throw fail('a Server.http2Servers key is not a net.Server');
    if (!((info as { sessions?: unknown } | undefined)?.sessions instanceof Set))
      throw fail('Server.http2Servers entries have no sessions Set');
  }
  return map as Map<GrpcHttp2Server, { sessions: Set<http2.ServerHttp2Session> }>;
}

/**
 * Enforces the {@link TransportLimits} grpc-js has no option for on a grpc-js server: call
 * {@link attach} after every bind, {@link close} when the server is shut down.
 */
export class TransportGuard {
  /** Streams open now over every connection. */
  openStreams = 0;
  /** Sweeps so far: the clock streams and connections are timed by. */
  tick = 0;
  /** Sweeps a stream may stay open (its request incomplete, or its unary call unanswered). */
  readonly streamTicks: number;
  /** Sweeps a connection may stay without streams; Infinity when idle connections are kept. */
  readonly idleTicks: number;
  /** Paths of streaming methods: their streams are bounded until their request is complete. */
  readonly longLivedPaths: readonly string[];
  /**
   * Paths of bidirectional methods whose request never completes (RLQS): never reset by the
   * stream timeout; their handler bounds them (first report, reports per second, streams).
   */
  readonly openEndedPaths: readonly string[];
  private readonly sweepMs: number;
  private readonly sessions = new Set<SessionGuard>();
  private readonly attached = new WeakSet<object>();
  private sweepTimer: NodeJS.Timeout | undefined;

  /**
   * @param longLivedPaths paths of streaming methods (the health service's Watch): their streams
   *   are bounded until their request is complete, then live as long as the client wants.
   * @param onAction called on each action taken against a client (for a counter); must not throw.
   * @param acceptPeer with TLS, whether a connection's client may stay once its handshake is
   *   done (GRPC_CLIENT_TLS_SAN, ./tls.ts); one it refuses is destroyed before any of its
   *   streams is read. Runs once per connection, on grpc-js's HTTP/2 server's `secureConnection`.
   * @param openEndedPaths see {@link TransportGuard.openEndedPaths}.
   */
  constructor(
    readonly limits: TransportLimits,
    longLivedPaths: Iterable<string>,
    private readonly onAction?: (action: TransportAction) => void,
    private readonly acceptPeer?: (socket: TLSSocket) => boolean,
    openEndedPaths: Iterable<string> = [],
  ) {
    this.longLivedPaths = [...longLivedPaths];
    this.openEndedPaths = [...openEndedPaths];
    const idleMs = limits.maxConnectionIdleMs > 0 ? limits.maxConnectionIdleMs : Number.POSITIVE_INFINITY;
    this.sweepMs = Math.max(10, Math.ceil(Math.min(limits.streamTimeoutMs, idleMs) / 4));
    this.streamTicks = Math.ceil(limits.streamTimeoutMs / this.sweepMs);
    this.idleTicks = Math.ceil(idleMs / this.sweepMs);
  }

  /** Applies the limits to the grpc-js server's HTTP/2 servers not seen before. */
  attach(server: grpc.Server): void {
    for (const [h2, info] of http2ServersOf(server)) {
      if (this.attached.has(h2)) continue;
      this.attached.add(h2);
      h2.maxConnections = this.limits.maxConnections;
      h2.on('drop', () => this.report('connection_refused'));
      h2.on('session', (session: http2.ServerHttp2Session) => this.guard(session));
      const acceptPeer = this.acceptPeer;
      // After Node's own listener, which made the session: destroying the socket in the same turn
      // ends it before nghttp2 reads a frame.
      if (acceptPeer !== undefined)
        (h2 as unknown as http2.Http2SecureServer).on('secureConnection', (socket: TLSSocket) => {
          if (acceptPeer(socket)) return;
          this.report('san_refused');
          socket.destroy();
        });
      // A connection accepted between the listen and this call (unlikely: grpc-js resolves the
      // bind before the event loop polls for connections).
      for (const session of info.sessions) this.guard(session);
    }
    if (this.sweepTimer === undefined) {
      this.sweepTimer = setInterval(this.sweep, this.sweepMs);
      this.sweepTimer.unref();
    }
  }

  /** Stops the sweep (the sessions end with the server). */
  close(): void {
    clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
  }

  report(action: TransportAction): void {
    try {
      this.onAction?.(action);
    } catch {
      // a counter must never break the transport
    }
  }

  private guard(session: http2.ServerHttp2Session): void {
    const g = new SessionGuard(session, this);
    this.sessions.add(g);
    session.on('stream', g.onStream);
    // Node reports received PINGs only to a listener.
    session.on('ping', g.onPing);
    session.once('close', () => this.sessions.delete(g));
  }

  private readonly sweep = (): void => {
    const tick = ++this.tick;
    for (const g of this.sessions) g.sweep(tick);
  };
}

/** One connection's streams, idleness, ping strikes and reset credits. */
class SessionGuard {
  /** Streams under the stream timeout, by the tick they opened at: insertion order is age order. */
  private readonly streams = new Map<http2.ServerHttp2Stream, number>();
  /** Open streams of {@link TransportGuard.longLivedPaths}, timed or (once complete) spared. */
  private readonly longLived = new Set<http2.ServerHttp2Stream>();
  /** Streams opened on this connection so far. */
  private opened = 0;
  /** {@link opened} at the last sweep, and sweeps since the connection last had a stream. */
  private openedAtSweep = 0;
  private idleSweeps = 0;
  /** {@link opened} at the last PING, and when that was (performance.now()). */
  private openedAtPing = -1;
  private lastPingAt = 0;
  private strikes = 0;
  private credits: number;
  private shutting = false;
  /** A stream's `close` listener (`this` is the stream): one function per connection, none per stream. */
  readonly onStreamClose: (this: http2.ServerHttp2Stream) => void;

  constructor(
    private readonly session: http2.ServerHttp2Session,
    private readonly guard: TransportGuard,
  ) {
    this.credits = guard.limits.maxResetStreams;
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the listener's own `this` is the stream
    const self = this;
    this.onStreamClose = function (this: http2.ServerHttp2Stream): void {
      self.closed(this);
    };
  }

  readonly onStream = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void => {
    const guard = this.guard;
    stream.on('close', this.onStreamClose);
    this.opened++;
    if (++guard.openStreams > guard.limits.maxOpenStreams) {
      guard.report('stream_refused');
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    const path = headers[':path'];
    // Untimed, but counted as open (the connection is busy, never idle-closed under it).
    for (const p of guard.openEndedPaths) if (p === path) return void this.longLived.add(stream);
    this.streams.set(stream, guard.tick);
    // A plain loop of string comparisons: the paths' lengths differ, so each is one length check.
    for (const p of guard.longLivedPaths) if (p === path) this.longLived.add(stream);
  };

  /**
   * grpc-go's EnforcementPolicy: a PING sooner than the permitted interval after the previous one,
   * with no stream opened in between, is a strike; a stream in between clears the strikes.
   */
  readonly onPing = (): void => {
    const now = performance.now();
    const limits = this.guard.limits;
    if (this.opened !== this.openedAtPing) this.strikes = 0;
    else if (now - this.lastPingAt < limits.permitKeepaliveTimeMs && ++this.strikes > limits.maxPingStrikes) this.shut('too_many_pings');
    this.openedAtPing = this.opened;
    this.lastPingAt = now;
  };

  private closed(stream: http2.ServerHttp2Stream): void {
    this.guard.openStreams--;
    if (this.longLived.size > 0) this.longLived.delete(stream);
    // Not timed: refused above, or reset (or spared) by `sweep`, which untimes first.
    if (!this.streams.delete(stream)) return;
    if (this.shutting || this.session.destroyed) return;
    if (stream.rstCode === http2.constants.NGHTTP2_NO_ERROR) {
      if (this.credits < this.guard.limits.maxResetStreams) this.credits++;
    } else if (--this.credits < 0) {
      this.shut('too_many_resets');
    }
  }

  /** At each tick: resets the streams past the stream timeout, closes the connection when idle too long. */
  sweep(tick: number): void {
    const guard = this.guard;
    // Strictly more ticks than the timeout holds: the tick a stream opened at may be up to one sweep old.
    for (const [stream, openedAt] of this.streams) {
      if (tick - openedAt <= guard.streamTicks) break;
      this.streams.delete(stream);
      if (stream.closed) continue;
      if (this.longLived.has(stream) && stream.state.remoteClose === 1) continue; // request complete: spared
      guard.report('stream_timeout');
      stream.close(http2.constants.NGHTTP2_CANCEL);
    }
    const busy = this.opened !== this.openedAtSweep || this.streams.size > 0 || this.longLived.size > 0;
    this.openedAtSweep = this.opened;
    this.idleSweeps = busy ? 0 : this.idleSweeps + 1;
    // GOAWAY, and the connection closes once its streams are done (grpc-js's idle close does the same).
    if (this.idleSweeps > guard.idleTicks && !this.session.closed) this.session.close();
  }

  /**
   * GOAWAY ENHANCE_YOUR_CALM with `reason` as debug data, then the connection closed. The close
   * waits for a `setImmediate`: this runs in a stream's `close` or the session's `ping` event,
   * which Node can emit while nghttp2 is still parsing the connection's input, and destroying the
   * session under nghttp2's feet corrupts memory (seen here as an endless loop to 4 GB, and as
   * "double free or corruption"). Node defers its own session clean-up the same way.
   */
  private shut(reason: 'too_many_pings' | 'too_many_resets'): void {
    if (this.shutting) return;
    this.shutting = true;
    this.guard.report(reason);
    try {
      this.session.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, undefined, Buffer.from(reason));
    } catch {
      // the session is already going away
    }
    setImmediate(destroySession, this.session);
  }
}

function destroySession(session: http2.ServerHttp2Session): void {
  session.destroy();
}
