/**
 * The sample user service on its own: `tsx src/sample/user-service/main.ts`.
 *
 * Environment: `USER_SERVICE_HOST` (127.0.0.1), `USER_SERVICE_PORT` (3000), `MESHLIMIT_GRPC`
 * (e.g. `127.0.0.1:8081`; unset = no app-level limits), `USER_SERVICE_LIMIT_DOMAIN` (users-app),
 * `USER_SERVICE_SIGNING_KEY_FILE` (PKCS#8 PEM ES256 private key, e.g. a mounted Secret; unset = a
 * key generated in memory at start-up).
 */
import { startUserService } from './server.js';

const svc = await startUserService({
  host: process.env['USER_SERVICE_HOST'] || '127.0.0.1',
  port: Number(process.env['USER_SERVICE_PORT'] || 3000),
  meshlimitGrpc: process.env['MESHLIMIT_GRPC'] || undefined,
  limitDomain: process.env['USER_SERVICE_LIMIT_DOMAIN'] || undefined,
  signingKeyFile: process.env['USER_SERVICE_SIGNING_KEY_FILE'] || undefined,
});
process.stdout.write(`sample user service on ${svc.url} (JWKS: ${svc.jwksUrl})\n`);
const stop = (): void => {
  void svc.close().then(() => process.exit(0));
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
