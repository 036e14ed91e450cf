// Enqueue payloads for tests of partition runners: a plain message sent now on `clock`.

import type { Clock } from '../core/clock.js';
import type { EnqueuePayload } from '../queue/records.js';

export function testPayload(clock: Clock, index: number, body = `body-${index}`): EnqueuePayload {
  return {
    messageId: `m-${index}`,
    body,
    attributes: {},
    systemAttributes: {},
    senderId: 'test',
    sentTimestampMs: clock.nowMs(),
    delaySeconds: 0,
    replicaCount: 1,
  };
}
