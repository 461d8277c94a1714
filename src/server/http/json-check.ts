import { isMeshlimitError } from '../../errors.js';
import type { StringLimits } from '../../limiter/string-limits.js';
import type { RequestRecorder } from '../../telemetry/events.js';
import type { Decider } from '../decide.js';
import type { ResponseHeaderNames, SoftLimit } from '../grpc/mapping.js';
import type { CheckResult } from './app.js';
import { decisionToJson, jsonToCheck } from './proto-json.js';

/** INTERNAL: the status an unexpected error is reported with (as the gRPC adapter does). */
const INTERNAL = 13;
/** An HTTP request has no deadline, trace carrier or cancellation here. */
const NO_OPTIONS = Object.freeze({});

export interface JsonCheckOptions {
  readonly decide: Decider;
  /** Counts and times the request exactly as a gRPC call is counted. */
  readonly recorder: RequestRecorder;
  /** LIMIT_RESPONSE_HEADERS_ENABLED and LIMIT_*_HEADER; undefined when off. */
  readonly headers?: ResponseHeaderNames | undefined;
  /** DEGRADED_HEADER; undefined when unset. */
  readonly degradedHeader?: string | undefined;
  /** SOFT_LIMIT_HEADER / SOFT_LIMIT_SHARE; undefined when off. */
  readonly softLimit?: SoftLimit | undefined;
  /** Largest domain, key and value accepted (MAX_DESCRIPTOR_VALUE_BYTES); the defaults when undefined. */
  readonly stringLimits?: StringLimits | undefined;
}

/**
 * `POST /json`: the HTTP twin of ShouldRateLimit. A parsed proto3 JSON body in, a decision
 * (200 OK, 429 OVER_LIMIT) out as proto3 JSON; a failure is thrown as the MeshlimitError it is,
 * for the HTTP app to map by its `httpStatus`. Every request is recorded, failed ones included.
 */
export function jsonCheck(opts: JsonCheckOptions): (body: unknown) => Promise<CheckResult> {
  const { decide, recorder } = opts;
  return async (body) => {
    let startedAt: number | undefined;
    try {
      const check = jsonToCheck(body, opts.stringLimits);
      startedAt = performance.now();
      const decision = await decide(check, NO_OPTIONS);
      recorder.answered(startedAt, decision);
      return {
        httpStatus: decision.code === 'OVER_LIMIT' ? 429 : 200,
        body: decisionToJson(decision, opts.headers, opts.degradedHeader, opts.softLimit),
      };
    } catch (err) {
      recorder.failed(isMeshlimitError(err) ? err.grpcStatus : INTERNAL, startedAt);
      throw err;
    }
  };
}
