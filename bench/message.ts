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
  // Parsed in place, without split(): every consumer thread runs this once per message.
  cursor = 0;
  const id = readField(body);
  const group = readField(body);
  const sequence = readField(body);
  const sendTimeUs = readField(body);
  if (Number.isNaN(id) || Number.isNaN(group) || Number.isNaN(sequence) || Number.isNaN(sendTimeUs)) {
    throw new Error(`not a bench message: ${body.slice(0, 60)}`);
  }
  return { id, group, sequence, sendTimeUs };
}

/** Where readField continues in the body being decoded. */
let cursor = 0;

/** An optionally negative decimal integer ending in '|' at `cursor`; NaN when there is none. */
function readField(body: string): number {
  let value = 0;
  let digits = 0;
  const negative = body.charCodeAt(cursor) === 45; // '-'
  if (negative) cursor++;
  for (;;) {
    const code = body.charCodeAt(cursor++);
    if (code === 124) break; // '|'
    if (!(code >= 48 && code <= 57)) return Number.NaN; // not a digit, or the end of the body
    value = value * 10 + (code - 48);
    digits++;
  }
  if (digits === 0) return Number.NaN;
  return negative ? -value : value;
}

/** Wall-clock time in µs since the epoch, with sub-ms resolution, comparable across threads. */
export function nowUs(): number {
  return (performance.timeOrigin + performance.now()) * 1000;
}
