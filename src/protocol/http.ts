// An HTTP exchange as plain data: every HTTP-facing part (the SQS API, the console, the
// health and metrics routes) is a function from HttpRequest to HttpResponse, testable
// without a socket; src/server/http-server.ts moves the bytes.

export interface HttpRequest {
  method: string;
  /** Path and query string, as in the request line. */
  url: string;
  /** Lower-case names, as node:http gives them. */
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  remoteAddress?: string;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  body: string | Buffer;
}
