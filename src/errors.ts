/**
 * Every error meshlimit raises on purpose is a {@link MeshlimitError} with a stable `code`.
 *
 * Contract: codes never change meaning once released; each is documented in the README
 * ("Error codes") and `test/unit/errors.test.ts` checks uniqueness and documentation.
 * The mapping to gRPC and HTTP status lives here, once. Status numbers are the canonical
 * gRPC codes (https://grpc.github.io/grpc/core/md_doc_statuscodes.html), kept as numbers so the
 * domain does not import grpc-js.
 */

/** Canonical gRPC status codes used by meshlimit. */
export const GrpcCode = {
  OK: 0,
  CANCELLED: 1,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;
export type GrpcCode = (typeof GrpcCode)[keyof typeof GrpcCode];

export interface ErrorCodeInfo {
  readonly grpc: GrpcCode;
  readonly http: number;
  /** Whether retrying later may succeed (drives circuit breaking and failure policy). */
  readonly transient: boolean;
  readonly description: string;
}

/** The registry of codes. Adding a code here requires a README entry (enforced by a test). */
export const ERROR_CODES = {
  ML_ERR_CONFIG: {
    grpc: GrpcCode.FAILED_PRECONDITION,
    http: 500,
    transient: false,
    description: 'A descriptor config file is invalid; the message starts with the file path and names the field.',
  },
  ML_ERR_SETTINGS: {
    grpc: GrpcCode.FAILED_PRECONDITION,
    http: 500,
    transient: false,
    description: 'An environment setting is invalid; start-up stops and the message names the variable.',
  },
  ML_ERR_INVALID_REQUEST: {
    grpc: GrpcCode.INVALID_ARGUMENT,
    http: 400,
    transient: false,
    description:
      'A rate-limit request is malformed (empty domain, no descriptors, empty entry key, a string that is not valid UTF-8 or over its size limit, ...); the message names the field.',
  },
  ML_ERR_BACKEND_UNAVAILABLE: {
    grpc: GrpcCode.UNAVAILABLE,
    http: 503,
    transient: true,
    description: 'The counter store could not be reached in time (connection refused or reset, timeout, failover).',
  },
  ML_ERR_OVERLOADED: {
    grpc: GrpcCode.UNAVAILABLE,
    http: 503,
    transient: true,
    description:
      'This meshlimit process is over its admission bounds (outstanding Redis work, event-loop delay) and shed the request before anything was sent to Redis; nothing was charged. Answered by the failure policy, like an outage.',
  },
  ML_ERR_BACKEND: {
    grpc: GrpcCode.INTERNAL,
    http: 500,
    transient: false,
    description: 'The counter store rejected a command for a non-transient reason (script error, wrong type); a bug, never masked.',
  },
  ML_ERR_INTERNAL: {
    grpc: GrpcCode.INTERNAL,
    http: 500,
    transient: false,
    description: 'An unexpected error inside meshlimit (a bug); logged with its stack, answered without details.',
  },
  ML_ERR_NO_CONFIG: {
    grpc: GrpcCode.UNAVAILABLE,
    http: 503,
    transient: true,
    description:
      "No descriptor config has arrived yet from the xDS management server (`CONFIG_TYPE=GRPC_XDS_SOTW` without `FORCE_START_WITHOUT_INITIAL_CONFIG`): nothing was evaluated, and Envoy's `failure_mode_deny` decides.",
  },
  ML_ERR_DEADLINE_EXCEEDED: {
    grpc: GrpcCode.DEADLINE_EXCEEDED,
    http: 504,
    transient: true,
    description: "The caller's deadline passed before a decision was made.",
  },
  ML_ERR_CANCELLED: {
    grpc: GrpcCode.CANCELLED,
    // 499: "client closed request" (nginx); the client is gone and reads no answer anyway.
    http: 499,
    // Not transient: it says nothing about the counter store, so it must not count against it.
    transient: false,
    description: 'The caller cancelled the request before it was evaluated; nothing was charged.',
  },
  ML_ERR_UNAUTHORIZED: {
    grpc: GrpcCode.UNAUTHENTICATED,
    http: 401,
    transient: false,
    description:
      'An admin endpoint was called without the admin token (`Authorization: Bearer <ADMIN_TOKEN>`) or with a wrong one; nothing was done.',
  },
  ML_ERR_ADMIN_DISABLED: {
    grpc: GrpcCode.PERMISSION_DENIED,
    http: 403,
    transient: false,
    description:
      'A mutating admin endpoint (counter reset, tenant overrides) was called while no admin token is configured; set `ADMIN_TOKEN` or `ADMIN_TOKEN_FILE` to enable it.',
  },
  ML_ERR_RLQS_BOUND: {
    grpc: GrpcCode.RESOURCE_EXHAUSTED,
    http: 429,
    transient: false,
    description:
      'An RLQS stream went past one of its bounds (streams per process, buckets per stream, reports per second); the message names the bound and its `RLQS_*` setting. The stream is closed; Envoy reopens it at its next report.',
  },
  ML_ERR_NOT_FOUND: {
    grpc: GrpcCode.NOT_FOUND,
    http: 404,
    transient: false,
    description: 'An admin endpoint was asked about something that does not exist (no such route, no tenant override for that descriptor).',
  },
  ML_ERR_QUOTA_ENVOYS: {
    grpc: GrpcCode.RESOURCE_EXHAUSTED,
    http: 429,
    transient: false,
    description:
      'An RLQS bucket already has the most Envoys its rule can be divided among (1,024 per rule counter, MAX_ENVOYS_PER_RULE in src/quota/types.ts); a new Envoy gets no share until one is silent for 4 reporting intervals or forgotten.',
  },
} as const satisfies Record<string, ErrorCodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Base class: a stable code, a transient flag and the mapped statuses. */
export abstract class MeshlimitError extends Error {
  abstract readonly code: ErrorCode;
  get transient(): boolean {
    return ERROR_CODES[this.code].transient;
  }
  get grpcStatus(): GrpcCode {
    return ERROR_CODES[this.code].grpc;
  }
  get httpStatus(): number {
    return ERROR_CODES[this.code].http;
  }
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A config file problem. `message` always starts with the file path. */
export class ConfigError extends MeshlimitError {
  readonly code = 'ML_ERR_CONFIG' as const;
  constructor(
    readonly file: string,
    /** Dotted path of the offending field, e.g. `descriptors[0].rate_limit.unit`; empty for whole-file errors. */
    readonly field: string,
    readonly detail: string,
  ) {
    super(`${file}: ${field ? `${field}: ` : ''}${detail}`);
  }
}

/** Several config errors at once (a directory can hold several broken files). */
export class ConfigErrors extends MeshlimitError {
  readonly code = 'ML_ERR_CONFIG' as const;
  constructor(readonly errors: readonly ConfigError[]) {
    super(errors.map((e) => e.message).join('\n'));
  }
}

/** An invalid environment setting. */
export class SettingsError extends MeshlimitError {
  readonly code = 'ML_ERR_SETTINGS' as const;
  constructor(
    readonly setting: string,
    detail: string,
  ) {
    super(`setting ${setting}: ${detail}`);
  }
}

/** An RLQS stream past one of its `RLQS_*` bounds (src/server/grpc/rlqs/): the message names the bound and the setting. */
export class RlqsBoundError extends MeshlimitError {
  readonly code = 'ML_ERR_RLQS_BOUND' as const;
}

export class InvalidRequestError extends MeshlimitError {
  readonly code = 'ML_ERR_INVALID_REQUEST' as const;
}

/** The backend could not answer in time; retrying later may work. */
export class BackendUnavailableError extends MeshlimitError {
  readonly code = 'ML_ERR_BACKEND_UNAVAILABLE' as const;
}

/**
 * Shed by admission control before reaching the counter store (src/backend/resilience/admission.ts):
 * nothing was sent, nothing charged. Transient; `reason` lets the failure policy report
 * `degraded: 'overloaded'`.
 */
export class OverloadedError extends MeshlimitError {
  readonly code = 'ML_ERR_OVERLOADED' as const;
  readonly reason = 'overloaded' as const;
}

/** The backend answered with a non-transient error (e.g. a Lua error): a bug to surface, not mask. */
export class BackendError extends MeshlimitError {
  readonly code = 'ML_ERR_BACKEND' as const;
}

/** An unexpected failure (a bug); wraps the original as `cause`. */
export class InternalError extends MeshlimitError {
  readonly code = 'ML_ERR_INTERNAL' as const;
}

/** The service is waiting for its first config (xDS) and cannot decide yet; transient. */
export class NoConfigError extends MeshlimitError {
  readonly code = 'ML_ERR_NO_CONFIG' as const;
}

export class DeadlineExceededError extends MeshlimitError {
  readonly code = 'ML_ERR_DEADLINE_EXCEEDED' as const;
}

/**
 * The caller went away (its gRPC call was cancelled: RST_STREAM, a passed deadline, a lost
 * connection) before the request was evaluated, so it was not, and charged nothing.
 */
export class CancelledError extends MeshlimitError {
  readonly code = 'ML_ERR_CANCELLED' as const;
}

/** An admin call without the admin token, or with a wrong one (401). */
export class UnauthorizedError extends MeshlimitError {
  readonly code = 'ML_ERR_UNAUTHORIZED' as const;
}

/** A mutating admin call while no admin token is configured (403); the message names the settings. */
export class AdminDisabledError extends MeshlimitError {
  readonly code = 'ML_ERR_ADMIN_DISABLED' as const;
}

/** An admin call about something that does not exist (404). */
export class NotFoundError extends MeshlimitError {
  readonly code = 'ML_ERR_NOT_FOUND' as const;
}

/** A new Envoy reported on an RLQS rule counter that already has MAX_ENVOYS_PER_RULE Envoys (src/quota/). */
export class QuotaEnvoysError extends MeshlimitError {
  readonly code = 'ML_ERR_QUOTA_ENVOYS' as const;
}

export function isMeshlimitError(err: unknown): err is MeshlimitError {
  return err instanceof MeshlimitError;
}
