import { readFileSync } from 'node:fs';
import { SettingsError } from '../errors.js';
import { loadAdminTls, type AdminTls, type AdminTlsInputs } from './admin-tls.js';
import { integer, InvalidValue, parseBool, setting, text } from './spec.js';

/**
 * The admin API's settings (ADMIN_*, DATA_DIR, OVERRIDES_*), rows of the settings table
 * (./table.ts spreads them in after PORT). What they guard: src/server/http/admin/ and the
 * README's "Admin API and console".
 */

/** Shortest admin token accepted: a guessable token on a port that may be reachable is no lock. */
export const MIN_ADMIN_TOKEN_CHARS = 16;
/** Longest admin token accepted (it travels in one header). */
export const MAX_ADMIN_TOKEN_CHARS = 4096;

function adminToken(raw: string): string {
  const v = raw.trim();
  if (v.length < MIN_ADMIN_TOKEN_CHARS || v.length > MAX_ADMIN_TOKEN_CHARS)
    throw new InvalidValue(
      `must be ${MIN_ADMIN_TOKEN_CHARS} to ${MAX_ADMIN_TOKEN_CHARS} characters (e.g. \`openssl rand -hex 32\`), got ${v.length}`,
    );
  if (/[^\x21-\x7e]/.test(v))
    throw new InvalidValue('must be printable ASCII without spaces (it is sent as `Authorization: Bearer <token>`)');
  return v;
}

export const ADMIN_DEFS = {
  ADMIN_TOKEN: setting({
    group: 'http',
    default: undefined,
    parse: adminToken,
    secret: true,
    description:
      'The admin token: mutating admin endpoints (counter reset, tenant overrides) require `Authorization: Bearer <token>`, compared in constant time. Unset (and no `ADMIN_TOKEN_FILE`): they answer 403 `ML_ERR_ADMIN_DISABLED`. 16 to 4096 printable characters; prefer `ADMIN_TOKEN_FILE` (a Kubernetes Secret).',
  }),
  ADMIN_TOKEN_FILE: setting({
    group: 'http',
    default: undefined,
    parse: text,
    description:
      'A file holding the admin token (read once at start, surrounding whitespace trimmed); instead of `ADMIN_TOKEN`, not with it.',
  }),
  ADMIN_READ_REQUIRES_TOKEN: setting({
    group: 'http',
    default: 'false',
    parse: parseBool,
    description:
      'Require the admin token on the read-only admin endpoints too (`/rlconfig`, the console `/`, `GET /v1/counters`, `GET /v1/overrides`, `/v1/console/*`). `/json`, `/healthcheck` and `/metrics` stay open (Envoy, probes and Prometheus call them).',
  }),
  DATA_DIR: setting({
    group: 'http',
    default: undefined,
    parse: text,
    description:
      'With `BACKEND_TYPE=memory`: a directory where tenant overrides and their audit list are kept (`overrides.json`), so they survive a restart. Unset: kept in memory only. With Redis they live in Redis.',
  }),
  OVERRIDES_POLL_MS: setting({
    group: 'http',
    default: '250',
    parse: integer(50, 1000),
    description:
      'How often each replica checks Redis for changed tenant overrides (one `GET` of a version key); a change is applied within this plus one round trip. At most 1000, so a change is applied within a second.',
  }),
  OVERRIDES_MAX: setting({
    group: 'http',
    default: '10000',
    parse: integer(1, 1_000_000),
    description: 'Most tenant overrides held at once; setting one more is refused with 400 naming this setting.',
  }),
  OVERRIDES_AUDIT_MAX: setting({
    group: 'http',
    default: '1000',
    parse: integer(1, 100_000),
    description: 'Entries kept in the tenant overrides audit list (newest first; older ones are dropped). Every change is also logged.',
  }),
};

/** The admin group of the settings. */
export interface AdminSettings {
  /** ADMIN_TOKEN or the contents of ADMIN_TOKEN_FILE; undefined: mutations refused. */
  readonly token: string | undefined;
  readonly readRequiresToken: boolean;
  readonly dataDir: string | undefined;
  readonly overridesPollMs: number;
  readonly overridesMax: number;
  readonly auditMax: number;
  /** ADMIN_TLS_*: HTTPS on the HTTP port; undefined: plaintext. */
  readonly tls: AdminTls | undefined;
}

interface AdminParsed extends AdminTlsInputs {
  readonly ADMIN_TOKEN: string | undefined;
  readonly ADMIN_TOKEN_FILE: string | undefined;
  readonly ADMIN_READ_REQUIRES_TOKEN: boolean;
  readonly DATA_DIR: string | undefined;
  readonly OVERRIDES_POLL_MS: number;
  readonly OVERRIDES_MAX: number;
  readonly OVERRIDES_AUDIT_MAX: number;
}

/** The admin group; a token file that cannot be read, or both token settings, is pushed onto `errors`. */
export function composeAdmin(p: AdminParsed, errors: SettingsError[]): AdminSettings {
  let token = p.ADMIN_TOKEN;
  if (p.ADMIN_TOKEN_FILE !== undefined) {
    if (token !== undefined) errors.push(new SettingsError('ADMIN_TOKEN_FILE', 'set ADMIN_TOKEN or ADMIN_TOKEN_FILE, not both'));
    else {
      try {
        token = adminToken(readFileSync(p.ADMIN_TOKEN_FILE, 'utf8'));
      } catch (err) {
        const why = err instanceof InvalidValue ? `its token ${err.message}` : `cannot be read: ${(err as Error).message}`;
        errors.push(new SettingsError('ADMIN_TOKEN_FILE', `${p.ADMIN_TOKEN_FILE} ${why}`));
      }
    }
  }
  if (p.ADMIN_READ_REQUIRES_TOKEN && token === undefined && p.ADMIN_TOKEN_FILE === undefined)
    errors.push(new SettingsError('ADMIN_READ_REQUIRES_TOKEN', 'is true but no token is set: set ADMIN_TOKEN or ADMIN_TOKEN_FILE too'));
  return {
    token,
    readRequiresToken: p.ADMIN_READ_REQUIRES_TOKEN,
    dataDir: p.DATA_DIR,
    overridesPollMs: p.OVERRIDES_POLL_MS,
    overridesMax: p.OVERRIDES_MAX,
    auditMax: p.OVERRIDES_AUDIT_MAX,
    tls: loadAdminTls(p, errors),
  };
}
