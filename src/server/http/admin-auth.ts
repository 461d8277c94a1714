import { createHash, timingSafeEqual } from 'node:crypto';
import { AdminDisabledError, UnauthorizedError } from '../../errors.js';

/**
 * Who may call the admin endpoints (ADMIN_TOKEN / ADMIN_TOKEN_FILE, ADMIN_READ_REQUIRES_TOKEN).
 *
 * - Mutations (counter reset, tenant overrides) need `Authorization: Bearer <token>`. With no token
 *   configured they are refused with 403 `ML_ERR_ADMIN_DISABLED` naming the settings: an admin
 *   port reachable from the mesh must not let anyone unblock a tenant or raise its limit.
 * - Reads (`/rlconfig`, counters and overrides lists, the console) are open unless
 *   ADMIN_READ_REQUIRES_TOKEN; then they need the token as mutations do.
 * - A missing or wrong token is 401 `ML_ERR_UNAUTHORIZED` (with `WWW-Authenticate: Bearer`).
 *
 * The comparison is constant-time over SHA-256 digests of both sides, so neither the token's
 * content nor its length leaks through timing.
 */
export interface AdminAuthOptions {
  readonly token: string | undefined;
  readonly readRequiresToken: boolean;
}

export type AdminAccess = 'read' | 'write';

/** Who did it, for the audit list: the token's fingerprint (never the token) and the peer address. */
export interface AdminCaller {
  readonly who: string;
}

export interface AdminAuth {
  /**
   * Throws UnauthorizedError / AdminDisabledError when `authorization` (the header's value) does
   * not allow `access`; returns the caller otherwise.
   */
  check(access: AdminAccess, authorization: string | undefined, remoteAddress: string | undefined): AdminCaller;
  /** True when the token is configured (mutations possible). */
  readonly mutationsEnabled: boolean;
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

export function createAdminAuth(options: AdminAuthOptions): AdminAuth {
  const expected = options.token === undefined ? undefined : digest(options.token);
  // A short, stable, non-reversible name for the token in audit entries and logs.
  const fingerprint = expected === undefined ? undefined : `token:${expected.subarray(0, 4).toString('hex')}`;
  return {
    mutationsEnabled: expected !== undefined,
    check(access, authorization, remoteAddress) {
      const from = remoteAddress ?? 'unknown';
      if (expected === undefined) {
        if (access === 'read' && !options.readRequiresToken) return { who: `anonymous@${from}` };
        throw new AdminDisabledError(
          'admin mutations are disabled: no admin token is configured; set ADMIN_TOKEN or ADMIN_TOKEN_FILE and send it as "Authorization: Bearer <token>"',
        );
      }
      const given = bearer(authorization);
      if (given === undefined) {
        if (access === 'read' && !options.readRequiresToken) return { who: `anonymous@${from}` };
        throw new UnauthorizedError(
          access === 'write'
            ? 'this admin endpoint changes state and needs the admin token: send "Authorization: Bearer <ADMIN_TOKEN>"'
            : 'ADMIN_READ_REQUIRES_TOKEN is on: send "Authorization: Bearer <ADMIN_TOKEN>"',
        );
      }
      if (!timingSafeEqual(digest(given), expected))
        throw new UnauthorizedError('the admin token sent is not the configured one (ADMIN_TOKEN / ADMIN_TOKEN_FILE)');
      return { who: `${fingerprint}@${from}` };
    },
  };
}

/** The token of an `Authorization: Bearer <token>` header value; undefined when absent or another scheme. */
function bearer(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const m = /^\s*Bearer\s+(\S+)\s*$/i.exec(header);
  return m?.[1];
}
