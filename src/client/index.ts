// The Berth SDK's public surface (`import { Berth } from 'berth'`). Everything a user
// needs is exported here; the wire codec and connection internals are not part of it.

export { Berth, parseBerthUrl } from './berth.js';
export type {
  BerthOptions,
  MessageAttributeValue,
  QueueCounts,
  ReceiveOptions,
  SendMessageInput,
  SendOptions,
  SendResult,
  VisibilityChangeInput,
} from './berth.js';
export type { Credentials } from './connection.js';
export { Producer, type ProducerOptions } from './producer.js';
export { Consumer, MessageStream, type ConsumeOptions, type ConsumerOptions, type MessageHandler } from './consumer.js';
export { Message } from './message.js';
export { SingleNodeRouter, type Router, type ReconnectOptions } from './router.js';
export { ClusterRouter, type ClusterRoutingOptions } from './cluster-router.js';
export {
  AuthenticationError,
  BerthClientError,
  ClientClosedError,
  ConnectionClosedError,
  InvalidRequestError,
  OverLimitError,
  ProtocolError,
  QueueDoesNotExistError,
  QueueNameExistsError,
  ReceiptHandleError,
  ServiceUnavailableError,
} from './errors.js';
