// Frames written to a socket during one turn of the event loop leave in one writev: the
// first write of a turn corks the socket and a setImmediate uncorks it. A group commit
// resolves hundreds of sends in one turn; one syscall per answer frame cost the native
// server more CPU than the log itself.

import type { Socket } from 'node:net';

export class WriteCoalescer {
  private corked = false;

  constructor(private readonly socket: Socket) {}

  write(frame: Uint8Array): void {
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      setImmediate(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(frame);
  }
}
