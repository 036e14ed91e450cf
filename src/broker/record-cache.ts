// Recently appended enqueue payloads, kept so that a consumer keeping up with producers
// is served from memory instead of a disk read. Bounded by bytes; oldest out first.
//
// Eviction order is a plain queue of offsets beside the map: asking a Map for its oldest
// entry after many deletions walks over every deleted slot (quadratic under load).

export class RecordCache {
  private readonly entries = new Map<number, Uint8Array>();
  /** Offsets in insertion order from `head`; may name entries already deleted. */
  private order: number[] = [];
  private head = 0;
  private bytes = 0;

  constructor(private readonly bytesMax: number) {}

  put(offset: number, payload: Uint8Array): void {
    if (payload.byteLength > this.bytesMax) return;
    this.delete(offset);
    this.entries.set(offset, payload);
    this.order.push(offset);
    this.bytes += payload.byteLength;
    while (this.bytes > this.bytesMax && this.head < this.order.length) {
      const oldest = this.order[this.head++]!;
      this.delete(oldest);
    }
    if (this.head > 4096 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head);
      this.head = 0;
    }
  }

  get(offset: number): Uint8Array | undefined {
    return this.entries.get(offset);
  }

  delete(offset: number): void {
    const payload = this.entries.get(offset);
    if (payload === undefined) return;
    this.entries.delete(offset);
    this.bytes -= payload.byteLength;
  }

  /** Forgets every payload at or above `offset` (a cut tail: those offsets will hold other records). */
  deleteFrom(offset: number): void {
    for (const cached of [...this.entries.keys()]) if (cached >= offset) this.delete(cached);
  }

    get sizeBytes(): number {
    return this.bytes;
  }
}
