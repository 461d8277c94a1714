import { createRateLimitGuard, type RateLimitGuard } from '../rate-limit-guard.js';
import { buildUserService } from './app.js';
import { DEMO_AUDIENCE, DEMO_ISSUER } from './data.js';
import { createTokenIssuer, type TokenIssuer } from './token-issuer.js';

/** A running sample user service (used by `main.ts`, the demo and the end-to-end tests). */
export interface RunningUserService {
  readonly url: string;
  readonly port: number;
  readonly jwksUrl: string;
  readonly issuer: TokenIssuer;
  /** Starts asking meshlimit (gRPC `host:port`) for app-level limits, replacing any earlier address. */
  useMeshlimit(address: string): void;
  close(): Promise<void>;
}

export interface StartUserServiceOptions {
  readonly host?: string | undefined;
  /** 0 picks a free port. */
  readonly port?: number | undefined;
  /** meshlimit's gRPC `host:port` for app-level limits; absent = no app-level limits. */
  readonly meshlimitGrpc?: string | undefined;
  /** Descriptor config domain of the app-level limits (default `users-app`). */
  readonly limitDomain?: string | undefined;
  readonly tokenTtlSeconds?: number | undefined;
  /** PKCS#8 PEM file with the ES256 signing key (a mounted Secret); absent = a key generated in memory. */
  readonly signingKeyFile?: string | undefined;
}

export async function startUserService(opts: StartUserServiceOptions = {}): Promise<RunningUserService> {
  const issuer = await createTokenIssuer({
    issuer: DEMO_ISSUER,
    audience: DEMO_AUDIENCE,
    ttlSeconds: opts.tokenTtlSeconds,
    signingKeyFile: opts.signingKeyFile,
  });
  const domain = opts.limitDomain ?? 'users-app';
  let guard: RateLimitGuard | undefined =
    opts.meshlimitGrpc === undefined ? undefined : createRateLimitGuard({ address: opts.meshlimitGrpc, domain });
  const app = buildUserService({ issuer, guard: () => guard });
  const host = opts.host ?? '127.0.0.1';
  await app.listen({ host, port: opts.port ?? 3000 });
  const port = (app.server.address() as { port: number }).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return {
    url,
    port,
    jwksUrl: `${url}/.well-known/jwks.json`,
    issuer,
    useMeshlimit(address) {
      guard?.close();
      guard = createRateLimitGuard({ address, domain });
    },
    async close() {
      guard?.close();
      await app.close();
    },
  };
}
