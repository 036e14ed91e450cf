// The HTTP front of a node: one port for the SQS API, health, metrics and the console.
// Handlers are request -> response functions; this module only moves bytes and keeps the
// server's own limits (body size, header time, slow clients) so no input can crash or
// hang it.

import http from 'node:http';
import type { AddressInfo } from 'node:net';

import type { HttpRequest, HttpResponse } from '../protocol/http.js';

export type { HttpRequest, HttpResponse } from '../protocol/http.js';

/** Returns undefined when the route is not this handler's. */
export type RouteHandler = (request: HttpRequest, signal: AbortSignal) => Promise<HttpResponse | undefined>;

export interface HttpServerOptions {
  host: string;
  port: number;
  requestBodyBytesMax: number;
  routes: RouteHandler[];
  logger: { warn(object: object, message: string): void; error(object: object, message: string): void };
}

export interface RunningHttpServer {
  readonly port: number;
  /** Stops accepting, aborts long polls, waits up to `timeoutMs` for requests in flight. */
  close(timeoutMs: number): Promise<void>;
}

export async function startHttpServer(options: HttpServerOptions): Promise<RunningHttpServer> {
  const inFlight = new Set<AbortController>();
  // requestTimeout bounds the time to receive a whole request (not the answer, so long
  // polls are unaffected): a client that declares a huge chunk or trickles bytes is cut off.
  const server = http.createServer({ maxHeaderSize: 16 * 1024, requestTimeout: 15_000, headersTimeout: 10_000, keepAliveTimeout: 65_000 }, (request, response) => {
    const controller = new AbortController();
    inFlight.add(controller);
    response.on('close', () => {
      // Only a client that went away mid-request aborts its work (a long poll); aborting
      // after a normal answer would cost a DOMException per request.
      if (!response.writableFinished) controller.abort();
      inFlight.delete(controller);
    });
    handle(request, response, controller.signal).catch((error: unknown) => {
      options.logger.error({ err: error }, 'request handling failed');
      if (!response.headersSent) {
        response.writeHead(500, { 'content-type': 'text/plain' });
        response.end('internal error');
      } else {
        response.destroy();
      }
    });
  });
  server.on('clientError', (error, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    else socket.destroy();
    void error;
  });

  async function handle(request: http.IncomingMessage, response: http.ServerResponse, signal: AbortSignal): Promise<void> {
    const declared = Number(request.headers['content-length'] ?? 0);
    if (Number.isFinite(declared) && declared > options.requestBodyBytesMax) {
      reply(response, { status: 413, headers: { 'content-type': 'text/plain', connection: 'close' }, body: `request body larger than ${options.requestBodyBytesMax} bytes` });
      request.resume();
      return;
    }
    const body = await readBody(request, options.requestBodyBytesMax);
    if (body === null) return;
    if (body === undefined) {
      reply(response, { status: 413, headers: { 'content-type': 'text/plain', connection: 'close' }, body: `request body larger than ${options.requestBodyBytesMax} bytes` });
      request.destroy();
      return;
    }
    const input: HttpRequest = {
      method: request.method ?? 'GET',
      url: request.url ?? '/',
      headers: request.headers,
      body,
      remoteAddress: request.socket.remoteAddress,
    };
    for (const route of options.routes) {
      const output = await route(input, signal);
      if (output !== undefined) {
        reply(response, output);
        return;
      }
    }
    reply(response, { status: 404, headers: { 'content-type': 'text/plain' }, body: 'not found' });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });

  return {
    port: (server.address() as AddressInfo).port,
    async close(timeoutMs: number): Promise<void> {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      for (const controller of inFlight) controller.abort();
      const timer = setTimeout(() => server.closeAllConnections(), timeoutMs);
      await closed;
      clearTimeout(timer);
    },
  };
}

/**
 * The whole body, undefined once it passes `bytesMax`, null when the client went away. Plain 'data'/'end' events: an
 * async iterator over the stream costs several percent of the server's CPU per request.
 */
function readBody(request: http.IncomingMessage, bytesMax: number): Promise<Buffer | undefined | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > bytesMax) {
        request.off('data', onData);
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    };
    request.on('data', onData);
    request.once('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
    // A client that goes away mid-body is not an error of ours: nothing to answer.
    request.once('error', () => resolve(null));
    request.once('aborted', () => resolve(null));
  });
}

function reply(response: http.ServerResponse, output: HttpResponse): void {
  if (response.destroyed) return;
  const body = typeof output.body === 'string' ? Buffer.from(output.body, 'utf8') : output.body;
  response.writeHead(output.status, { ...output.headers, 'content-length': String(body.length) });
  response.end(body);
}
