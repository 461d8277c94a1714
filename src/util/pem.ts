import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';

/**
 * Checks of PEM material, shared by the settings that name TLS files (checked once at start-up,
 * src/settings) and the gRPC server's certificate reloads (checked before each swap,
 * src/server/grpc/tls.ts). Each returns what is wrong, in words that follow the file's path, or
 * undefined; none quotes a private key.
 */

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** What is wrong with a PEM certificate bundle: none in it, or one that does not parse. */
export function certificatesProblem(text: string): string | undefined {
  const blocks = text.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) return 'holds no PEM certificate (-----BEGIN CERTIFICATE-----)';
  for (let i = 0; i < blocks.length; i++) {
    try {
      new X509Certificate(blocks[i]!);
    } catch (err) {
      return `holds a certificate that does not parse (#${i + 1}): ${err instanceof Error ? err.message : String(err)}`;
    }
  }
  return undefined;
}

/** What is wrong with a PEM private key. */
export function keyProblem(text: string): string | undefined {
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) return 'holds no PEM private key (-----BEGIN ... PRIVATE KEY-----)';
  try {
    createPrivateKey({ key: text, format: 'pem' });
    return undefined;
  } catch (err) {
    return `holds a private key that cannot be used (an encrypted key is not supported): ${err instanceof Error ? err.message : String(err)}`;
  }
}

/** Why `key` cannot be used with `cert` (OpenSSL's own check, as a handshake would make it). */
export function pairProblem(cert: string, key: string): string | undefined {
  try {
    createSecureContext({ cert, key });
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** The first certificate of a PEM bundle: its serial (hex) and SHA-256 fingerprint, for logs. */
export function leafIdentity(text: string): { readonly serial: string; readonly fingerprint256: string } | undefined {
  const first = text.match(PEM_CERTIFICATE)?.[0];
  if (first === undefined) return undefined;
  try {
    const x = new X509Certificate(first);
    return { serial: x.serialNumber, fingerprint256: x.fingerprint256 };
  } catch {
    return undefined;
  }
}

/** A short digest of some bytes, to tell contents apart in logs without printing them. */
export function digest(...parts: readonly (Buffer | string)[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex').slice(0, 16);
}
