// The benchmark's message: 1 KiB of ASCII that carries its run-wide id, its message group
// sequence and its (intended) send time, so any consumer in any thread can check loss,
// duplicates and order and measure latency without shared clocks beyond the wall clock.
//
//   "<id>|<group>|<sequence in group>|<send time µs since epoch>|" + padding to 1024 bytes

export const messageBytes = 1024;

const padding = 'x'.repeat(messageBytes);

export interface MessageFields {
  id: number;
  group: number;
  sequence: number;
  sendTimeUs: number;
}

export function encodeMessage(fields: MessageFields): string {
  const head = `${fields.id}|${fields.group}|${fields.sequence}|${Math.round(fields.sendTimeUs)}|`;
  return head + padding.slice(head.length);
}

export function decodeMessage(body: string): MessageFields {
  const parts = body.split('|', 4);
  const id = Number(parts[0]);
  const group = Number(parts[1]);
  const sequence = Number(parts[2]);
  const sendTimeUs = Number(parts[3]);
  if (!Number.isInteger(id) || !Number.isInteger(group) || !Number.isInteger(sequence) || !Number.isFinite(sendTimeUs)) {
    throw new Error(`not a bench message: ${body.slice(0, 60)}`);
  }
  return { id, group, sequence, sendTimeUs };
}

/** Wall-clock time in µs since the epoch, with sub-ms resolution, comparable across threads. */
export function nowUs(): number {
  return (performance.timeOrigin + performance.now()) * 1000;
}
