/**
 * A throwaway PKI for TLS tests, made with `openssl` in a fresh temp directory per call (nothing
 * generated is ever committed): a CA, a server certificate for the loopback test servers (SAN
 * `IP:127.0.0.1`, `DNS:localhost`), a client certificate, certificates signed by the same CA for
 * one name only (`redis.invalid`, `localhost`), and a second, unrelated CA with a client
 * certificate of its own. EC P-256
 * keys, valid for two days.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RedisServerTls } from './redis-process.js';

/** One certificate and its key, as file paths. */
export interface CertFiles {
  readonly cert: string;
  readonly key: string;
}

export interface TestPki {
  readonly dir: string;
  /** The CA that signed `server`, `client` and `wrongName`. */
  readonly ca: string;
  /** For the test servers: SAN IP:127.0.0.1 and DNS:localhost; usable as server and client (Redis's own cluster bus and replication links present it). */
  readonly server: CertFiles;
  /** A client certificate (CN meshlimit-test-client). */
  readonly client: CertFiles;
  /** Signed by `ca` for `DNS:redis.invalid` only: its chain verifies, its name never matches a test host. */
  readonly wrongName: CertFiles;
  /** Signed by `ca` for `DNS:localhost` only: verifies for a server dialled by that name, never by its address. */
  readonly localhostOnly: CertFiles;
  /** Another CA, which signed none of the above. */
  readonly otherCa: string;
  /** A client certificate signed by `otherCa`. */
  readonly otherClient: CertFiles;
  /** The TLS of a test server (startRedis / startRedisCluster `tls`): `server`'s certificate, `ca`, and `client` for the harness. */
  serverTls(authClients?: RedisServerTls['authClients']): RedisServerTls;
  /**
   * Signs one more certificate with `ca` (a new key and serial each call): `extensions` are
   * openssl `-extfile` lines, e.g. `subjectAltName=DNS:rls.test` (for a rotation, or a client SAN).
   */
  issue(name: string, extensions: string): CertFiles;
  /** Deletes the directory. Idempotent. */
  remove(): void;
}

function openssl(args: readonly string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000 });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(`openssl ${args.join(' ')} failed: ${err instanceof Error ? err.message : String(err)}\n${stderr}`);
  }
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'] as const;

function makeCa(dir: string, name: string): void {
  openssl(
    [
      'req',
      '-x509',
      ...EC,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.crt`,
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
}

function makeLeaf(dir: string, name: string, ca: string, extensions: string): CertFiles {
  writeFileSync(join(dir, `${name}.ext`), `basicConstraints=CA:FALSE\n${extensions}\n`);
  openssl(['req', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`], dir);
  openssl(
    [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${ca}.crt`,
      '-CAkey',
      `${ca}.key`,
      '-CAcreateserial',
      '-out',
      `${name}.crt`,
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
    ],
    dir,
  );
  return { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
}

/** Generates the PKI in a new temp directory (about a second of openssl runs). */
export function createTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'meshlimit-pki-'));
  try {
    makeCa(dir, 'meshlimit-test-ca');
    makeCa(dir, 'meshlimit-other-ca');
    const both = 'extendedKeyUsage=serverAuth,clientAuth';
    const server = makeLeaf(dir, 'server', 'meshlimit-test-ca', `subjectAltName=IP:127.0.0.1,DNS:localhost\n${both}`);
    const client = makeLeaf(dir, 'meshlimit-test-client', 'meshlimit-test-ca', 'extendedKeyUsage=clientAuth');
    const wrongName = makeLeaf(dir, 'wrong-name', 'meshlimit-test-ca', `subjectAltName=DNS:redis.invalid\n${both}`);
    const localhostOnly = makeLeaf(dir, 'localhost-only', 'meshlimit-test-ca', `subjectAltName=DNS:localhost\n${both}`);
    const otherClient = makeLeaf(dir, 'other-client', 'meshlimit-other-ca', 'extendedKeyUsage=clientAuth');
    const ca = join(dir, 'meshlimit-test-ca.crt');
    return {
      dir,
      ca,
      server,
      client,
      wrongName,
      localhostOnly,
      otherCa: join(dir, 'meshlimit-other-ca.crt'),
      otherClient,
      serverTls: (authClients) => ({
        cert: server.cert,
        key: server.key,
        ca,
        ...(authClients === undefined ? {} : { authClients }),
        clientCert: client.cert,
        clientKey: client.key,
      }),
      issue: (name, extensions) => makeLeaf(dir, name, 'meshlimit-test-ca', extensions),
      remove: () => rmSync(dir, { recursive: true, force: true }),
    };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
