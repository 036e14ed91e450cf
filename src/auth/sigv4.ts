// AWS Signature Version 4 verification, pure given the keys and the time.
//
// Accepts the two forms SDKs produce:
//   header form:    Authorization: AWS4-HMAC-SHA256 Credential=<key>/<yyyymmdd>/<region>/<service>/aws4_request,
//                   SignedHeaders=a;b, Signature=<hex>; time in X-Amz-Date (or Date)
//   presigned form: ?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=..&X-Amz-Date=..&X-Amz-Expires=..
//                   &X-Amz-SignedHeaders=..&X-Amz-Signature=..
// The canonical request is rebuilt exactly as @smithy/signature-v4 builds it (path segments
// normalised and escaped again, query keys and values escaped and sorted, header values
// trimmed with inner whitespace collapsed) and the signature compared in constant time.

import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export interface SignedRequest {
  method: string;
  /** Path and query string exactly as received. */
  url: string;
  /** Lower-case header names, as node:http gives them. */
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export type SigV4FailureCode = 'MissingAuthenticationToken' | 'InvalidClientTokenId' | 'SignatureDoesNotMatch' | 'RequestExpired';

export type SigV4Result =
  | { ok: true; accessKeyId: string; region: string }
  | { ok: false; code: SigV4FailureCode; message: string };

export interface SigV4Options {
  /** Service name the credential scope must name. */
  service: string;
  /** Largest allowed difference between the request's time and ours (SQS: 15 minutes). */
  clockSkewMsMax: number;
}

const algorithm = 'AWS4-HMAC-SHA256';
const presignedExpiresSecondsMax = 7 * 24 * 3600;
const signingKeyCacheEntriesMax = 256;
const defaultOptions: SigV4Options = { service: 'sqs', clockSkewMsMax: 15 * 60 * 1000 };

export function escapeUri(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (character) => '%' + character.charCodeAt(0).toString(16).toUpperCase());
}

function headerValue(headers: SignedRequest['headers'], name: string): string | undefined {
  const value = headers[name];
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.join(',') : value;
}

/** The path as @smithy/signature-v4 canonicalises it: dot segments and empty segments removed, then escaped. */
export function canonicalPath(rawPath: string): string {
  const segments: string[] = [];
  for (const segment of rawPath.split('/')) {
    if (segment.length === 0 || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(segment);
  }
  const normalized = (rawPath.startsWith('/') ? '/' : '') + segments.join('/') + (segments.length > 0 && rawPath.endsWith('/') ? '/' : '');
  return escapeUri(normalized).replace(/%2F/g, '/');
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** Query pairs decoded once (`+` kept literally), without X-Amz-Signature, re-escaped and sorted. */
export function canonicalQuery(rawQuery: string): string {
  const pairs: string[] = [];
  if (rawQuery.length > 0) {
    for (const part of rawQuery.split('&')) {
      if (part.length === 0) continue;
      const equals = part.indexOf('=');
      const key = safeDecode(equals === -1 ? part : part.slice(0, equals));
      if (key.toLowerCase() === 'x-amz-signature') continue;
      const value = equals === -1 ? '' : safeDecode(part.slice(equals + 1));
      pairs.push(escapeUri(key) + '=' + escapeUri(value));
    }
  }
  // Sort by key, then by value within a key (what smithy does for repeated keys).
  pairs.sort((a, b) => {
    const keyA = a.slice(0, a.indexOf('='));
    const keyB = b.slice(0, b.indexOf('='));
    if (keyA !== keyB) return keyA < keyB ? -1 : 1;
    return a < b ? -1 : a > b ? 1 : 0;
  });
  return pairs.join('&');
}

function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** yyyymmddThhmmssZ -> epoch ms, or NaN. */
export function parseAmzDate(text: string): number {
  const match = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (match === null) return Number.NaN;
  return Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3]), Number(match[4]), Number(match[5]), Number(match[6]));
}

function formatAmzDate(epochMs: number): string {
  return new Date(epochMs).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
}

interface SignatureParts {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  signedHeaders: string[];
  signature: string;
  amzDate: string;
  /** Presigned form only. */
  expiresSeconds?: number;
}

function fail(code: SigV4FailureCode, message: string): SigV4Result {
  return { ok: false, code, message };
}

export class SigV4Verifier {
  private readonly options: SigV4Options;
  /** `${secret}\n${date}\n${region}\n${service}` -> signing key; derived keys change once a day. */
  private readonly signingKeys = new Map<string, Buffer>();

  constructor(
    private readonly credentials: ReadonlyMap<string, string>,
    options: Partial<SigV4Options> = {},
  ) {
    this.options = { ...defaultOptions, ...options };
  }

  verify(request: SignedRequest, nowMs: number): SigV4Result {
    const questionMark = request.url.indexOf('?');
    const rawPath = questionMark === -1 ? request.url : request.url.slice(0, questionMark);
    const rawQuery = questionMark === -1 ? '' : request.url.slice(questionMark + 1);
    const parsed = this.parse(request, rawQuery);
    if ('ok' in parsed) return parsed;

    const secret = this.credentials.get(parsed.accessKeyId);
    if (secret === undefined) return fail('InvalidClientTokenId', 'The security token included in the request is invalid.');
    if (parsed.service !== this.options.service) {
      return fail('SignatureDoesNotMatch', `Credential should be scoped to correct service: '${this.options.service}'.`);
    }
    const requestTimeMs = parseAmzDate(parsed.amzDate);
    if (Number.isNaN(requestTimeMs)) return fail('SignatureDoesNotMatch', `Invalid date ${parsed.amzDate}: must be in ISO 8601 basic format yyyyMMddTHHmmssZ.`);
    if (parsed.amzDate.slice(0, 8) !== parsed.date) {
      return fail('SignatureDoesNotMatch', `Credential should be scoped to a valid date, not ${parsed.date}.`);
    }
    if (parsed.expiresSeconds !== undefined) {
      if (requestTimeMs - nowMs > this.options.clockSkewMsMax) return fail('RequestExpired', 'Request is not yet valid.');
      if (nowMs > requestTimeMs + parsed.expiresSeconds * 1000) return fail('RequestExpired', `Request has expired.`);
    } else if (Math.abs(nowMs - requestTimeMs) > this.options.clockSkewMsMax) {
      return fail(
        'RequestExpired',
        `Signature expired: ${parsed.amzDate} is now earlier than ${formatAmzDate(nowMs - this.options.clockSkewMsMax)} (${formatAmzDate(nowMs)} - 15 min.)`,
      );
    }

    const canonicalHeaders: string[] = [];
    for (const name of parsed.signedHeaders) {
      const value = headerValue(request.headers, name);
      if (value === undefined) return fail('SignatureDoesNotMatch', `Signed header ${name} is missing from the request.`);
      canonicalHeaders.push(name + ':' + value.trim().replace(/\s+/g, ' '));
    }
    // The body is always hashed here: a client-supplied x-amz-content-sha256 must match it,
    // or a signed request could carry any body. UNSIGNED-PAYLOAD only for an empty body.
    let payloadHash = sha256Hex(request.body);
    const declaredHash = headerValue(request.headers, 'x-amz-content-sha256');
    if (declaredHash !== undefined && declaredHash !== payloadHash) {
      if (declaredHash !== 'UNSIGNED-PAYLOAD' || request.body.length > 0) {
        return fail('SignatureDoesNotMatch', "The provided 'x-amz-content-sha256' header does not match what was computed.");
      }
      payloadHash = declaredHash;
    }
    const canonicalRequest =
      request.method.toUpperCase() + '\n' + canonicalPath(rawPath) + '\n' + canonicalQuery(rawQuery) + '\n' + canonicalHeaders.join('\n') + '\n\n' +
      parsed.signedHeaders.join(';') + '\n' + payloadHash;
    const scope = `${parsed.date}/${parsed.region}/${parsed.service}/aws4_request`;
    const stringToSign = `${algorithm}\n${parsed.amzDate}\n${scope}\n${sha256Hex(canonicalRequest)}`;
    const expected = createHmac('sha256', this.signingKey(secret, parsed.date, parsed.region, parsed.service)).update(stringToSign).digest();
    const given = Buffer.from(parsed.signature, 'hex');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      return fail('SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.');
    }
    return { ok: true, accessKeyId: parsed.accessKeyId, region: parsed.region };
  }

  private parse(request: SignedRequest, rawQuery: string): SignatureParts | SigV4Result {
    const authorization = headerValue(request.headers, 'authorization');
    if (authorization !== undefined) {
      if (!authorization.startsWith(algorithm + ' ')) {
        return fail('SignatureDoesNotMatch', `Unsupported authorization type; only ${algorithm} is accepted.`);
      }
      const fields = new Map<string, string>();
      for (const part of authorization.slice(algorithm.length + 1).split(',')) {
        const equals = part.indexOf('=');
        if (equals === -1) continue;
        fields.set(part.slice(0, equals).trim(), part.slice(equals + 1).trim());
      }
      const credential = fields.get('Credential');
      const signedHeaders = fields.get('SignedHeaders');
      const signature = fields.get('Signature');
      const amzDate = headerValue(request.headers, 'x-amz-date') ?? dateHeaderAsAmzDate(headerValue(request.headers, 'date'));
      if (credential === undefined || signedHeaders === undefined || signature === undefined || amzDate === undefined) {
        return fail('SignatureDoesNotMatch', 'Authorization header requires Credential, SignedHeaders and Signature parameters, and the request an X-Amz-Date header.');
      }
      return this.partsFrom(credential, signedHeaders, signature, amzDate, undefined);
    }
    if (!/(^|&)X-Amz-Algorithm=/i.test(rawQuery)) {
      return fail('MissingAuthenticationToken', 'Request is missing Authentication Token');
    }
    const query = new Map<string, string>();
    for (const part of rawQuery.split('&')) {
      const equals = part.indexOf('=');
      if (equals === -1) continue;
      query.set(safeDecode(part.slice(0, equals)), safeDecode(part.slice(equals + 1)));
    }
    if (query.get('X-Amz-Algorithm') !== algorithm) return fail('SignatureDoesNotMatch', `X-Amz-Algorithm must be ${algorithm}.`);
    const credential = query.get('X-Amz-Credential');
    const signedHeaders = query.get('X-Amz-SignedHeaders');
    const signature = query.get('X-Amz-Signature');
    const amzDate = query.get('X-Amz-Date');
    const expiresText = query.get('X-Amz-Expires');
    if (credential === undefined || signedHeaders === undefined || signature === undefined || amzDate === undefined || expiresText === undefined) {
      return fail('SignatureDoesNotMatch', 'A presigned request requires X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders and X-Amz-Signature.');
    }
    if (!/^\d{1,7}$/.test(expiresText) || Number(expiresText) > presignedExpiresSecondsMax) {
      return fail('SignatureDoesNotMatch', `X-Amz-Expires must be between 0 and ${presignedExpiresSecondsMax} seconds.`);
    }
    return this.partsFrom(credential, signedHeaders, signature, amzDate, Number(expiresText));
  }

  private partsFrom(credential: string, signedHeaders: string, signature: string, amzDate: string, expiresSeconds: number | undefined): SignatureParts | SigV4Result {
    const scope = credential.split('/');
    if (scope.length !== 5 || scope[4] !== 'aws4_request' || scope[0]!.length === 0) {
      return fail('SignatureDoesNotMatch', `Credential ${credential} is malformed; expected <key>/<date>/<region>/<service>/aws4_request.`);
    }
    if (!/^[0-9a-fA-F]{64}$/.test(signature)) return fail('SignatureDoesNotMatch', 'Signature must be 64 hex digits.');
    const headers = signedHeaders.split(';');
    if (headers.some((name) => name.length === 0 || name !== name.toLowerCase())) {
      return fail('SignatureDoesNotMatch', 'SignedHeaders must be lower-case header names separated by semicolons.');
    }
    const parts: SignatureParts = {
      accessKeyId: scope[0]!,
      date: scope[1]!,
      region: scope[2]!,
      service: scope[3]!,
      signedHeaders: headers,
      signature: signature.toLowerCase(),
      amzDate,
    };
    if (expiresSeconds !== undefined) parts.expiresSeconds = expiresSeconds;
    return parts;
  }

  private signingKey(secret: string, date: string, region: string, service: string): Buffer {
    const cacheKey = `${secret}\n${date}\n${region}\n${service}`;
    const cached = this.signingKeys.get(cacheKey);
    if (cached !== undefined) return cached;
    const dateKey = createHmac('sha256', 'AWS4' + secret).update(date).digest();
    const regionKey = createHmac('sha256', dateKey).update(region).digest();
    const serviceKey = createHmac('sha256', regionKey).update(service).digest();
    const signingKey = createHmac('sha256', serviceKey).update('aws4_request').digest();
    if (this.signingKeys.size >= signingKeyCacheEntriesMax) this.signingKeys.clear();
    this.signingKeys.set(cacheKey, signingKey);
    return signingKey;
  }
}

function dateHeaderAsAmzDate(date: string | undefined): string | undefined {
  if (date === undefined) return undefined;
  const epochMs = Date.parse(date);
  return Number.isNaN(epochMs) ? undefined : formatAmzDate(epochMs);
}

/** The access key id in an Authorization header, without verifying anything (open mode's SenderId). */
export function accessKeyIdFromAuthorization(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  const match = /Credential=([^/,\s]+)\//.exec(authorization);
  return match?.[1];
}
