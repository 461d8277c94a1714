/**
 * `envoy.service.rate_limit_quota.v3.RateLimitQuotaService/StreamRateLimitQuotas` on the gRPC
 * server beside RLS: the stream handler, the registry of open streams (RLQS_MAX_STREAMS), the
 * timer that re-evaluates subscribed buckets (RLQS_REASSIGN_INTERVAL_MS) and the shutdown that
 * pushes every assignment again with TTL 0 before the streams end, so Envoys fall back to their
 * `expired_assignment_behavior` (or `no_assignment_behavior`) instead of keeping a share nobody
 * re-evaluates.
 *
 * Failure contract of a stream: a malformed report ends it with INVALID_ARGUMENT, a bound with
 * RESOURCE_EXHAUSTED (ML_ERR_RLQS_BOUND), both naming the field or setting; a stream that sent
 * no report within GRPC_STREAM_TIMEOUT_MS ends with DEADLINE_EXCEEDED (the transport guard
 * spares RLQS streams from its own timeout, as their request never completes). Envoy reopens the
 * stream at its next reporting tick.
 */
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { DeadlineExceededError, InternalError, InvalidRequestError, isMeshlimitError, type MeshlimitError } from '../../../errors.js';
import { MAX_ENVOY_ID_LENGTH } from '../../../quota/index.js';
import type { RlqsMetrics, RlqsStreamEnd } from '../../../telemetry/rlqs-metrics.js';
import type { Assigner } from './assigner.js';
import { boundError, type RlqsStreamSettings, type UsageLimits, type WireQuotaResponse, type WireUsageReports } from './mapping.js';
import { RlqsSession, type SessionHost } from './session.js';

export interface RlqsServiceOptions {
  readonly settings: RlqsStreamSettings;
  readonly limits: UsageLimits;
  readonly assigner: Assigner;
  /** GRPC_STREAM_TIMEOUT_MS: how long a new stream may wait before its first report. */
  readonly firstReportTimeoutMs: number;
  readonly metrics?: RlqsMetrics | undefined;
  readonly logger?: { error(obj: object, msg: string): void } | undefined;
  /** Runs a round inside a trace span (tracing on); undefined runs it bare. */
  readonly span?: (<T>(name: string, attributes: Record<string, string | number>, fn: () => Promise<T>) => Promise<T>) | undefined;
  /** Test clock (Unix ms). */
  readonly now?: (() => number) | undefined;
}

type RlqsCall = grpc.ServerDuplexStream<WireUsageReports, WireQuotaResponse>;

export class RlqsService {
  private readonly sessions = new Map<RlqsSession, RlqsCall>();
  private readonly perRule = new Map<string, number>();
  private readonly host: SessionHost;
  private timer: NodeJS.Timeout | undefined;
  private stopping = false;

  constructor(private readonly o: RlqsServiceOptions) {
    const now = o.now ?? Date.now;
    this.host = {
      settings: o.settings,
      limits: o.limits,
      assigner: o.assigner,
      metrics: o.metrics,
      now,
      localShare: (ruleKey) => this.perRule.get(ruleKey) ?? 0,
      subscribed: (ruleKey, delta) => {
        const n = (this.perRule.get(ruleKey) ?? 0) + delta;
        if (n > 0) this.perRule.set(ruleKey, n);
        else this.perRule.delete(ruleKey);
      },
      span: o.span ?? ((_name, _attrs, fn) => fn()),
    };
  }

  get streamCount(): number {
    return this.sessions.size;
  }

  /** Starts the re-evaluation timer (unref'd: it never keeps the process alive). */
  start(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => {
      for (const s of this.sessions.keys()) s.refresh();
    }, this.o.settings.reassignIntervalMs);
    this.timer.unref();
  }

  /** The grpc-js handler of StreamRateLimitQuotas. */
  readonly handler: grpc.handleBidiStreamingCall<WireUsageReports, WireQuotaResponse> = (call) => {
    let ended: RlqsStreamEnd | undefined;
    const end = (outcome: RlqsStreamEnd, err?: MeshlimitError): void => {
      if (ended !== undefined) return;
      ended = outcome;
      clearTimeout(firstReport);
      session.close();
      this.sessions.delete(session);
      this.o.metrics?.streamEnded(outcome);
      if (err !== undefined) {
        const metadata = new grpc.Metadata();
        metadata.set('meshlimit-error-code', err.code);
        call.emit('error', { code: err.grpcStatus, details: err.message, metadata });
      } else if (outcome !== 'error') {
        call.end();
      }
    };
    const envoyId = this.envoyIdOf(call);
    const session = new RlqsSession(
      this.host,
      {
        send: (response) => {
          if (ended === undefined) call.write(response);
        },
        fail: (err: unknown) => {
          if (!isMeshlimitError(err)) {
            // A bug, not the client's fault: INTERNAL without details, logged with its stack.
            this.o.logger?.error({ err }, 'RLQS stream failed');
            return end('error', new InternalError('internal error', { cause: err }));
          }
          end(err.grpcStatus === grpc.status.RESOURCE_EXHAUSTED ? 'resource_exhausted' : 'invalid_argument', err);
        },
      },
      typeof envoyId === 'string' ? envoyId : '',
    );
    this.o.metrics?.streamOpened();
    this.sessions.set(session, call);
    let received = false;
    const firstReport = setTimeout(() => {
      if (!received)
        end(
          'no_report',
          new DeadlineExceededError(
            `no RLQS report within ${this.o.firstReportTimeoutMs} ms of opening the stream (GRPC_STREAM_TIMEOUT_MS)`,
          ),
        );
    }, this.o.firstReportTimeoutMs);
    firstReport.unref();
    if (typeof envoyId !== 'string') return end('invalid_argument', envoyId);
    if (this.stopping) return end('shutdown');
    const max = this.o.settings.maxStreams;
    if (this.sessions.size > max)
      return end('resource_exhausted', boundError(`this process has ${max} RLQS streams open`, max, 'RLQS_MAX_STREAMS'));
    call.on('data', (msg: WireUsageReports) => {
      received = true;
      session.receive(msg);
    });
    call.on('end', () => end('client_closed'));
    call.on('cancelled', () => end('client_closed'));
    call.on('error', () => end('error'));
  };

  /**
   * Shutdown: stop re-evaluating, push every assigned bucket with TTL 0 (Envoy's filter arms its
   * expiry timer with the TTL's whole seconds, so 0 expires the assignment at once), then end
   * every stream with OK. Envoy reconnects at its next report, to another replica.
   */
  shutdown(): void {
    this.stopping = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    for (const [session, call] of [...this.sessions]) {
      session.expireAll();
      session.close();
      this.sessions.delete(session);
      this.o.metrics?.streamEnded('shutdown');
      call.end();
    }
  }

  /** RLQS_CLIENT_ID_HEADER's value, else a fresh id (this stream is a new Envoy); an error for an over-long id. */
  private envoyIdOf(call: RlqsCall): string | MeshlimitError {
    const values = (call.metadata as grpc.Metadata | undefined)?.get(this.o.settings.clientIdHeader) ?? [];
    const v = values[0];
    if (v === undefined || v === '') return `stream:${randomUUID()}`;
    const id = typeof v === 'string' ? v : v.toString('utf8');
    if (id.length > MAX_ENVOY_ID_LENGTH) {
      return new InvalidRequestError(`${this.o.settings.clientIdHeader} is ${id.length} characters; at most ${MAX_ENVOY_ID_LENGTH}`);
    }
    return id;
  }
}
