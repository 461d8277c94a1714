import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootService, type BootedService } from '../support/service.js';

/**
 * What broke: distinct descriptor values shared one counter. Over gRPC the codec decoded invalid
 * UTF-8 to U+FFFD, so the bytes `\xff`, `\xfe` and a real U+FFFD (EF BF BD) were one value; over
 * `/json`, the lone surrogates `\ud800` and `\udfff` are valid JSON but have no UTF-8 form, and
 * the counter digest (which hashes UTF-8) turned them into U+FFFD as well. Now both are rejected
 * with INVALID_ARGUMENT naming the field, as envoyproxy/ratelimit (Go protobuf) rejects invalid
 * UTF-8, and U+FFFD counts on its own counter.
 */
const CONFIG = `
domain: utf8
descriptors:
  - key: k
    rate_limit: { unit: minute, requests_per_unit: 1 }
  - key: j
    rate_limit: { unit: minute, requests_per_unit: 1 }
`;
const PATH = '/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit';

let svc: BootedService;
beforeAll(async () => {
  svc = await bootService({ files: { 'utf8.yaml': CONFIG } });
});
afterAll(async () => {
  await svc?.close();
});

const lfield = (no: number, body: Buffer): Buffer => Buffer.concat([Buffer.from([(no << 3) | 2, body.length]), body]);
/** A RateLimitRequest for `domain` with one descriptor of one entry, every string given as bytes. */
const request = (domain: Buffer, key: Buffer, value: Buffer): Buffer =>
  Buffer.concat([lfield(1, domain), lfield(2, lfield(1, Buffer.concat([lfield(1, key), lfield(2, value)])))]);

interface RawResult {
  code: number;
  details: string;
  errorCode: string | undefined;
}

function rawCall(body: Buffer): Promise<RawResult> {
  const client = new grpc.Client(`127.0.0.1:${svc.handle.grpcPort}`, grpc.credentials.createInsecure());
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      PATH,
      (b: Buffer) => b,
      (b: Buffer) => b,
      body,
      { deadline: Date.now() + 5000 },
      (err) => {
        client.close();
        resolve({
          code: err ? err.code : grpc.status.OK,
          details: err?.details ?? '',
          errorCode: err?.metadata?.get('meshlimit-error-code')[0]?.toString(),
        });
      },
    );
  });
}

const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');

describe('gRPC: invalid UTF-8 is rejected, U+FFFD counts on its own', () => {
  it('\\xff and \\xfe in a value are INVALID_ARGUMENT naming the field', async () => {
    for (const b of [0xff, 0xfe]) {
      expect(await rawCall(request(utf8('utf8'), utf8('k'), Buffer.from([b])))).toEqual({
        code: grpc.status.INVALID_ARGUMENT,
        details: 'descriptors[0].entries[0].value is not valid UTF-8',
        errorCode: 'ML_ERR_INVALID_REQUEST',
      });
    }
  });

  it('so does invalid UTF-8 in the domain or an entry key', async () => {
    expect(await rawCall(request(Buffer.from([0x75, 0xff]), utf8('k'), utf8('v')))).toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: 'domain is not valid UTF-8',
    });
    expect(await rawCall(request(utf8('utf8'), Buffer.from([0x6b, 0xc0, 0x80]), utf8('v')))).toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: 'descriptors[0].entries[0].key is not valid UTF-8',
    });
  });

  it('a real U+FFFD is a value of its own: nothing above was counted on it', async () => {
    const ask = () => svc.client.shouldRateLimit({ domain: 'utf8', descriptors: [{ entries: [{ key: 'k', value: '\ufffd' }] }] });
    const first = await ask();
    expect(first.overallCode).toBe('OK');
    expect(first.statuses[0]!.limitRemaining).toBe(0);
    expect((await ask()).overallCode).toBe('OVER_LIMIT');
    // The same bytes sent raw are the same value.
    expect((await rawCall(request(utf8('utf8'), utf8('k'), utf8('\ufffd')))).code).toBe(grpc.status.OK);
  });
});

describe('/json: lone surrogates are rejected, U+FFFD counts on its own', () => {
  const post = async (value: string) => {
    // JSON.stringify escapes a lone surrogate as \udXXX: valid JSON text.
    const body = JSON.stringify({ domain: 'utf8', descriptors: [{ entries: [{ key: 'j', value }] }] });
    const res = await fetch(`${svc.httpUrl}/json`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('\\ud800 and \\udfff are 400 naming the field', async () => {
    for (const value of ['\ud800', '\udfff', 'a\udc00']) {
      expect(await post(value)).toEqual({
        status: 400,
        body: {
          code: 'ML_ERR_INVALID_REQUEST',
          message: 'descriptors[0].entries[0].value: holds a lone surrogate, which is not valid UTF-8',
        },
      });
    }
  });

  it('a real U+FFFD is a value of its own', async () => {
    const first = await post('\ufffd');
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ overallCode: 'OK' });
    expect((first.body['statuses'] as Record<string, unknown>[])[0]!['limitRemaining']).toBeUndefined(); // 0: omitted by protojson
    expect((await post('\ufffd')).status).toBe(429);
  });
});
