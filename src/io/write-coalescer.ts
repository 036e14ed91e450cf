// Frames written to a socket during one turn of the event loop leave in one socket write:
// the first frame of a turn schedules a flush (setImmediate), and the flush copies small
// frames into one buffer (one syscall and one write request instead of a writev with a
// request and a callback per frame). A turn's frames beyond `concatBytesMax` go out corked
// as a writev instead (copying them would cost more than the per-frame overhead). A group
// commit resolves hundreds of sends in one turn; one syscall per answer frame cost the
// native server more CPU than the log itself.
//
// `writableLength` counts frames still waiting for the flush, so backpressure decisions
// see them. `flush()` sends them at once (before socket.end()). The native server's
// connections and the SDK's both write through one.

import type { Socket } from 'node:net';

export interface WriteCoalescerOptions {
  /** Called after a flush that left the socket below its high-water mark (no 'drain' will follow). */
  onFlushed?: () => void;
  /** A turn's frames up to this many bytes are copied into one buffer; beyond, written as a writev. */
  concatBytesMax?: number;
}

export class WriteCoalescer {
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private scheduled = false;
  private readonly flushLater = (): void => {
    this.scheduled = false;
    this.flush();
  };

  private readonly onFlushed: (() => void) | undefined;
  private readonly concatBytesMax: number;

  constructor(
    private readonly socket: Socket,
    options: WriteCoalescerOptions = {},
  ) {
    this.onFlushed = options.onFlushed;
    this.concatBytesMax = options.concatBytesMax ?? 64 * 1024;
  }

  write(frame: Uint8Array): void {
    this.pending.push(frame);
    this.pendingBytes += frame.byteLength;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushLater);
    }
  }

  get writableLength(): number {
    return this.socket.writableLength + this.pendingBytes;
  }

  flush(): void {
    const frames = this.pending;
    if (frames.length === 0) return;
    const bytes = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    if (this.socket.destroyed) return;
    if (frames.length === 1) {
      this.socket.write(frames[0]!);
    } else if (bytes <= this.concatBytesMax) {
      this.socket.write(Buffer.concat(frames, bytes));
    } else {
      this.socket.cork();
      for (const frame of frames) this.socket.write(frame);
      this.socket.uncork();
    }
    if (!this.socket.writableNeedDrain) this.onFlushed?.();
  }
}
