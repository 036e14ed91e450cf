// Recently appended enqueue payloads, kept so that a consumer keeping up with producers
// is served from memory instead of a disk read. Bounded by bytes; oldest out first.

export class RecordCache {
  private readonly entries = new Map<number, Uint8Array>();
  private bytes = 0;

  constructor(private readonly bytesMax: number) {}

  put(offset: number, payload: Uint8Array): void {
    if (payload.byteLength > this.bytesMax) return;
    const previous = this.entries.get(offset);
    if (previous !== undefined) {
      this.bytes -= previous.byteLength;
      this.entries.delete(offset);
    }
    this.entries.set(offset, payload);
    this.bytes += payload.byteLength;
    while (this.bytes > this.bytesMax) {
      const oldest = this.entries.entries().next();
      if (oldest.done === true) break;
      this.entries.delete(oldest.value[0]);
      this.bytes -= oldest.value[1].byteLength;
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

  get sizeBytes(): number {
    return this.bytes;
  }
}
