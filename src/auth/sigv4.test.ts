import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { escapeUri, SigV4Verifier, type SignedRequest } from './sigv4.js';

// A node:crypto Sha256 in the shape @smithy/signature-v4 wants.
class Sha256 {
  private readonly hash;
  constructor(secret?: string | Uint8Array) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', secret);
  }
  update(data: string | Uint8Array): void {
    this.hash.update(data);
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
}

const accessKeyId = 'AKIDEXAMPLE';
const secretAccessKey = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
const credentials = new Map([[accessKeyId, secretAccessKey]]);
const nowMs = Date.UTC(2024, 4, 1, 12, 0, 0);

function signer(region = 'us-east-1', service = 'sqs', secret = secretAccessKey): SignatureV4 {
  return new SignatureV4({ credentials: { accessKeyId, secretAccessKey: secret }, region, service, sha256: Sha256 as any });
}

interface Unsigned {
  method: string;
  path: string;
  query?: Record<string, string>;
  headers: Record<string, string>;
  body: string;
}

function smithyRequest(request: Unsigned): any {
  return { method: request.method, protocol: 'http:', hostname: 'localhost', port: 9324, path: request.path, query: request.query ?? {}, headers: { host: 'localhost:9324', ...request.headers }, body: request.body };
}

/** What a server receives for a smithy request: path + escaped query, lower-case headers. */
function toWire(signed: any): SignedRequest {
  const query = Object.entries(signed.query as Record<string, string>).map(([key, value]) => `${escapeUri(key)}=${escapeUri(value)}`).join('&');
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(signed.headers as Record<string, string>)) headers[name.toLowerCase()] = value;
  return { method: signed.method, url: signed.path + (query.length > 0 ? `?${query}` : ''), headers, body: Buffer.from(signed.body ?? '') };
}

const jsonRequest: Unsigned = {
  method: 'POST',
  path: '/',
  headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'AmazonSQS.ListQueues' },
  body: '{"QueueNamePrefix":"a b"}',
};

describe('SigV4Verifier', () => {
  const verifier = new SigV4Verifier(credentials);

  test('accepts header-signed requests from @smithy/signature-v4, any region, odd paths and queries', async () => {
    for (const [region, request] of [
      ['us-east-1', jsonRequest],
      ['eu-central-1', { method: 'POST', path: '/000000000000/my-queue', query: { Action: 'SendMessage', 'X y': 'a+b/c*~' }, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'MessageBody=%F0%9F%98%80' }],
      ['ap-south-2', { method: 'GET', path: '/a%20b/./c', query: { Action: 'ListQueues' }, headers: {}, body: '' }],
    ] as [string, Unsigned][]) {
      const signed = await signer(region).sign(smithyRequest(request), { signingDate: new Date(nowMs) });
      const result = verifier.verify(toWire(signed), nowMs + 60_000);
      assert.deepEqual(result, { ok: true, accessKeyId, region });
    }
  });

  test('accepts presigned requests', async () => {
    const presigned = await signer().presign(smithyRequest({ method: 'GET', path: '/000000000000/q', query: { Action: 'ReceiveMessage' }, headers: {}, body: '' }), { signingDate: new Date(nowMs), expiresIn: 300 });
    assert.ok(presigned.query?.['X-Amz-Signature']);
    assert.equal(verifier.verify(toWire(presigned), nowMs + 299_000).ok, true);
    const expired = verifier.verify(toWire(presigned), nowMs + 301_000);
    assert.equal(expired.ok === false && expired.code, 'RequestExpired');
    const tampered = toWire(presigned);
    tampered.url = tampered.url.replace('ReceiveMessage', 'DeleteQueue');
    const result = verifier.verify(tampered, nowMs);
    assert.equal(result.ok === false && result.code, 'SignatureDoesNotMatch');
  });

  test('rejects: missing, unknown key, wrong secret, tampered body/header, skew, wrong service', async () => {
    const code = (request: SignedRequest, atMs = nowMs): string | undefined => {
      const result = verifier.verify(request, atMs);
      return result.ok ? undefined : result.code;
    };
    const unsigned = toWire(smithyRequest(jsonRequest));
    assert.equal(code(unsigned), 'MissingAuthenticationToken');

    const good = toWire(await signer().sign(smithyRequest(jsonRequest), { signingDate: new Date(nowMs) }));
    assert.equal(code(good), undefined);
    assert.equal(code({ ...good, body: Buffer.from('{"QueueNamePrefix":"a c"}') }), 'SignatureDoesNotMatch');
    assert.equal(code({ ...good, headers: { ...good.headers, 'x-amz-target': 'AmazonSQS.DeleteQueue' } }), 'SignatureDoesNotMatch');
    assert.equal(code({ ...good, method: 'PUT' }), 'SignatureDoesNotMatch');
    assert.equal(code(good, nowMs + 16 * 60_000), 'RequestExpired');
    assert.equal(code(good, nowMs - 16 * 60_000), 'RequestExpired');
    assert.equal(code(good, nowMs + 14 * 60_000), undefined);

    const wrongSecret = toWire(await signer('us-east-1', 'sqs', 'not-the-secret').sign(smithyRequest(jsonRequest), { signingDate: new Date(nowMs) }));
    assert.equal(code(wrongSecret), 'SignatureDoesNotMatch');
    const wrongService = toWire(await signer('us-east-1', 'sns').sign(smithyRequest(jsonRequest), { signingDate: new Date(nowMs) }));
    assert.equal(code(wrongService), 'SignatureDoesNotMatch');
    const unknownKey = { ...good, headers: { ...good.headers, authorization: String(good.headers['authorization']).replace(accessKeyId, 'AKIDOTHER') } };
    assert.equal(code(unknownKey), 'InvalidClientTokenId');
    for (const authorization of ['AWS4-HMAC-SHA256', 'Basic abc', 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/x, SignedHeaders=host, Signature=zz']) {
      assert.equal(code({ ...good, headers: { ...good.headers, authorization } }), 'SignatureDoesNotMatch');
    }
  });

  test('AWS SigV4 test suite vector get-vanilla (no x-amz-content-sha256 header)', () => {
    const suiteVerifier = new SigV4Verifier(credentials, { service: 'service' });
    const request: SignedRequest = {
      method: 'GET',
      url: '/',
      headers: {
        host: 'example.amazonaws.com',
        'x-amz-date': '20150830T123600Z',
        authorization:
          'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
      },
      body: Buffer.alloc(0),
    };
    assert.deepEqual(suiteVerifier.verify(request, Date.UTC(2015, 7, 30, 12, 36, 0)), { ok: true, accessKeyId, region: 'us-east-1' });
  });
});
