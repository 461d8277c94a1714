import type { CompiledSnapshot } from '../../config/index.js';
import type { Explanation } from '../../limiter/limiter.js';
import type { StringLimits } from '../../limiter/string-limits.js';
import type { RateLimitCheck } from '../../limiter/types.js';
import type { ResolveStep } from '../decide.js';
import { jsonToCheck } from '../http/proto-json.js';
import { explanationJson, unknownDomainJson, type ExplainJson } from './explain-json.js';

export interface ExplainDeps {
  /** Descriptor resolution, as a decision gets it (a JWT claim, the client address). */
  readonly resolve: ResolveStep;
  /** The limiter's side-effect-free evaluation (RateLimiter.explain over the stores' readStates). */
  readonly explain: (check: RateLimitCheck) => Promise<Explanation>;
  /** MAX_DESCRIPTOR_VALUE_BYTES and friends: the same bounds as `/json`. */
  readonly stringLimits?: StringLimits | undefined;
}

/**
 * `POST /v1/explain`: a parsed `/json` body in (same shape, same bounds, same errors), the
 * {@link ExplainJson} out. Charges nothing on any store and records no decision metric: it is an
 * operator's question, not traffic.
 * @throws InvalidRequestError naming the field, BackendUnavailableError when a store cannot be read.
 */
export function explainHandler(deps: ExplainDeps): (body: unknown) => Promise<ExplainJson> {
  return async (body) => {
    const check = await deps.resolve(jsonToCheck(body, deps.stringLimits));
    const e = await deps.explain(check);
    const snapshot = compiled(e.snapshot);
    return e.knownDomain ? explanationJson(check, e, snapshot) : unknownDomainJson(check, snapshot, e.now);
  };
}

function compiled(s: Explanation['snapshot']): CompiledSnapshot {
  if (!('traceMatch' in s)) throw new Error('explain needs a compiled config snapshot (one with traceMatch)');
  return s as CompiledSnapshot;
}
