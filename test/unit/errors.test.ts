import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  BackendError,
  BackendUnavailableError,
  CancelledError,
  ConfigError,
  ConfigErrors,
  DeadlineExceededError,
  ERROR_CODES,
  GrpcCode,
  InternalError,
  InvalidRequestError,
  type MeshlimitError,
  OverloadedError,
  SettingsError,
  isMeshlimitError,
  NoConfigError,
  UnauthorizedError,
  AdminDisabledError,
  NotFoundError,
  QuotaEnvoysError,
  RlqsBoundError,
} from '../../src/errors.js';

/** Every error class has a stable code, the right transient flag and status mapping, and a README entry. */
const instances: [MeshlimitError, keyof typeof ERROR_CODES, boolean, number, number][] = [
  [new ConfigError('a.yaml', 'descriptors[0].key', 'missing'), 'ML_ERR_CONFIG', false, GrpcCode.FAILED_PRECONDITION, 500],
  [new ConfigErrors([new ConfigError('a.yaml', '', 'x')]), 'ML_ERR_CONFIG', false, GrpcCode.FAILED_PRECONDITION, 500],
  [new SettingsError('PORT', 'bad'), 'ML_ERR_SETTINGS', false, GrpcCode.FAILED_PRECONDITION, 500],
  [new InvalidRequestError('bad'), 'ML_ERR_INVALID_REQUEST', false, GrpcCode.INVALID_ARGUMENT, 400],
  [new BackendUnavailableError('down'), 'ML_ERR_BACKEND_UNAVAILABLE', true, GrpcCode.UNAVAILABLE, 503],
  [new OverloadedError('busy'), 'ML_ERR_OVERLOADED', true, GrpcCode.UNAVAILABLE, 503],
  [new BackendError('script'), 'ML_ERR_BACKEND', false, GrpcCode.INTERNAL, 500],
  [new InternalError('bug'), 'ML_ERR_INTERNAL', false, GrpcCode.INTERNAL, 500],
  [new DeadlineExceededError('late'), 'ML_ERR_DEADLINE_EXCEEDED', true, GrpcCode.DEADLINE_EXCEEDED, 504],
  [new NoConfigError('waiting'), 'ML_ERR_NO_CONFIG', true, GrpcCode.UNAVAILABLE, 503],
  [new CancelledError('gone'), 'ML_ERR_CANCELLED', false, GrpcCode.CANCELLED, 499],
  [new UnauthorizedError('who'), 'ML_ERR_UNAUTHORIZED', false, GrpcCode.UNAUTHENTICATED, 401],
  [new AdminDisabledError('off'), 'ML_ERR_ADMIN_DISABLED', false, GrpcCode.PERMISSION_DENIED, 403],
  [new NotFoundError('none'), 'ML_ERR_NOT_FOUND', false, GrpcCode.NOT_FOUND, 404],
  [new RlqsBoundError('too many'), 'ML_ERR_RLQS_BOUND', false, GrpcCode.RESOURCE_EXHAUSTED, 429],
  [new QuotaEnvoysError('full'), 'ML_ERR_QUOTA_ENVOYS', false, GrpcCode.RESOURCE_EXHAUSTED, 429],
];

describe('error codes', () => {
  it.each(instances)('%s has its code, transient flag and statuses', (err, code, transient, grpc, http) => {
    expect(err.code).toBe(code);
    expect(err.transient).toBe(transient);
    expect(err.grpcStatus).toBe(grpc);
    expect(err.httpStatus).toBe(http);
    expect(isMeshlimitError(err)).toBe(true);
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe(err.constructor.name);
  });

  it('covers every registered code with a class', () => {
    expect(new Set(instances.map(([, c]) => c))).toEqual(new Set(Object.keys(ERROR_CODES)));
  });

  it('codes are unique and follow the ML_ERR_ pattern', () => {
    const codes = Object.keys(ERROR_CODES);
    expect(new Set(codes).size).toBe(codes.length);
    for (const c of codes) expect(c).toMatch(/^ML_ERR_[A-Z_]+$/);
  });

  it('every code is documented in the README', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    for (const c of Object.keys(ERROR_CODES)) expect(readme, `README.md documents ${c}`).toContain(`\`${c}\``);
  });

  it('a config error message starts with the file and names the field', () => {
    expect(new ConfigError('/etc/meshlimit/a.yaml', 'descriptors[2].rate_limit.unit', "invalid rate limit unit 'x'").message).toBe(
      "/etc/meshlimit/a.yaml: descriptors[2].rate_limit.unit: invalid rate limit unit 'x'",
    );
  });

  it('a plain Error is not a MeshlimitError', () => {
    expect(isMeshlimitError(new Error('x'))).toBe(false);
  });
});
