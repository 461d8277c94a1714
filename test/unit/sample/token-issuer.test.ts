import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createTokenIssuer } from '../../../src/sample/user-service/token-issuer.js';

/** The sample's signing key from a mounted Secret file: every replica signs and publishes the same key. */
const dir = mkdtempSync(path.join(tmpdir(), 'meshlimit-key-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('token issuer with USER_SERVICE_SIGNING_KEY_FILE', () => {
  it("two issuers loading one key file share kid and verify each other's tokens", async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const file = path.join(dir, 'signing-key.pem');
    writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const a = await createTokenIssuer({ issuer: 'i', audience: 'a', signingKeyFile: file });
    const b = await createTokenIssuer({ issuer: 'i', audience: 'a', signingKeyFile: file });
    expect(a.kid).toBe(b.kid);
    expect(a.jwks()).toEqual(b.jwks());
    expect(JSON.stringify(a.jwks())).not.toContain('"d"'); // only the public key is published
    const { token } = await a.issue({ sub: 'u1', companyId: 'acme' });
    expect((await b.verify(token))?.company_id).toBe('acme');
  });

  it('names the file (never the key) when it is missing or not an ES256 PKCS#8 key', async () => {
    await expect(createTokenIssuer({ issuer: 'i', audience: 'a', signingKeyFile: path.join(dir, 'nope.pem') })).rejects.toThrow(
      /nope\.pem: cannot be read \(ENOENT\)/,
    );
    const rsa = path.join(dir, 'rsa.pem');
    writeFileSync(rsa, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
    await expect(createTokenIssuer({ issuer: 'i', audience: 'a', signingKeyFile: rsa })).rejects.toThrow(
      /rsa\.pem: not a PKCS#8 PEM ES256 \(P-256\) private key/,
    );
  });
});
