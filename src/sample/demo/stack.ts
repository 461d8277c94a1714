import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startService, type ServiceHandle } from '../../app.js';
import { createRlsClient, type RlsClient } from '../../client/rls-client.js';
import { loadSettings } from '../../settings/index.js';
import type { Logger } from '../../telemetry/logger.js';
import { createGateway, type Gateway } from '../gateway/gateway.js';
import { startUserService, type RunningUserService } from '../user-service/server.js';

/**
 * The whole local picture in one process: the sample user service, meshlimit (in-process, as
 * `npm start` wires it) and the gateway stand-in in front of the user service. Used by
 * `npm run demo` and the end-to-end tests, so both exercise the same wiring.
 *
 * Start order (each needs the previous one's address): user service (its JWKS URL goes into the
 * config), meshlimit (with that config), gateway (asks meshlimit, proxies to the user service),
 * then the user service is pointed at meshlimit for its app-level limits.
 */

/** The JWKS URL written in the committed demo config; replaced by the user service's real one. */
export const TEMPLATE_JWKS_URL = 'http://127.0.0.1:3000/.well-known/jwks.json';
/** The committed demo config directory. */
export const DEMO_CONFIG_DIR = fileURLToPath(new URL('./config/', import.meta.url));

export interface DemoStackOptions {
  /** Config files (name -> YAML) or a directory of them; {@link TEMPLATE_JWKS_URL} is replaced. Default: the demo config. */
  readonly config?: { readonly files: Readonly<Record<string, string>> } | { readonly dir: string };
  /** meshlimit settings (environment names), e.g. BACKEND_TYPE, REDIS_URL, PORT, GRPC_PORT. */
  readonly meshlimitEnv?: Readonly<Record<string, string>>;
  readonly host?: string;
  /** 0 (default) picks free ports. */
  readonly userServicePort?: number;
  readonly gatewayPort?: number;
  /** Gateway: read the client address from this header (demo only). Default `x-forwarded-for`. */
  readonly clientAddressHeader?: string;
  readonly logger?: Logger;
  /** Counter clock override (tests). */
  readonly now?: () => number | undefined;
}

export interface DemoStack {
  readonly userService: RunningUserService;
  readonly meshlimit: ServiceHandle;
  readonly gatewayUrl: string;
  readonly meshlimitHttpUrl: string;
  readonly grpcAddress: string;
  readonly configDir: string;
  close(): Promise<void>;
}

export async function startDemoStack(opts: DemoStackOptions = {}): Promise<DemoStack> {
  const host = opts.host ?? '127.0.0.1';
  const userService = await startUserService({ host, port: opts.userServicePort ?? 0 });
  const configDir = mkdtempSync(path.join(tmpdir(), 'meshlimit-demo-'));
  let meshlimit: ServiceHandle | undefined;
  let rls: RlsClient | undefined;
  let gateway: Gateway | undefined;
  try {
    const cfg = opts.config ?? { dir: DEMO_CONFIG_DIR };
    const files =
      'files' in cfg
        ? Object.entries(cfg.files)
        : readdirSync(cfg.dir)
            .filter((f) => /\.ya?ml$/.test(f))
            .map((f) => [f, readFileSync(path.join(cfg.dir, f), 'utf8')] as const);
    for (const [name, text] of files) writeFileSync(path.join(configDir, name), text.split(TEMPLATE_JWKS_URL).join(userService.jwksUrl));

    const settings = loadSettings({
      PORT: '0',
      GRPC_PORT: '0',
      HOST: host,
      GRPC_HOST: host,
      LOG_LEVEL: 'warn',
      LIMIT_RESPONSE_HEADERS_ENABLED: 'true',
      ...opts.meshlimitEnv,
      CONFIG_DIR: configDir,
    });
    meshlimit = await startService(settings, { ...(opts.logger ? { logger: opts.logger } : {}), ...(opts.now ? { now: opts.now } : {}) });
    const grpcAddress = `${host}:${meshlimit.grpcPort}`;
    rls = createRlsClient(grpcAddress);
    gateway = createGateway({
      upstream: userService.url,
      rls,
      domain: 'edge',
      clientAddressHeader: opts.clientAddressHeader ?? 'x-forwarded-for',
    });
    const gatewayPort = await gateway.listen(host, opts.gatewayPort ?? 0);
    userService.useMeshlimit(grpcAddress);
    const m = meshlimit;
    const g = gateway;
    const client = rls;
    return {
      userService,
      meshlimit: m,
      gatewayUrl: `http://${host}:${gatewayPort}`,
      meshlimitHttpUrl: `http://${host}:${m.httpPort}`,
      grpcAddress,
      configDir,
      async close() {
        await g.close();
        client.close();
        await userService.close();
        await m.close();
        rmSync(configDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await gateway?.close();
    rls?.close();
    await meshlimit?.close();
    await userService.close();
    rmSync(configDir, { recursive: true, force: true });
    throw err;
  }
}
