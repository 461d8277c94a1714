import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * A throwaway PKI for TLS tests: a CA, a server certificate and a client certificate (P-256,
 * valid for two days), written to a temporary directory that `remove()` deletes. Nothing is
 * committed. Made with /usr/bin/openssl when it is there, else with Node's crypto and a small
 * DER writer (Node can sign but has no API to build a certificate).
 */
export interface TestPki {
  readonly dir: string;
  /** How the certificates were made. */
  readonly via: 'openssl' | 'node';
  readonly files: {
    readonly caCert: string;
    readonly serverCert: string;
    readonly serverKey: string;
    readonly clientCert: string;
    readonly clientKey: string;
  };
  read(file: keyof TestPki['files']): Buffer;
  remove(): void;
}

export interface PkiOptions {
  /** DNS names in the server certificate's subjectAltName (and nothing else: no IP address). */
  readonly serverNames: readonly string[];
  /** Force the Node fallback (to test it where openssl exists). */
  readonly via?: 'openssl' | 'node';
}

const OPENSSL = '/usr/bin/openssl';

export function makeTestPki(options: PkiOptions): TestPki {
  const dir = mkdtempSync(path.join(tmpdir(), 'meshlimit-pki-'));
  const via = options.via ?? (existsSync(OPENSSL) ? 'openssl' : 'node');
  const files = {
    caCert: path.join(dir, 'ca.crt'),
    serverCert: path.join(dir, 'server.crt'),
    serverKey: path.join(dir, 'server.key'),
    clientCert: path.join(dir, 'client.crt'),
    clientKey: path.join(dir, 'client.key'),
  };
  if (via === 'openssl') withOpenssl(dir, options.serverNames);
  else withNode(dir, options.serverNames);
  return {
    dir,
    via,
    files,
    read: (file) => readFileSync(files[file]),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

function withOpenssl(dir: string, serverNames: readonly string[]): void {
  const run = (...args: string[]): void => {
    execFileSync(OPENSSL, args, { cwd: dir, stdio: 'pipe' });
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=meshlimit test CA');
  const leaf = (name: string, cn: string, ext: string): void => {
    writeFileSync(path.join(dir, `${name}.ext`), ext);
    run('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    const serial = `0x${randomBytes(8).toString('hex')}`;
    run(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-set_serial',
      serial,
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
      '-out',
      `${name}.crt`,
    );
  };
  const san = serverNames.map((n) => `DNS:${n}`).join(',');
  leaf('server', serverNames[0] ?? 'server', `basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=${san}\n`);
  leaf('client', 'meshlimit test client', 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n');
}

// --- The Node fallback: X.509 v3 certificates written as DER by hand (RFC 5280). ---

const der = (tag: number, content: Buffer): Buffer => Buffer.concat([Buffer.from([tag]), derLength(content.length), content]);
function derLength(n: number): Buffer {
  if (n < 128) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
const seq = (...items: Buffer[]): Buffer => der(0x30, Buffer.concat(items));
const set = (...items: Buffer[]): Buffer => der(0x31, Buffer.concat(items));
const integer = (b: Buffer): Buffer => der(0x02, b[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b);
const bool = (v: boolean): Buffer => der(0x01, Buffer.from([v ? 0xff : 0]));
const octets = (b: Buffer): Buffer => der(0x04, b);
const bits = (b: Buffer, unused = 0): Buffer => der(0x03, Buffer.concat([Buffer.from([unused]), b]));
const utcTime = (d: Date): Buffer => der(0x17, Buffer.from(`${d.toISOString().replace(/[-:T]/g, '').slice(2, 14)}Z`));
function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number) as [number, number, ...number[]];
  const out = [40 * a + b];
  for (const part of rest) {
    const enc: number[] = [];
    for (let v = part; ; v = Math.floor(v / 128)) {
      enc.unshift((v & 0x7f) | (enc.length > 0 ? 0x80 : 0));
      if (v < 128) break;
    }
    out.push(...enc);
  }
  return der(0x06, Buffer.from(out));
}
const name = (cn: string): Buffer => seq(set(seq(oid('2.5.4.3'), der(0x0c, Buffer.from(cn)))));
const extension = (id: string, critical: boolean, value: Buffer): Buffer => seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));
const ECDSA_WITH_SHA256 = seq(oid('1.2.840.10045.4.3.2'));

interface Issued {
  readonly certDer: Buffer;
  readonly key: KeyObject;
}

function issue(subject: string, extensions: Buffer[], issuer: { name: string; key: KeyObject } | undefined): Issued {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const now = Date.now();
  const tbs = seq(
    der(0xa0, integer(Buffer.from([2]))),
    integer(randomBytes(8)),
    ECDSA_WITH_SHA256,
    name(issuer?.name ?? subject),
    seq(utcTime(new Date(now - 3_600_000)), utcTime(new Date(now + 2 * 86_400_000))),
    name(subject),
    publicKey.export({ type: 'spki', format: 'der' }),
    der(0xa3, seq(...extensions)),
  );
  const signature = sign('sha256', tbs, issuer?.key ?? privateKey);
  return { certDer: seq(tbs, ECDSA_WITH_SHA256, bits(signature)), key: privateKey };
}

const pem = (label: string, body: Buffer): string =>
  `-----BEGIN ${label}-----\n${body
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n')}\n-----END ${label}-----\n`;

function withNode(dir: string, serverNames: readonly string[]): void {
  const basic = (ca: boolean): Buffer => extension('2.5.29.19', true, ca ? seq(bool(true)) : seq());
  // keyUsage: keyCertSign + cRLSign (bits 5, 6) for the CA, digitalSignature (bit 0) for leaves.
  const keyUsage = (ca: boolean): Buffer => extension('2.5.29.15', true, ca ? bits(Buffer.from([0x06]), 1) : bits(Buffer.from([0x80]), 7));
  const extKeyUsage = (purpose: string): Buffer => extension('2.5.29.37', false, seq(oid(purpose)));
  const caName = 'meshlimit test CA';
  const ca = issue(caName, [basic(true), keyUsage(true)], undefined);
  const issuer = { name: caName, key: ca.key };
  const sans = seq(...serverNames.map((n) => der(0x82, Buffer.from(n))));
  const server = issue(
    serverNames[0] ?? 'server',
    [basic(false), keyUsage(false), extKeyUsage('1.3.6.1.5.5.7.3.1'), extension('2.5.29.17', false, sans)],
    issuer,
  );
  const client = issue('meshlimit test client', [basic(false), keyUsage(false), extKeyUsage('1.3.6.1.5.5.7.3.2')], issuer);
  const keyPem = (k: KeyObject): string => k.export({ type: 'pkcs8', format: 'pem' }) as string;
  writeFileSync(path.join(dir, 'ca.crt'), pem('CERTIFICATE', ca.certDer));
  writeFileSync(path.join(dir, 'server.crt'), pem('CERTIFICATE', server.certDer));
  writeFileSync(path.join(dir, 'server.key'), keyPem(server.key));
  writeFileSync(path.join(dir, 'client.crt'), pem('CERTIFICATE', client.certDer));
  writeFileSync(path.join(dir, 'client.key'), keyPem(client.key));
}
