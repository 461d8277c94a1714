import type * as grpc from '@grpc/grpc-js';
import { beforeEach, describe, expect, it } from 'vitest';
import { BackendError, BackendUnavailableError, DeadlineExceededError, InvalidRequestError } from '../../../src/errors.js';
import type { Decision, RateLimitCheck } from '../../../src/limiter/types.js';
import type { WireRateLimitRequest, WireRateLimitResponse } from '../../../src/server/grpc/mapping.js';
import {
  createShouldRateLimitHandler,
  type GrpcLogger,
  type RateLimitService,
  type ShouldRateLimitHandlerOptions,
} from '../../../src/server/grpc/server.js';

/** Status codes (numbers as in src/errors.ts and grpc-js). */
const CANCELLED = 1;
const INVALID_ARGUMENT = 3;
const DEADLINE_EXCEEDED = 4;
const INTERNAL = 13;
const UNAVAILABLE = 14;

interface Reply {
  err: { code?: number; details?: string; metadata?: grpc.Metadata } | null;
  value: WireRateLimitResponse | null | undefined;
}

/**
 * Runs the handler on a fake unary call (no socket) and resolves with what it replied, once the
 * event loop has turned (so a second reply would be seen).
 */
async function invoke(
  opts: ShouldRateLimitHandlerOptions,
  request: WireRateLimitRequest,
  call: { deadline?: grpc.Deadline; cancelled?: boolean } = {},
): Promise<Reply> {
  const handler = createShouldRateLimitHandler(opts);
  const fakeCall = {
    request,
    cancelled: call.cancelled ?? false,
    getDeadline: () => call.deadline ?? Infinity,
  } as unknown as grpc.ServerUnaryCall<WireRateLimitRequest, WireRateLimitResponse>;
  let reply: Reply | undefined;
  let calls = 0;
  void handler(fakeCall, (err, value) => {
    calls++;
    reply = { err: err as Reply['err'], value };
  });
  await new Promise((resolve) => setImmediate(resolve));
  expect(calls).toBe(1);
  return reply!;
}

const OK_DECISION: Decision = {
  code: 'OK',
  statuses: [
    {
      code: 'OK',
      limit: { requestsPerUnit: 10, unit: 'minute', unitMultiplier: 1, name: undefined },
      remaining: 9,
      resetMs: 42_000,
      shadowed: false,
      unlimited: false,
    },
  ],
};

/**
 * How the fake limiter answers: with a promise (a Redis-backed limiter), or synchronously, by
 * returning the decision or throwing (the memory backend). Every test runs in both modes.
 */
type Answering = 'promise' | 'sync';
let answering: Answering = 'promise';

function fakeLimiter(result: Decision | Error): RateLimitService & { calls: { check: RateLimitCheck; deadline: number | undefined }[] } {
  const calls: { check: RateLimitCheck; deadline: number | undefined }[] = [];
  return {
    calls,
    shouldRateLimit(check, opts) {
      calls.push({ check, deadline: opts.deadline });
      if (answering === 'sync') {
        if (result instanceof Error) throw result;
        return result;
      }
      return result instanceof Error ? Promise.reject(result) : Promise.resolve(result);
    },
  };
}

function recordingLogger(): GrpcLogger & { lines: [string, string][] } {
  const lines: [string, string][] = [];
  return {
    lines,
    error: (_obj, msg) => lines.push(['error', msg]),
    debug: (_obj, msg) => lines.push(['debug', msg]),
  };
}

const REQUEST: WireRateLimitRequest = {
  domain: 'edge',
  hitsAddend: 0,
  descriptors: [{ entries: [{ key: 'company', value: 'acme' }], limit: null, hitsAddend: null }],
};

describe.each<Answering>(['promise', 'sync'])('ShouldRateLimit handler, limiter answering by %s', (mode) => {
  beforeEach(() => {
    answering = mode;
  });

  it(
    mode === 'sync' ? 'replies before returning when the limiter answers synchronously' : "replies once the limiter's promise settles",
    async () => {
      const handler = createShouldRateLimitHandler({ limiter: fakeLimiter(OK_DECISION) });
      let replied: unknown;
      const call = { request: REQUEST, cancelled: false, getDeadline: () => Infinity } as unknown as grpc.ServerUnaryCall<
        WireRateLimitRequest,
        WireRateLimitResponse
      >;
      void handler(call, (err, value) => {
        replied = err ?? value;
      });
      if (mode === 'sync') {
        expect(replied).toMatchObject({ overallCode: 1 });
      } else {
        expect(replied).toBeUndefined();
        await Promise.resolve();
        await Promise.resolve();
        expect(replied).toMatchObject({ overallCode: 1 });
      }
    },
  );

  it('maps the request, passes the deadline down and maps the decision back', async () => {
    const limiter = fakeLimiter(OK_DECISION);
    const deadline = new Date(Date.now() + 60_000);
    const reply = await invoke({ limiter }, REQUEST, { deadline });
    expect(limiter.calls).toEqual([
      {
        check: {
          domain: 'edge',
          hitsAddend: 0,
          descriptors: [{ entries: [{ key: 'company', value: 'acme' }], limitOverride: undefined, hitsAddend: undefined }],
        },
        deadline: deadline.getTime(),
      },
    ]);
    expect(reply.err).toBeNull();
    expect(reply.value).toEqual({
      overallCode: 1,
      statuses: [
        { code: 1, currentLimit: { name: '', requestsPerUnit: 10, unit: 2 }, limitRemaining: 9, durationUntilReset: { seconds: 42 } },
      ],
      responseHeadersToAdd: undefined,
      dynamicMetadata: undefined,
    });
  });

  it('passes no deadline when the caller set none (grpc-js reports Infinity)', async () => {
    const limiter = fakeLimiter(OK_DECISION);
    await invoke({ limiter }, REQUEST);
    expect(limiter.calls[0]!.deadline).toBeUndefined();
    await invoke({ limiter }, REQUEST, { deadline: Date.now() + 5_000 });
    expect(typeof limiter.calls[1]!.deadline).toBe('number');
  });

  it('adds response headers when enabled, with the configured names', async () => {
    const limiter = fakeLimiter(OK_DECISION);
    const headers = { limit: 'RateLimit-Limit', remaining: 'RateLimit-Remaining', reset: 'RateLimit-Reset' };
    expect((await invoke({ limiter, headers }, REQUEST)).value!.responseHeadersToAdd).toEqual([
      { key: 'RateLimit-Limit', value: '10' },
      { key: 'RateLimit-Remaining', value: '9' },
      { key: 'RateLimit-Reset', value: '42' },
    ]);
    expect((await invoke({ limiter, headers: undefined }, REQUEST)).value!.responseHeadersToAdd).toBeUndefined();
  });

  it('replies DEADLINE_EXCEEDED without evaluating when the deadline has passed', async () => {
    const limiter = fakeLimiter(OK_DECISION);
    const errors: [unknown, number][] = [];
    const reply = await invoke({ limiter, onError: (e, c) => errors.push([e, c]) }, REQUEST, { deadline: new Date(Date.now() - 1) });
    expect(limiter.calls).toHaveLength(0);
    expect(reply.err!.code).toBe(DEADLINE_EXCEEDED);
    expect(reply.err!.details).toBe('deadline exceeded before the request was evaluated');
    expect(reply.err!.metadata!.get('meshlimit-error-code')).toEqual(['ML_ERR_DEADLINE_EXCEEDED']);
    expect(errors).toHaveLength(1);
    expect(errors[0]![0]).toBeInstanceOf(DeadlineExceededError);
    expect(errors[0]![1]).toBe(DEADLINE_EXCEEDED);
  });

  it('does not evaluate a call the client already cancelled', async () => {
    const limiter = fakeLimiter(OK_DECISION);
    const reply = await invoke({ limiter }, REQUEST, { cancelled: true });
    expect(limiter.calls).toHaveLength(0);
    expect(reply.err!.code).toBe(CANCELLED);
    expect(reply.err!.metadata!.get('meshlimit-error-code')).toEqual(['ML_ERR_CANCELLED']);
  });

  it('maps BackendUnavailableError to UNAVAILABLE (never OK/UNKNOWN), with its message and code', async () => {
    const logger = recordingLogger();
    const reply = await invoke({ limiter: fakeLimiter(new BackendUnavailableError('redis: connect ECONNREFUSED')), logger }, REQUEST);
    expect(reply.value).toBeUndefined();
    expect(reply.err!.code).toBe(UNAVAILABLE);
    expect(reply.err!.details).toBe('redis: connect ECONNREFUSED');
    expect(reply.err!.metadata!.get('meshlimit-error-code')).toEqual(['ML_ERR_BACKEND_UNAVAILABLE']);
    expect(logger.lines).toEqual([['debug', 'ShouldRateLimit failed']]);
  });

  it('maps InvalidRequestError from the limiter to INVALID_ARGUMENT', async () => {
    const reply = await invoke(
      { limiter: fakeLimiter(new InvalidRequestError('rate limit domain must not be empty')) },
      { ...REQUEST, domain: '' },
    );
    expect(reply.err!.code).toBe(INVALID_ARGUMENT);
    expect(reply.err!.details).toBe('rate limit domain must not be empty');
  });

  it('maps mapping errors to INVALID_ARGUMENT without calling the limiter', async () => {
    const limiter = fakeLimiter(OK_DECISION);
    const bad: WireRateLimitRequest = {
      ...REQUEST,
      descriptors: [{ entries: [{ key: 'k', value: 'v' }], limit: { requestsPerUnit: 5, unit: 0 }, hitsAddend: null }],
    };
    const reply = await invoke({ limiter }, bad);
    expect(limiter.calls).toHaveLength(0);
    expect(reply.err!.code).toBe(INVALID_ARGUMENT);
    expect(reply.err!.details).toBe('descriptors[0].limit.unit must be a known RateLimitUnit, got 0');

    const huge: WireRateLimitRequest = {
      ...REQUEST,
      descriptors: [{ entries: [{ key: 'k', value: 'v' }], limit: null, hitsAddend: { value: '18446744073709551615' } }],
    };
    expect((await invoke({ limiter }, huge)).err!.code).toBe(INVALID_ARGUMENT);
    expect(limiter.calls).toHaveLength(0);
  });

  it('maps DeadlineExceededError from the limiter to DEADLINE_EXCEEDED', async () => {
    const reply = await invoke(
      { limiter: fakeLimiter(new DeadlineExceededError('deadline exceeded before the counters were evaluated')) },
      REQUEST,
    );
    expect(reply.err!.code).toBe(DEADLINE_EXCEEDED);
  });

  it('maps BackendError to INTERNAL and logs it at error level (a bug, never masked)', async () => {
    const logger = recordingLogger();
    const reply = await invoke({ limiter: fakeLimiter(new BackendError('ERR Error running script')), logger }, REQUEST);
    expect(reply.err!.code).toBe(INTERNAL);
    expect(reply.err!.details).toBe('ERR Error running script');
    expect(logger.lines).toEqual([['error', 'ShouldRateLimit failed']]);
  });

  it('maps an unexpected error to INTERNAL without leaking its message, logs it and reports it', async () => {
    const logger = recordingLogger();
    const errors: [unknown, number][] = [];
    const boom = new TypeError("Cannot read properties of undefined (reading 'x')");
    const reply = await invoke({ limiter: fakeLimiter(boom), logger, onError: (e, c) => errors.push([e, c]) }, REQUEST);
    expect(reply.err).toEqual({ code: INTERNAL, details: 'internal error' });
    expect(logger.lines).toEqual([['error', 'ShouldRateLimit: unexpected error']]);
    expect(errors).toEqual([[boom, INTERNAL]]);
  });

  it('logs nothing on success', async () => {
    const logger = recordingLogger();
    await invoke({ limiter: fakeLimiter(OK_DECISION), logger }, REQUEST);
    expect(logger.lines).toEqual([]);
  });
});
