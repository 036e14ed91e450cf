// One catalogue of expected failures, mapped once at each edge: to AWS error names and
// HTTP statuses in the SQS API, to numeric codes in the native protocol, to error classes
// in the SDK. Add a code here, never a string at a call site.

export interface ErrorSpec {
  /** The JSON protocol's `__type` shape name (without the `com.amazonaws.sqs#` prefix). */
  jsonType: string;
  /** The Query protocol's `<Code>` and the first half of `x-amzn-query-error`. */
  queryCode: string;
  httpStatus: number;
  /** Sender (the caller's mistake) or Receiver (ours). */
  fault: 'Sender' | 'Receiver';
  /** Stable number for the native protocol. */
  nativeCode: number;
}

export const errorCatalogue = {
  QueueDoesNotExist: { jsonType: 'QueueDoesNotExist', queryCode: 'AWS.SimpleQueueService.NonExistentQueue', httpStatus: 400, fault: 'Sender', nativeCode: 1001 },
  QueueDeletedRecently: { jsonType: 'QueueDeletedRecently', queryCode: 'AWS.SimpleQueueService.QueueDeletedRecently', httpStatus: 400, fault: 'Sender', nativeCode: 1002 },
  QueueNameExists: { jsonType: 'QueueNameExists', queryCode: 'QueueAlreadyExists', httpStatus: 400, fault: 'Sender', nativeCode: 1003 },
  PurgeQueueInProgress: { jsonType: 'PurgeQueueInProgress', queryCode: 'AWS.SimpleQueueService.PurgeQueueInProgress', httpStatus: 403, fault: 'Sender', nativeCode: 1004 },
  TooManyEntriesInBatchRequest: { jsonType: 'TooManyEntriesInBatchRequest', queryCode: 'AWS.SimpleQueueService.TooManyEntriesInBatchRequest', httpStatus: 400, fault: 'Sender', nativeCode: 1010 },
  EmptyBatchRequest: { jsonType: 'EmptyBatchRequest', queryCode: 'AWS.SimpleQueueService.EmptyBatchRequest', httpStatus: 400, fault: 'Sender', nativeCode: 1011 },
  BatchEntryIdsNotDistinct: { jsonType: 'BatchEntryIdsNotDistinct', queryCode: 'AWS.SimpleQueueService.BatchEntryIdsNotDistinct', httpStatus: 400, fault: 'Sender', nativeCode: 1012 },
  BatchRequestTooLong: { jsonType: 'BatchRequestTooLong', queryCode: 'AWS.SimpleQueueService.BatchRequestTooLong', httpStatus: 400, fault: 'Sender', nativeCode: 1013 },
  InvalidBatchEntryId: { jsonType: 'InvalidBatchEntryId', queryCode: 'AWS.SimpleQueueService.InvalidBatchEntryId', httpStatus: 400, fault: 'Sender', nativeCode: 1014 },
  MessageNotInflight: { jsonType: 'MessageNotInflight', queryCode: 'AWS.SimpleQueueService.MessageNotInflight', httpStatus: 400, fault: 'Sender', nativeCode: 1020 },
  ReceiptHandleIsInvalid: { jsonType: 'ReceiptHandleIsInvalid', queryCode: 'ReceiptHandleIsInvalid', httpStatus: 404, fault: 'Sender', nativeCode: 1021 },
  UnsupportedOperation: { jsonType: 'UnsupportedOperation', queryCode: 'AWS.SimpleQueueService.UnsupportedOperation', httpStatus: 400, fault: 'Sender', nativeCode: 1030 },
  InvalidAddress: { jsonType: 'InvalidAddress', queryCode: 'InvalidAddress', httpStatus: 404, fault: 'Sender', nativeCode: 1031 },
  ResourceNotFoundException: { jsonType: 'ResourceNotFoundException', queryCode: 'ResourceNotFoundException', httpStatus: 404, fault: 'Sender', nativeCode: 1032 },
  OverLimit: { jsonType: 'OverLimit', queryCode: 'OverLimit', httpStatus: 403, fault: 'Sender', nativeCode: 1040 },
  RequestThrottled: { jsonType: 'RequestThrottled', queryCode: 'RequestThrottled', httpStatus: 403, fault: 'Sender', nativeCode: 1041 },
  InvalidSecurity: { jsonType: 'InvalidSecurity', queryCode: 'InvalidSecurity', httpStatus: 403, fault: 'Sender', nativeCode: 1050 },
  InvalidAttributeName: { jsonType: 'InvalidAttributeName', queryCode: 'InvalidAttributeName', httpStatus: 400, fault: 'Sender', nativeCode: 1060 },
  InvalidAttributeValue: { jsonType: 'InvalidAttributeValue', queryCode: 'InvalidAttributeValue', httpStatus: 400, fault: 'Sender', nativeCode: 1061 },
  InvalidMessageContents: { jsonType: 'InvalidMessageContents', queryCode: 'InvalidMessageContents', httpStatus: 400, fault: 'Sender', nativeCode: 1062 },
  InvalidIdFormat: { jsonType: 'InvalidIdFormat', queryCode: 'InvalidIdFormat', httpStatus: 400, fault: 'Sender', nativeCode: 1063 },
  MissingParameter: { jsonType: 'MissingParameter', queryCode: 'MissingParameter', httpStatus: 400, fault: 'Sender', nativeCode: 1070 },
  InvalidParameterValue: { jsonType: 'InvalidParameterValue', queryCode: 'InvalidParameterValue', httpStatus: 400, fault: 'Sender', nativeCode: 1071 },
  MissingAction: { jsonType: 'MissingAction', queryCode: 'MissingAction', httpStatus: 400, fault: 'Sender', nativeCode: 1072 },
  InvalidAction: { jsonType: 'InvalidAction', queryCode: 'InvalidAction', httpStatus: 400, fault: 'Sender', nativeCode: 1073 },
  InvalidQueryParameter: { jsonType: 'InvalidQueryParameter', queryCode: 'InvalidQueryParameter', httpStatus: 400, fault: 'Sender', nativeCode: 1074 },
  MalformedQueryString: { jsonType: 'MalformedQueryString', queryCode: 'MalformedQueryString', httpStatus: 400, fault: 'Sender', nativeCode: 1075 },
  SerializationException: { jsonType: 'SerializationException', queryCode: 'SerializationException', httpStatus: 400, fault: 'Sender', nativeCode: 1076 },
  AccessDenied: { jsonType: 'AccessDenied', queryCode: 'AccessDenied', httpStatus: 403, fault: 'Sender', nativeCode: 1080 },
  SignatureDoesNotMatch: { jsonType: 'SignatureDoesNotMatch', queryCode: 'SignatureDoesNotMatch', httpStatus: 403, fault: 'Sender', nativeCode: 1081 },
  InvalidClientTokenId: { jsonType: 'InvalidClientTokenId', queryCode: 'InvalidClientTokenId', httpStatus: 403, fault: 'Sender', nativeCode: 1082 },
  MissingAuthenticationToken: { jsonType: 'MissingAuthenticationToken', queryCode: 'MissingAuthenticationToken', httpStatus: 403, fault: 'Sender', nativeCode: 1083 },
  RequestExpired: { jsonType: 'RequestExpired', queryCode: 'RequestExpired', httpStatus: 400, fault: 'Sender', nativeCode: 1084 },
  /** Berth: the replica count asked for is larger than the partition's replica set. */
  ReplicaCountUnavailable: { jsonType: 'InvalidParameterValue', queryCode: 'InvalidParameterValue', httpStatus: 400, fault: 'Sender', nativeCode: 1090 },
  /** Berth: the partition cannot take writes now (stopped after a disk error, no primary, disk full). */
  ServiceUnavailable: { jsonType: 'ServiceUnavailable', queryCode: 'ServiceUnavailable', httpStatus: 503, fault: 'Receiver', nativeCode: 2001 },
  /**
   * Berth: this node does not lead the partition (or does not hold it yet), refused before
   * anything was appended, so the request is safe to send again to the current primary.
   * ServiceUnavailable, by contrast, may come after an append whose commit failed.
   */
  NotPrimary: { jsonType: 'ServiceUnavailable', queryCode: 'ServiceUnavailable', httpStatus: 503, fault: 'Receiver', nativeCode: 2002 },
  InternalError: { jsonType: 'InternalError', queryCode: 'InternalError', httpStatus: 500, fault: 'Receiver', nativeCode: 2000 },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof errorCatalogue;

/** An expected failure with a stable code. Thrown across async boundaries, mapped at the edge. */
export class BerthError extends Error {
  override name = 'BerthError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  get spec(): ErrorSpec {
    return errorCatalogue[this.code];
  }
}

export function isBerthError(error: unknown): error is BerthError {
  return error instanceof BerthError;
}
