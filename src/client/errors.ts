// The SDK's errors: one class per family of the catalogue in src/protocol/errors.ts, each
// with the stable `code` (the catalogue name), the numeric `nativeCode` from the wire,
// and `cause`. Errors that happen on the client side (connection lost, a malformed answer)
// have codes of their own with nativeCode 0.

import { errorCatalogue } from '../protocol/errors.js';

export class BerthClientError extends Error {
  override name = 'BerthClientError';
  /** The catalogue name (e.g. "QueueDoesNotExist"), or a client-side code ("ConnectionClosed"). */
  readonly code: string;
  /** The native protocol's number for the code; 0 for client-side errors. */
  readonly nativeCode: number;

  constructor(code: string, nativeCode: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.nativeCode = nativeCode;
  }
}

/** The queue named does not exist (QueueDoesNotExist, QueueDeletedRecently). */
export class QueueDoesNotExistError extends BerthClientError {
  override name = 'QueueDoesNotExistError';
}
/** A queue of that name exists with other attributes. */
export class QueueNameExistsError extends BerthClientError {
  override name = 'QueueNameExistsError';
}
/** The handshake or a call was refused for its credentials. */
export class AuthenticationError extends BerthClientError {
  override name = 'AuthenticationError';
}
/** A parameter, attribute or message was refused (the caller's mistake; retrying will not help). */
export class InvalidRequestError extends BerthClientError {
  override name = 'InvalidRequestError';
}
/** A receipt handle is unknown, expired or its message is no longer in flight. */
export class ReceiptHandleError extends BerthClientError {
  override name = 'ReceiptHandleError';
}
/** A limit was hit (in-flight messages, throttling, purge interval). */
export class OverLimitError extends BerthClientError {
  override name = 'OverLimitError';
}
/** The server cannot serve this now (disk error, no primary, internal failure); a retry may succeed. */
export class ServiceUnavailableError extends BerthClientError {
  override name = 'ServiceUnavailableError';
}
/** Either side broke the wire protocol. */
export class ProtocolError extends BerthClientError {
  override name = 'ProtocolError';
}
/** The connection closed (or could not be opened) before an answer came. */
export class ConnectionClosedError extends BerthClientError {
  override name = 'ConnectionClosedError';
}
/** The client (producer, consumer, Berth) was closed. */
export class ClientClosedError extends BerthClientError {
  override name = 'ClientClosedError';
}

type ErrorClass = new (code: string, nativeCode: number, message: string, options?: { cause?: unknown }) => BerthClientError;

const classByCode: Record<string, ErrorClass> = {
  QueueDoesNotExist: QueueDoesNotExistError,
  QueueDeletedRecently: QueueDoesNotExistError,
  QueueNameExists: QueueNameExistsError,
  InvalidSecurity: AuthenticationError,
  AccessDenied: AuthenticationError,
  SignatureDoesNotMatch: AuthenticationError,
  InvalidClientTokenId: AuthenticationError,
  MissingAuthenticationToken: AuthenticationError,
  ReceiptHandleIsInvalid: ReceiptHandleError,
  MessageNotInflight: ReceiptHandleError,
  OverLimit: OverLimitError,
  RequestThrottled: OverLimitError,
  PurgeQueueInProgress: OverLimitError,
  ServiceUnavailable: ServiceUnavailableError,
  NotPrimary: ServiceUnavailableError,
  InternalError: ServiceUnavailableError,
  SerializationException: ProtocolError,
  RequestExpired: ConnectionClosedError,
};

const codeByNative = new Map<number, string>(Object.entries(errorCatalogue).map(([code, spec]) => [spec.nativeCode, code]));

/** The error class for an answer from the server. */
export function errorFromWire(nativeCode: number, code: string, message: string): BerthClientError {
  const known = codeByNative.get(nativeCode) ?? code;
  const ErrorType = classByCode[known] ?? InvalidRequestError;
  return new ErrorType(known, nativeCode, message);
}

export function connectionClosed(message: string, cause?: unknown): ConnectionClosedError {
  return new ConnectionClosedError('ConnectionClosed', 0, message, cause === undefined ? undefined : { cause });
}

export function clientClosed(what: string): ClientClosedError {
  return new ClientClosedError('ClientClosed', 0, `${what} is closed`);
}

/** Worth retrying: the request may not have reached the server, or the server was briefly unable. */
export function isRetryable(error: unknown): boolean {
  return error instanceof ConnectionClosedError || (error instanceof ServiceUnavailableError && (error.code === 'ServiceUnavailable' || error.code === 'NotPrimary'));
}
