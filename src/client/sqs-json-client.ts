// A small client for Berth's SQS API over the AWS JSON 1.0 protocol, used by the berth
// command and the benchmarks: keep-alive HTTP, no SDK weight. Signs requests with AWS
// Signature Version 4 when credentials are given (servers started with --auth-file).

import http from 'node:http';
import https from 'node:https';
import { createHash, createHmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';

export interface SqsJsonClientOptions {
  endpoint: string;
  region?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Per-request timeout; long polls add their wait time. */
  timeoutMs?: number;
}

export class SqsApiError extends Error {
  override name = 'SqsApiError';
  constructor(
    readonly code: string,
    readonly queryCode: string | undefined,
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

class NodeSha256 {
  private readonly hash;
  constructor(secret?: unknown) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', secret as Buffer);
  }
  update(data: Uint8Array | string): void {
    this.hash.update(data);
  }
  async digest(): Promise<Uint8Array> {
    return this.hash.digest();
  }
}

export class SqsJsonClient {
  private readonly url: URL;
  private readonly agent: http.Agent;
  private readonly signer: SignatureV4 | undefined;

  constructor(private readonly options: SqsJsonClientOptions) {
    this.url = new URL(options.endpoint);
    this.agent = this.url.protocol === 'https:' ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true });
    this.signer =
      options.credentials === undefined
        ? undefined
        : new SignatureV4({ service: 'sqs', region: options.region ?? 'us-east-1', credentials: options.credentials, sha256: NodeSha256 as never });
  }

  close(): void {
    this.agent.destroy();
  }

  async call<T = Record<string, unknown>>(action: string, input: Record<string, unknown>, extraTimeoutMs = 0): Promise<T> {
    const body = JSON.stringify(input);
    let headers: Record<string, string> = {
      host: this.url.host,
      'content-type': 'application/x-amz-json-1.0',
      'x-amz-target': `AmazonSQS.${action}`,
      'content-length': String(Buffer.byteLength(body)),
    };
    if (this.signer !== undefined) {
      const signed = await this.signer.sign({
        method: 'POST',
        protocol: this.url.protocol,
        hostname: this.url.hostname,
        port: this.url.port === '' ? undefined : Number(this.url.port),
        path: '/',
        headers,
        body,
      });
      headers = signed.headers as Record<string, string>;
    }
    const transport = this.url.protocol === 'https:' ? https : http;
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const request = transport.request(
        { method: 'POST', hostname: this.url.hostname, port: this.url.port, path: '/', headers, agent: this.agent, timeout: (this.options.timeoutMs ?? 30_000) + extraTimeoutMs },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
          response.on('error', reject);
        },
      );
      request.on('timeout', () => request.destroy(new Error(`no answer from ${this.options.endpoint} within the timeout`)));
      request.on('error', (error: NodeJS.ErrnoException) => {
        if (error.code === 'ECONNREFUSED') reject(new Error(`cannot reach Berth at ${this.options.endpoint} (connection refused): is \`berth serve\` running there?`));
        else reject(error);
      });
      request.end(body);
    });
    const parsed = text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
    if (status >= 300) {
      const type = String(parsed['__type'] ?? 'UnknownError').replace(/^.*#/, '');
      throw new SqsApiError(type, undefined, status, String(parsed['message'] ?? parsed['Message'] ?? `HTTP ${status}`));
    }
    return parsed as T;
  }

  async queueUrl(queueName: string): Promise<string> {
    const result = await this.call<{ QueueUrl: string }>('GetQueueUrl', { QueueName: queueName });
    return result.QueueUrl;
  }
}
